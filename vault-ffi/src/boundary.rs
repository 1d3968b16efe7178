//! The panic boundary and pointer checks every exported function uses.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{VaultStatus, set_last_error, status_of};

/// Why a call failed before or inside the core.
pub(crate) struct Fail(pub(crate) VaultStatus, pub(crate) String);

impl From<vault_core::Error> for Fail {
    fn from(e: vault_core::Error) -> Self {
        Fail(status_of(&e), e.to_string())
    }
}

pub(crate) type FfiResult = Result<(), Fail>;

/// Runs `body`, turning an error into its status (and the thread's last
/// error message) and a panic into [`VaultStatus::VaultPanic`]: nothing
/// unwinds into C.
pub(crate) fn boundary(body: impl FnOnce() -> FfiResult) -> VaultStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            VaultStatus::VaultOk
        }
        Ok(Err(Fail(status, msg))) => {
            set_last_error(&msg);
            status
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            set_last_error(&format!("internal panic: {msg}"));
            VaultStatus::VaultPanic
        }
    }
}

pub(crate) fn null(what: &str) -> Fail {
    Fail(VaultStatus::VaultNullPointer, format!("{what} is NULL"))
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-null, and the caller guarantees NUL termination and
    // validity for the duration of the call.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| {
        Fail(
            VaultStatus::VaultInvalidUtf8,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// An optional string (NULL means absent).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(p, what) }.map(Some)
    }
}

/// A byte buffer (`len` may be 0 with any pointer, even NULL).
///
/// # Safety
/// `p` points to `len` readable bytes that stay valid for the call.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(Fail(
            VaultStatus::VaultInvalidArgument,
            format!("{what} length too large"),
        ));
    }
    // SAFETY: non-null, len within isize, readable per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `v` through an out-pointer.
///
/// # Safety
/// `out` is NULL (an error) or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, v: T, what: &str) -> FfiResult {
    if out.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-null and writable per the caller's contract.
    unsafe { out.write(v) };
    Ok(())
}
