//! The document vault's C ABI (issue #7). It will expose opaque handles,
//! stable status codes and a cbindgen-generated header over vault-core; until
//! then it exports nothing.
