"""Embedding the document vault from Python with ctypes (standard library
only): put, get, a byte range, erasure, and a caught error with its message.

Run from the repository root after `cargo build -p vault-ffi`:

    python3 vault-ffi/examples/python/example.py

VAULT_FFI_LIB overrides the library path (default target/debug/libvault_ffi.so).
"""

import ctypes
import json
import os
import secrets
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.environ.get(
    "VAULT_FFI_LIB",
    os.path.join(HERE, "..", "..", "..", "target", "debug", "libvault_ffi.so"),
)

VAULT_OK = 0
VAULT_NOT_FOUND = 10

vault = ctypes.CDLL(LIB)
c_str, c_size, c_u8p = ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint8)
handle_p = ctypes.c_void_p

vault.vault_version.restype = c_str
vault.vault_last_error.restype = c_str
vault.vault_status_str.restype = c_str
vault.vault_status_str.argtypes = [ctypes.c_uint32]
vault.vault_open.argtypes = [c_str, c_str, ctypes.POINTER(handle_p)]
vault.vault_close.argtypes = [handle_p]
vault.vault_create_tenant.argtypes = [handle_p, c_str, ctypes.POINTER(ctypes.c_void_p)]
vault.vault_put.argtypes = [handle_p, c_str, c_str, c_str, c_str, c_str, c_u8p, c_size, ctypes.POINTER(ctypes.c_void_p)]
vault.vault_get.argtypes = [handle_p, c_str, c_str, ctypes.POINTER(c_u8p), ctypes.POINTER(c_size)]
vault.vault_get_range.argtypes = [handle_p, c_str, c_str, ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(c_u8p), ctypes.POINTER(c_size)]
vault.vault_erase_applicant.argtypes = [handle_p, c_str, c_str, ctypes.POINTER(ctypes.c_void_p)]
vault.vault_buffer_free.argtypes = [c_u8p, c_size]
vault.vault_string_free.argtypes = [ctypes.c_void_p]
for name in ("vault_open", "vault_create_tenant", "vault_put", "vault_get", "vault_get_range", "vault_erase_applicant"):
    getattr(vault, name).restype = ctypes.c_uint32


class VaultError(Exception):
    def __init__(self, status):
        self.status = status
        message = vault.vault_last_error().decode()
        kind = vault.vault_status_str(status).decode()
        super().__init__(f"{kind} ({status}): {message}")


def check(status):
    if status != VAULT_OK:
        raise VaultError(status)


def take_string(ptr):
    """Copies a library-owned string and frees it with the library."""
    value = ctypes.cast(ptr, c_str).value.decode()
    vault.vault_string_free(ptr)
    return value


def take_bytes(data, length):
    value = ctypes.string_at(data, length.value)
    vault.vault_buffer_free(data, length)
    return value


def main():
    with tempfile.TemporaryDirectory() as d:
        key_path = os.path.join(d, "root.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, f"1:{secrets.token_hex(32)}\n".encode())
        os.close(fd)
        config = os.path.join(d, "vault.toml")
        with open(config, "w") as f:
            f.write('[keys]\nfile = "root.key"\n\n[storage]\ndata_dir = "data"\n')

        h = handle_p()
        check(vault.vault_open(config.encode(), b"python-example", ctypes.byref(h)))
        print("vault", vault.vault_version().decode())
        out = ctypes.c_void_p()
        check(vault.vault_create_tenant(h, b"Example Leasing", ctypes.byref(out)))
        tenant = take_string(out)

        document = b"Pay stub, March: gross 4,200.00, net 3,150.00"
        buf = (ctypes.c_uint8 * len(document)).from_buffer_copy(document)
        check(vault.vault_put(h, tenant.encode(), b"applicant-42", b"pay_stub", b"march.pdf",
                              b"application/pdf", buf, len(document), ctypes.byref(out)))
        doc_id = take_string(out)
        print("stored", doc_id)

        data, length = c_u8p(), c_size()
        check(vault.vault_get(h, tenant.encode(), doc_id.encode(), ctypes.byref(data), ctypes.byref(length)))
        assert take_bytes(data, length) == document
        check(vault.vault_get_range(h, tenant.encode(), doc_id.encode(), 10, 15, ctypes.byref(data), ctypes.byref(length)))
        assert take_bytes(data, length) == document[10:15]
        print("read back, whole and a range")

        check(vault.vault_erase_applicant(h, tenant.encode(), b"applicant-42", ctypes.byref(out)))
        receipt = json.loads(take_string(out))
        assert receipt["documents"] == 1 and "applicant-42" not in json.dumps(receipt)
        print("erased:", receipt["documents"], "document(s), receipt", receipt["receipt_id"])

        try:
            check(vault.vault_get(h, tenant.encode(), doc_id.encode(), ctypes.byref(data), ctypes.byref(length)))
            raise SystemExit("an erased document was served")
        except VaultError as e:
            assert e.status == VAULT_NOT_FOUND, e
            print("caught:", e)

        vault.vault_close(h)
    print("python example passed")


if __name__ == "__main__":
    sys.exit(main())
