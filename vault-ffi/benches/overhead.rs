//! Overhead of the C ABI against the Rust API for the same puts and gets.
//!
//! Run: `cargo bench -p vault-ffi --bench overhead` (or with
//! `VAULT_BENCH_QUICK=1`). Both sides use the same vault (SQLite + local
//! files) and the same bytes, interleaved per round (alternating which goes
//! first); the ratio is FFI time / Rust time (1.00 = no overhead).
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::ffi::{CStr, CString, c_char};
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::config::ConfigFile;
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::vault::{PutRequest, Vault};
use vault_ffi::*;

#[path = "../../benches/report.rs"]
mod report;
use report::Report;

fn main() {
    let quick = std::env::var_os("VAULT_BENCH_QUICK").is_some();
    let rounds = if quick { 2 } else { 7 };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    std::fs::write(&key, format!("1:{}\n", "3c".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("vault.toml");
    std::fs::write(
        &config,
        "[keys]\nfile = \"root.key\"\n\n[storage]\ndata_dir = \"data\"\n",
    )
    .unwrap();
    let cpath = CString::new(config.to_str().unwrap()).unwrap();

    // The FFI side.
    let mut h: *mut VaultHandle = std::ptr::null_mut();
    // SAFETY: valid strings and out-pointer.
    assert_eq!(
        unsafe { vault_open(cpath.as_ptr(), c"bench".as_ptr(), &mut h) },
        VaultStatus::VaultOk
    );
    let mut tid: *mut c_char = std::ptr::null_mut();
    // SAFETY: open handle, valid strings.
    assert_eq!(
        unsafe { vault_create_tenant(h, c"bench".as_ptr(), &mut tid) },
        VaultStatus::VaultOk
    );
    // SAFETY: returned by the library.
    let tenant_str = unsafe { CStr::from_ptr(tid) }.to_owned();

    // The Rust side, same files.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let vault = rt
        .block_on(Vault::open(
            ConfigFile::load(&config).unwrap().vault_config().unwrap(),
        ))
        .unwrap();
    let t = rt
        .block_on(vault.tenant(
            TenantId::parse(tenant_str.to_str().unwrap()).unwrap(),
            Actor::new("bench").unwrap(),
        ))
        .unwrap();

    let mut rep = Report::new("ffi");
    for size in [64 * 1024usize, 16 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let bytes = Bytes::from(data.clone());
        let reps = if size < 1 << 20 { 50 } else { 3 };
        // Rust API: `reps` puts, then a get of each; (put s, get s) per op.
        let rust_round = || {
            let mut ids = vec![];
            let s = Instant::now();
            for _ in 0..reps {
                let req = PutRequest::new(
                    ApplicantId::new("a").unwrap(),
                    Category::PayStub,
                    "application/pdf",
                );
                // The same 256 KiB pieces the C ABI hands the vault (it
                // copies them out of the caller's buffer; these are slices).
                let chunks: Vec<vault_core::Result<Bytes>> = (0..size.div_ceil(256 * 1024))
                    .map(|i| Ok(bytes.slice(i * 256 * 1024..((i + 1) * 256 * 1024).min(size))))
                    .collect();
                ids.push(
                    rt.block_on(t.put(req, futures::stream::iter(chunks)))
                        .unwrap()
                        .id,
                );
            }
            let put = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for id in &ids {
                let v: Vec<u8> = rt.block_on(async {
                    let mut out = Vec::with_capacity(size);
                    let mut b = t.get(*id).await.unwrap().body;
                    while let Some(c) = b.next().await {
                        out.extend_from_slice(&c.unwrap());
                    }
                    out
                });
                assert_eq!(v.len(), size);
            }
            let get = s.elapsed().as_secs_f64() / reps as f64;
            for id in &ids {
                rt.block_on(t.delete(*id)).unwrap();
            }
            (put, get)
        };
        // The C ABI, the same operations.
        let ffi_round = || {
            let mut fids: Vec<CString> = vec![];
            let s = Instant::now();
            for _ in 0..reps {
                let mut id: *mut c_char = std::ptr::null_mut();
                // SAFETY: open handle, valid strings and buffer.
                let st = unsafe {
                    vault_put(
                        h,
                        tenant_str.as_ptr(),
                        c"a".as_ptr(),
                        c"pay_stub".as_ptr(),
                        std::ptr::null(),
                        c"application/pdf".as_ptr(),
                        data.as_ptr(),
                        data.len(),
                        &mut id,
                    )
                };
                assert_eq!(st, VaultStatus::VaultOk);
                // SAFETY: returned by the library; freed once.
                unsafe {
                    fids.push(CStr::from_ptr(id).to_owned());
                    vault_string_free(id);
                }
            }
            let put = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for id in &fids {
                let (mut p, mut n) = (std::ptr::null_mut(), 0usize);
                // SAFETY: open handle, valid strings, out-pointers.
                assert_eq!(
                    unsafe { vault_get(h, tenant_str.as_ptr(), id.as_ptr(), &mut p, &mut n) },
                    VaultStatus::VaultOk
                );
                assert_eq!(n, size);
                // SAFETY: returned by the library; freed once.
                unsafe { vault_buffer_free(p, n) };
            }
            let get = s.elapsed().as_secs_f64() / reps as f64;
            for id in &fids {
                rt.block_on(t.delete(DocumentId::parse(id.to_str().unwrap()).unwrap()))
                    .unwrap();
            }
            (put, get)
        };
        let [mut rp, mut fp, mut rg, mut fg] = [(); 4].map(|_| Vec::new());
        for round in 0..rounds {
            // Alternate which side goes first, so neither always finds the
            // page cache and the allocator warmed by the other.
            let ((r_put, r_get), (f_put, f_get)) = if round % 2 == 0 {
                let r = rust_round();
                (r, ffi_round())
            } else {
                let f = ffi_round();
                (rust_round(), f)
            };
            rp.push(r_put * 1e3);
            rg.push(r_get * 1e3);
            fp.push(f_put * 1e3);
            fg.push(f_get * 1e3);
        }
        let label = if size < 1 << 20 { "64k" } else { "16m" };
        let human = if size < 1 << 20 { "64 KiB" } else { "16 MiB" };
        let ratios = |f: &[f64], r: &[f64]| f.iter().zip(r).map(|(a, b)| a / b).collect::<Vec<_>>();
        for (op, rust, ffi) in [("put", &rp, &fp), ("get", &rg, &fg)] {
            let base = format!("ffi.rust.{op}.{label}");
            rep.add(&base, &format!("Rust API {op} {human}"), "ms", rust);
            rep.add_vs(
                &format!("ffi.c.{op}.{label}"),
                &format!("C ABI {op} {human}"),
                "ms",
                ffi,
                &base,
                &ratios(ffi, rust),
            );
        }
    }
    rep.finish();
    // SAFETY: open handle closed once; string freed once.
    unsafe {
        vault_string_free(tid);
        vault_close(h);
    }
}
