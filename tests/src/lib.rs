//! Cross-crate end-to-end tests of the document vault (the HTTP service over
//! a real socket, the C ABI from a real C compiler). The suites arrive with
//! the service and the C ABI; this crate holds their shared fixtures.
#![forbid(unsafe_code)]
