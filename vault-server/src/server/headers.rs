//! Parsing and formatting of the HTTP headers the API uses: `Range`,
//! `Content-Disposition`, `Content-Digest` (RFC 9530) and `ETag`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A parsed single-range `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// `bytes=a-b` (inclusive) or `bytes=a-` (`None` end).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n`. Several ranges, other
/// units and malformed values are errors (400).
pub(crate) fn parse_range(v: &str) -> Result<ByteRange, &'static str> {
    let spec = v
        .trim()
        .strip_prefix("bytes=")
        .ok_or("only byte ranges are supported")?
        .trim();
    if spec.contains(',') {
        return Err("only a single range is supported");
    }
    let (a, b) = spec.split_once('-').ok_or("malformed range")?;
    let num = |s: &str| -> Result<u64, &'static str> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err("malformed range");
        }
        s.parse().map_err(|_| "malformed range")
    };
    match (a.trim(), b.trim()) {
        ("", n) => Ok(ByteRange::Suffix(num(n)?)),
        (a, "") => Ok(ByteRange::From(num(a)?, None)),
        (a, b) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err("malformed range");
            }
            Ok(ByteRange::From(a, Some(b)))
        }
    }
}

impl ByteRange {
    /// The half-open range within a document of `size` bytes, or `None`
    /// when unsatisfiable (416).
    pub(crate) fn resolve(self, size: u64) -> Option<std::ops::Range<u64>> {
        if size == 0 {
            return None;
        }
        match self {
            ByteRange::From(a, _) if a >= size => None,
            ByteRange::From(a, end) => Some(a..end.map_or(size, |e| e.saturating_add(1).min(size))),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }
}

/// The file name from `Content-Disposition` (`filename*=UTF-8''...`
/// preferred over `filename="..."`).
pub(crate) fn disposition_filename(v: &str) -> Result<Option<String>, &'static str> {
    let mut plain = None;
    for part in v.split(';').skip(1) {
        let Some((k, val)) = part.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let val = val.trim();
        if k == "filename*" {
            let rest = val
                .strip_prefix("UTF-8''")
                .or_else(|| val.strip_prefix("utf-8''"))
                .ok_or("filename* must be UTF-8")?;
            return percent_decode(rest).map(Some);
        }
        if k == "filename" {
            plain = Some(val.trim_matches('"').replace("\\\"", "\""));
        }
    }
    Ok(plain)
}

/// Decodes `%XX` escapes as UTF-8.
pub(crate) fn percent_decode(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("malformed percent-encoding")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "malformed percent-encoding")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "file name is not UTF-8")
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name.
pub(crate) fn attachment(name: Option<&str>) -> String {
    let Some(name) = name else {
        return "attachment".into();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
}

/// The SHA-256 from a `Content-Digest` header (`sha-256=:<base64>:`,
/// possibly among other algorithms). A header without sha-256, or a
/// malformed one, is an error.
pub(crate) fn content_digest_sha256(v: &str) -> Result<[u8; 32], &'static str> {
    for member in v.split(',') {
        let Some((alg, val)) = member.split_once('=') else {
            return Err("malformed Content-Digest");
        };
        if alg.trim().eq_ignore_ascii_case("sha-256") {
            let b64 = val
                .trim()
                .strip_prefix(':')
                .and_then(|s| s.strip_suffix(':'))
                .ok_or("malformed Content-Digest")?;
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| "malformed Content-Digest")?;
            return bytes.try_into().map_err(|_| "malformed Content-Digest");
        }
    }
    Err("Content-Digest must include sha-256")
}

/// `sha-256=:<base64>:`.
pub(crate) fn digest_header(sha: &[u8; 32]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha))
}

/// Documents never change, so their id is a strong validator.
pub(crate) fn etag(id: &impl std::fmt::Display) -> String {
    format!("\"{id}\"")
}

/// Whether an `If-None-Match` value matches `etag`.
pub(crate) fn none_match(v: &str, etag: &str) -> bool {
    v.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9"), Ok(ByteRange::From(0, Some(9))));
        assert_eq!(parse_range("bytes=5-"), Ok(ByteRange::From(5, None)));
        assert_eq!(parse_range("bytes=-3"), Ok(ByteRange::Suffix(3)));
        for bad in [
            "bytes=",
            "bytes=a-b",
            "bytes=9-1",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=99999999999999999999-",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteRange::From(0, Some(9)).resolve(5), Some(0..5));
        assert_eq!(ByteRange::From(5, None).resolve(5), None);
        assert_eq!(ByteRange::Suffix(10).resolve(5), Some(0..5));
        assert_eq!(ByteRange::Suffix(0).resolve(5), None);
        assert_eq!(ByteRange::Suffix(5).resolve(0), None);
    }

    #[test]
    fn dispositions_round_trip() {
        let name = "relevé de compte \"mai\".pdf";
        let header = attachment(Some(name));
        assert!(header.is_ascii());
        assert_eq!(
            disposition_filename(&header).unwrap().as_deref(),
            Some(name)
        );
        assert_eq!(
            disposition_filename("attachment; filename=\"a.pdf\"")
                .unwrap()
                .as_deref(),
            Some("a.pdf")
        );
        assert_eq!(disposition_filename("inline").unwrap(), None);
    }

    #[test]
    fn digests() {
        let d = [7u8; 32];
        assert_eq!(content_digest_sha256(&digest_header(&d)), Ok(d));
        assert_eq!(
            content_digest_sha256(&format!("sha-512=:AAAA:, {}", digest_header(&d))),
            Ok(d)
        );
        assert!(content_digest_sha256("sha-256=:AAAA:").is_err());
        assert!(content_digest_sha256("md5=:AAAA:").is_err());
    }
}
