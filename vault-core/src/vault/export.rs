//! Export of one applicant's documents (subject access, portability): a
//! streamed ustar archive of the decrypted files plus a machine-readable
//! manifest (JSON and CSV).

use std::fmt;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};

use super::Tenant;
use super::documents::DocumentInfo;
use crate::audit::Outcome;
use crate::error::{Error, Result};
use crate::ids::ApplicantId;

/// Archive chunks queued ahead of the reader.
const QUEUE: usize = 4;

/// A running export: the number of documents, and the archive as a stream.
pub struct Export {
    /// Documents in the archive.
    pub documents: u64,
    /// The tar archive: `documents/<id>.<ext>` for each document, then
    /// `manifest.json` and `manifest.csv`.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Exports every document of `applicant`, decrypted, as a streamed tar
    /// archive with a manifest listing id, category, original file name,
    /// content type, size, SHA-256 (computed while streaming), creation time
    /// and retain-until for each. The export is audited (and the audit head
    /// checkpointed) before the first byte is produced.
    pub async fn export(&self, applicant: &ApplicantId) -> Result<Export> {
        if self
            .inner()
            .meta
            .applicant_key(self.id, applicant)
            .await?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        let mut docs: Vec<DocumentInfo> = vec![];
        let mut cursor = None;
        loop {
            let page = self.list(applicant, cursor.as_ref(), 1000).await?;
            docs.extend(page.documents);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let target = format!(
            "applicant:{} documents:{}",
            self.applicant_ref(applicant),
            docs.len()
        );
        self.vault
            .audit(self.event("applicant.export", target, Outcome::Ok))
            .await?;
        self.vault.checkpoint_audit().await?;
        let documents = docs.len() as u64;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(QUEUE);
        let t = self.clone();
        tokio::spawn(async move {
            if let Err(e) = produce(&t, docs, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let body =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
                .boxed();
        Ok(Export { documents, body })
    }
}

struct Entry {
    info: DocumentInfo,
    name: String,
    sha256: [u8; 32],
}

async fn send(tx: &tokio::sync::mpsc::Sender<Result<Bytes>>, b: Bytes) -> Result<()> {
    tx.send(Ok(b))
        .await
        .map_err(|_| Error::Io(std::io::Error::other("export reader went away")))
}

async fn produce(
    t: &Tenant,
    docs: Vec<DocumentInfo>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes>>,
) -> Result<()> {
    let mut entries = vec![];
    for info in docs {
        let name = format!(
            "documents/{}.{}",
            info.id,
            extension(info.file_name.as_deref())
        );
        send(
            tx,
            Bytes::copy_from_slice(&tar_header(&name, info.size, info.created_at_ms / 1000)?),
        )
        .await?;
        let mut body = t.download_unaudited(info.id).await?;
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            n += chunk.len() as u64;
            send(tx, chunk).await?;
        }
        if n != info.size {
            return Err(Error::Corrupt("document size changed during export"));
        }
        send(tx, Bytes::from(vec![0u8; padding(n)])).await?;
        entries.push(Entry {
            info,
            name,
            sha256: hasher.finalize().into(),
        });
    }
    let now = crate::meta::now_ms() / 1000;
    for (name, content) in [
        ("manifest.json", manifest_json(&entries)),
        ("manifest.csv", manifest_csv(&entries)),
    ] {
        let bytes = content.into_bytes();
        send(
            tx,
            Bytes::copy_from_slice(&tar_header(name, bytes.len() as u64, now)?),
        )
        .await?;
        let len = bytes.len() as u64;
        send(tx, Bytes::from(bytes)).await?;
        send(tx, Bytes::from(vec![0u8; padding(len)])).await?;
    }
    // End of archive: two zero blocks.
    send(tx, Bytes::from(vec![0u8; 1024])).await
}

fn padding(n: u64) -> usize {
    ((512 - n % 512) % 512) as usize
}

/// A short, safe extension from the original file name, else `bin`.
fn extension(file_name: Option<&str>) -> String {
    file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| (1..=10).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

/// A POSIX ustar header for a regular file (sizes past 8 GiB use the GNU
/// base-256 encoding).
fn tar_header(name: &str, size: u64, mtime: i64) -> Result<[u8; 512]> {
    if name.len() > 100 {
        return Err(Error::InvalidArgument("archive entry name too long"));
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 0o77777777777 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(format!("{:011o}\0", mtime.max(0)).as_bytes());
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-23T17:38:25Z`).
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn manifest_json(entries: &[Entry]) -> String {
    let docs: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.info.id.to_string(),
                "path": e.name,
                "category": e.info.category.as_str(),
                "file_name": e.info.file_name,
                "content_type": e.info.content_type,
                "size": e.info.size,
                "sha256": hex::encode(e.sha256),
                "created": rfc3339(e.info.created_at_ms),
                "retain_until": e.info.retain_until_ms.map(rfc3339),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "documents": docs })).unwrap_or_default()
        + "\n"
}

/// RFC 4180 field: quoted, with quotes doubled.
fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn manifest_csv(entries: &[Entry]) -> String {
    let mut out = String::from(
        "id,path,category,file_name,content_type,size,sha256,created,retain_until\r\n",
    );
    for e in entries {
        let row = [
            e.info.id.to_string(),
            e.name.clone(),
            e.info.category.as_str().to_owned(),
            e.info.file_name.clone().unwrap_or_default(),
            e.info.content_type.clone(),
            e.info.size.to_string(),
            hex::encode(e.sha256),
            rfc3339(e.info.created_at_ms),
            e.info.retain_until_ms.map(rfc3339).unwrap_or_default(),
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_455_505_000), "2026-11-23T17:38:25Z");
    }

    #[test]
    fn extensions_are_safe() {
        assert_eq!(extension(Some("Pay Stub.PDF")), "pdf");
        assert_eq!(extension(Some("../../etc/passwd")), "bin");
        assert_eq!(extension(Some("noext")), "bin");
        assert_eq!(extension(None), "bin");
    }

    #[test]
    fn csv_quotes_everything() {
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
