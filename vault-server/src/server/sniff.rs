//! What a document's bytes are, and whether its category allows it.
//!
//! The declared `Content-Type` must be on the category's allow-list, and
//! the type sniffed from the first bytes (the `infer` crate's magic
//! numbers) must be the same type. Categories of scanned papers accept PDF
//! and common image formats only; `other` accepts anything except
//! executables, scripts and markup a browser would run.

use vault_core::category::Category;

/// Bytes of the body read before deciding.
pub(crate) const SNIFF_LEN: usize = 8192;

const PAPERS: &[&str] = &[
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/tiff",
    "image/heif",
    "image/heic",
    "image/webp",
];

/// The media type without parameters, lowercased, with common aliases
/// folded (`image/jpg` is `image/jpeg`).
pub(crate) fn essence(declared: &str) -> String {
    let e = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match e.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        "application/x-pdf" => "application/pdf".into(),
        _ => e,
    }
}

/// Whether the bytes look like something a browser or a shell would run.
fn looks_active(head: &[u8]) -> bool {
    if let Some(t) = infer::get(head) {
        if t.matcher_type() == infer::MatcherType::App {
            return true;
        }
    }
    // Executable headers, however short the file.
    if head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || head.starts_with(b"\xcf\xfa\xed\xfe")
    {
        return true;
    }
    let start: Vec<u8> = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xEF || **b == 0xBB || **b == 0xBF)
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    [
        &b"<!doctype html"[..],
        b"<html",
        b"<script",
        b"<svg",
        b"<?xml",
        b"#!",
        b"<body",
        b"<iframe",
    ]
    .iter()
    .any(|p| start.starts_with(p))
}

/// Media types a browser would render or run: markup, XML, scripts.
fn active_type(essence: &str) -> bool {
    essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || ["html", "script", "xsl", "xml-dtd"]
            .iter()
            .any(|w| essence.contains(w))
}

/// Checks `head` (the first up to [`SNIFF_LEN`] bytes; all of them for a
/// shorter document) against the declared type and the category.
pub(crate) fn check(category: Category, declared: &str, head: &[u8]) -> Result<(), &'static str> {
    let declared = essence(declared);
    if declared.contains(['\r', '\n']) {
        return Err("malformed content type");
    }
    if looks_active(head) || active_type(&declared) {
        return Err("executable content, scripts and markup are not accepted");
    }
    if category == Category::Other {
        return Ok(());
    }
    if !PAPERS.contains(&declared.as_str()) {
        return Err("the declared content type is not allowed for this category");
    }
    let sniffed = infer::get(head).map(|t| essence(t.mime_type()));
    match sniffed {
        Some(s) if s == declared => Ok(()),
        Some(s) if declared.starts_with("image/hei") && s.starts_with("image/hei") => Ok(()),
        _ => Err("the content does not match the declared content type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0";

    #[test]
    fn allow_lists() {
        assert!(check(Category::PayStub, "application/pdf", PDF).is_ok());
        assert!(check(Category::IdDocument, "image/png", PNG).is_ok());
        assert!(
            check(Category::PayStub, "application/pdf", PNG).is_err(),
            "a PNG declared as a PDF"
        );
        assert!(check(Category::PayStub, "application/pdf", ELF).is_err());
        assert!(check(Category::PayStub, "application/pdf", b"<html><script>").is_err());
        assert!(check(Category::PayStub, "text/plain", b"hello").is_err());
        assert!(check(Category::Other, "text/plain", b"hello").is_ok());
        assert!(check(Category::Other, "application/octet-stream", ELF).is_err());
        assert!(check(Category::Other, "text/plain", b"  <!DOCTYPE html>").is_err());
        assert!(check(Category::Other, "text/html", b"hi").is_err());
        for t in [
            "text/xml",
            "application/xml",
            "application/x-javascript",
            "text/xsl",
            "application/rss+xml",
            "application/ecmascript",
        ] {
            assert!(check(Category::Other, t, b"hi").is_err(), "{t}");
        }
        assert!(check(Category::PayStub, "application/pdf", b"").is_err());
    }
}
