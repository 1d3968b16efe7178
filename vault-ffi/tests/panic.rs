//! A panic inside an exported function arrives in C as a status code, not an
//! abort, and the library keeps working afterwards.
#![cfg(feature = "test-panic")]
#![allow(unsafe_code, clippy::unwrap_used, missing_docs)]

use std::ffi::CStr;

use vault_ffi::{VaultStatus, vault_last_error, vault_status_str, vault_test_panic};

#[test]
fn a_panic_arrives_as_a_status_code() {
    assert_eq!(vault_test_panic(), VaultStatus::VaultPanic);
    // SAFETY: vault_last_error returns a NUL-terminated string valid until
    // the next call on this thread.
    let msg = unsafe { CStr::from_ptr(vault_last_error()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("deliberate test panic"), "{msg}");
    // SAFETY: a static string.
    let s = unsafe { CStr::from_ptr(vault_status_str(VaultStatus::VaultPanic as u32)) };
    assert_eq!(s.to_str().unwrap(), "internal panic");
    // The boundary still works for the next call.
    assert_eq!(vault_test_panic(), VaultStatus::VaultPanic);
}
