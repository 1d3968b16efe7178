//! Benchmark driver: the vault's own put and get, streamed, without HTTP
//! (`vault_core` directly, on the configuration's storage). Used by
//! `benches/server.sh` and `benches/run.py`.
//!
//! - `core_put CONFIG FILE`: put FILE then get it back into a discarding
//!   sink; prints `put_seconds get_seconds bytes`.
//! - `core_put put CONFIG FILE`: put FILE; prints `TENANT_ID DOCUMENT_ID`.
//! - `core_put get CONFIG TENANT_ID DOCUMENT_ID`: get into a discarding
//!   sink; prints the byte count.
//! - `core_put parallel CONFIG COUNT SIZE_KIB WRITERS`: COUNT puts of
//!   SIZE_KIB each from WRITERS concurrent tasks on a runtime with one
//!   worker per CPU this process may use (so `taskset` sets the cores);
//!   prints `documents_per_second megabytes_per_second workers`.
//!
//! Every put computes the SHA-256 of the plaintext, as the HTTP service's
//! uploads do.
#![forbid(unsafe_code)]

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::AsyncReadExt;
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::config::ConfigFile;
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::vault::{PutRequest, Tenant, Vault};

type Res<T> = Result<T, String>;

fn e(e: vault_core::Error) -> String {
    e.to_string()
}

async fn open(config: &str) -> Res<Vault> {
    let c = ConfigFile::load(std::path::Path::new(config)).map_err(e)?;
    Vault::open(c.vault_config().map_err(e)?).await.map_err(e)
}

async fn new_tenant(vault: &Vault) -> Res<Tenant> {
    let name = format!("bench-{}", uuid::Uuid::new_v4());
    let id = vault
        .create_tenant(&name, &Actor::operator())
        .await
        .map_err(e)?;
    vault.tenant(id, Actor::operator()).await.map_err(e)
}

fn request() -> Res<PutRequest> {
    let mut req = PutRequest::new(
        ApplicantId::new("bench").map_err(e)?,
        Category::BankStatement,
        "application/pdf",
    );
    req.compute_sha256 = true;
    Ok(req)
}

/// FILE as a stream of 256 KiB chunks (what the HTTP body stream yields).
async fn file_body(file: &str) -> Res<BoxStream<'static, vault_core::Result<Bytes>>> {
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| e.to_string())?;
    Ok(futures::stream::unfold(Some(f), |state| async move {
        let mut f = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(err) => Some((Err(vault_core::Error::Io(err)), None)),
        }
    })
    .boxed())
}

async fn drain(tenant: &Tenant, id: DocumentId) -> Res<u64> {
    let mut d = tenant.get(id).await.map_err(e)?;
    let mut n = 0u64;
    while let Some(chunk) = d.body.next().await {
        n += chunk.map_err(e)?.len() as u64;
    }
    Ok(n)
}

async fn parallel(config: &str, count: usize, size_kib: usize, writers: usize) -> Res<String> {
    let vault = open(config).await?;
    let tenant = new_tenant(&vault).await?;
    let doc = Bytes::from(
        (0..size_kib * 1024)
            .map(|i| (i * 13 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (tenant, doc) = (tenant.clone(), doc.clone());
        let mine = count / writers + usize::from(w < count % writers);
        tasks.push(tokio::spawn(async move {
            for _ in 0..mine {
                let pieces: Vec<vault_core::Result<Bytes>> = (0..doc.len().div_ceil(256 * 1024))
                    .map(|i| Ok(doc.slice(i * 256 * 1024..((i + 1) * 256 * 1024).min(doc.len()))))
                    .collect();
                tenant
                    .put(request()?, futures::stream::iter(pieces))
                    .await
                    .map_err(e)?;
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    vault.close().await;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(format!(
        "{:.2} {:.2} {workers}",
        count as f64 / secs,
        (count * size_kib * 1024) as f64 / secs / 1e6
    ))
}

async fn run(args: &[String]) -> Res<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["put", config, file] => {
            let vault = open(config).await?;
            let tenant = new_tenant(&vault).await?;
            let info = tenant
                .put(request()?, file_body(file).await?)
                .await
                .map_err(e)?;
            vault.close().await;
            Ok(format!("{} {}", tenant.id(), info.id))
        }
        ["get", config, tenant, doc] => {
            let vault = open(config).await?;
            let tenant = vault
                .tenant(TenantId::parse(tenant).map_err(e)?, Actor::operator())
                .await
                .map_err(e)?;
            let n = drain(&tenant, DocumentId::parse(doc).map_err(e)?).await?;
            vault.close().await;
            Ok(n.to_string())
        }
        ["parallel", config, count, size_kib, writers] => {
            let num = |s: &str| s.parse::<usize>().map_err(|e| e.to_string());
            parallel(config, num(count)?, num(size_kib)?, num(writers)?.max(1)).await
        }
        [config, file] => {
            let vault = open(config).await?;
            let tenant = new_tenant(&vault).await?;
            let start = std::time::Instant::now();
            let info = tenant
                .put(request()?, file_body(file).await?)
                .await
                .map_err(e)?;
            let put = start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            let n = drain(&tenant, info.id).await?;
            let get = start.elapsed().as_secs_f64();
            vault.close().await;
            Ok(format!("{put:.3} {get:.3} {n}"))
        }
        _ => Err("usage: core_put [put|get|parallel] CONFIG ... (see the source)".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", run(&args).await?);
    Ok(())
}
