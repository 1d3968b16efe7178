//! The document vault's core library.
//!
//! This crate holds every rule of the vault once; the HTTP service and the C
//! ABI are thin adapters over it. It is built in layers, each a module with
//! one job:
//!
//! - [`format`]: the streaming, seekable, key-committing AEAD format that
//!   every stored document is written in (`docs/FORMAT.md`). It knows nothing
//!   of databases or object stores.
//! - [`keys`]: the key hierarchy, root key → applicant key → document data
//!   key, key wrapping and the [`keys::KeyProvider`] that holds root keys
//!   (`docs/KEYS.md`).
//! - [`secret`]: key types that zeroize on drop and never print.
//! - [`ids`]: typed identifiers, so a tenant id is never taken for an
//!   applicant id.
//! - [`aead`]: the two interchangeable AES-256-GCM backends behind one small
//!   internal trait.
//! - [`category`]: document categories.
//! - [`store`] (blobs through `object_store`), `meta` (metadata through
//!   `sqlx`) and [`vault`] (the façade every adapter uses), with the
//!   default `vault` feature.
//! - [`error`]: the one error type of the crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!("vault-core needs at least one AES-GCM backend: enable `aws-lc` or `rustcrypto`");

pub mod aead;
#[cfg(feature = "vault")]
pub mod audit;
#[cfg(feature = "vault")]
pub mod auth;
pub mod category;
#[cfg(feature = "vault")]
pub mod config;
pub mod error;
pub mod format;
pub mod ids;
mod kdf;
pub mod keys;
#[cfg(feature = "vault")]
mod meta;
pub mod retention;
pub mod secret;
#[cfg(feature = "vault")]
pub mod store;
#[cfg(feature = "vault")]
pub mod vault;

pub use error::{Error, FormatError, Result};
