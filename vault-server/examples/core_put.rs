//! Benchmark baseline: the vault's own put and get of a file, streamed,
//! without HTTP (`vault_core` directly, on the configuration's storage).
//! Used by `benches/server.sh`.
//!
//! `core_put CONFIG FILE` prints `put_seconds get_seconds bytes`.
#![forbid(unsafe_code)]

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::config::ConfigFile;
use vault_core::ids::ApplicantId;
use vault_core::vault::{PutRequest, Vault};

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (config, file) = match (args.next(), args.next()) {
        (Some(c), Some(f)) => (c, f),
        _ => return Err("usage: core_put CONFIG FILE".into()),
    };
    let e = |e: vault_core::Error| e.to_string();
    let c = ConfigFile::load(std::path::Path::new(&config)).map_err(e)?;
    let vault = Vault::open(c.vault_config().map_err(e)?).await.map_err(e)?;
    let tenant_id = vault
        .create_tenant(
            &format!("bench-{}", uuid::Uuid::new_v4()),
            &Actor::operator(),
        )
        .await
        .map_err(e)?;
    let tenant = vault
        .tenant(tenant_id, Actor::operator())
        .await
        .map_err(e)?;
    let f = tokio::fs::File::open(&file)
        .await
        .map_err(|e| e.to_string())?;
    let body = futures::stream::unfold(Some(f), |state| async move {
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
    .boxed();
    let mut req = PutRequest::new(
        ApplicantId::new("bench").map_err(e)?,
        Category::BankStatement,
        "application/pdf",
    );
    req.compute_sha256 = true;
    let start = std::time::Instant::now();
    let info = tenant.put(req, body).await.map_err(e)?;
    let put = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let mut d = tenant.get(info.id).await.map_err(e)?;
    let mut n = 0u64;
    while let Some(chunk) = d.body.next().await {
        n += chunk.map_err(e)?.len() as u64;
    }
    let get = start.elapsed().as_secs_f64();
    println!("{put:.3} {get:.3} {n}");
    vault.close().await;
    Ok(())
}
