//! The HTTP API end to end: the real `vault serve` binary on a loopback
//! socket, driven by a real HTTP client (reqwest) and raw TCP where a
//! client must misbehave. Every scenario runs on SQLite + local files and
//! on PostgreSQL + the S3-compatible server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::Method;
use sha2::{Digest, Sha256};
use support::{Backend, JsonOk, PNG, Server, pdf, problem};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_local() {
                super::$name(Backend::SqliteLocal).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_s3() {
                super::$name(Backend::PostgresS3).await;
            }
        }
    )*};
}

on_both_backends!(
    every_endpoint,
    authorization_matrix,
    tenant_isolation,
    bad_input,
    share_links,
    misbehaving_clients,
);

const SEG: usize = 65536;

async fn upload(
    s: &Server,
    key: &str,
    applicant: &str,
    category: &str,
    ct: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    s.http
        .post(s.url(&format!(
            "/v1/applicants/{applicant}/documents?category={category}"
        )))
        .bearer_auth(key)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn upload_pdf(s: &Server, key: &str, applicant: &str, body: Vec<u8>) -> String {
    let r = upload(s, key, applicant, "pay_stub", "application/pdf", body).await;
    assert_eq!(r.status(), 201);
    r.json_ok().await["id"].as_str().unwrap().to_owned()
}

async fn send(
    s: &Server,
    key: Option<&str>,
    method: Method,
    path: &str,
    json: Option<&str>,
) -> reqwest::Response {
    let mut r = s.http.request(method, s.url(path));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(j) = json {
        r = r
            .header("content-type", "application/json")
            .body(j.to_owned());
    }
    r.send().await.unwrap()
}

async fn list_ids(s: &Server, key: &str, applicant: &str) -> Vec<String> {
    let r = send(
        s,
        Some(key),
        Method::GET,
        &format!("/v1/applicants/{applicant}/documents"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json_ok().await["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_endpoint(b: Backend) {
    let s = Server::start(b);
    let agent = s.key("agent").await;
    let auditor = s.key("auditor").await;
    let purger = s.key("purge").await;

    // Upload with a file name, a digest, and three segments and a bit.
    let data = pdf(3 * SEG + 100, 1);
    let digest = support_digest(&data);
    let r = s
        .http
        .post(s.url("/v1/applicants/app-1/documents?category=pay_stub"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            "attachment; filename*=UTF-8''fiche%20de%20paie%20%C3%A9t%C3%A9.pdf",
        )
        .header("content-digest", format!("sha-256=:{digest}:"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let meta = r.json_ok().await;
    let id = meta["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/documents/{id}"));
    assert_eq!(meta["applicant"], "app-1");
    assert_eq!(meta["category"], "pay_stub");
    assert_eq!(meta["content_type"], "application/pdf");
    assert_eq!(meta["size"], data.len());
    assert_eq!(meta["file_name"], "fiche de paie été.pdf");
    assert_eq!(meta["sha256"], hex::encode(Sha256::digest(&data)));
    assert!(meta["created_at"].as_str().unwrap().ends_with('Z'));

    // Metadata.
    let m = send(
        &s,
        Some(&agent),
        Method::GET,
        &format!("/v1/documents/{id}/metadata"),
        None,
    )
    .await;
    assert_eq!(m.status(), 200);
    assert_eq!(m.json_ok().await["id"], id.as_str());

    // Whole download with its headers.
    let r = send(&s, Some(&agent), Method::GET, &location, None).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert_eq!(h["etag"], format!("\"{id}\"").as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''fiche%20de%20paie%20%C3%A9t%C3%A9.pdf")
    );
    assert_eq!(h["repr-digest"], format!("sha-256=:{digest}:").as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(r.bytes().await.unwrap(), data);

    // HEAD: the same headers, no body.
    let r = send(&s, Some(&agent), Method::HEAD, &location, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert_eq!(
        r.headers()["repr-digest"],
        format!("sha-256=:{digest}:").as_str()
    );
    assert!(r.bytes().await.unwrap().is_empty());

    // If-None-Match.
    let r = s
        .http
        .get(s.url(&location))
        .bearer_auth(&agent)
        .header("if-none-match", format!("\"{id}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    // Ranges at segment boundaries, open-ended, suffix, clamped, If-Range.
    let n = data.len() as u64;
    let s1 = SEG as u64;
    for (range, lo, hi) in [
        (format!("bytes={}-{}", s1 - 1, s1), s1 - 1, s1 + 1),
        (format!("bytes={s1}-{}", 2 * s1 - 1), s1, 2 * s1),
        (
            format!("bytes={}-{}", 2 * s1 - 1, 2 * s1 - 1),
            2 * s1 - 1,
            2 * s1,
        ),
        ("bytes=0-0".to_string(), 0, 1),
        (format!("bytes={}-", 3 * s1), 3 * s1, n),
        ("bytes=-1".to_string(), n - 1, n),
        (format!("bytes={}-{}", n - 10, n + 1000), n - 10, n),
    ] {
        let r = s
            .http
            .get(s.url(&location))
            .bearer_auth(&agent)
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {lo}-{}/{n}", hi - 1).as_str(),
            "{range}"
        );
        assert_eq!(
            r.headers()["content-length"],
            (hi - lo).to_string().as_str()
        );
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &data[lo as usize..hi as usize],
            "{range}"
        );
    }
    let r = s
        .http
        .get(s.url(&location))
        .bearer_auth(&agent)
        .header("range", format!("bytes={n}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );
    assert_eq!(problem(r).await, (416, "range-not-satisfiable".into()));
    let r = s
        .http
        .get(s.url(&location))
        .bearer_auth(&agent)
        .header("range", "bytes=0-0")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a stale If-Range serves the whole document"
    );

    // Listing, paginated.
    let id2 = upload_pdf(&s, &agent, "app-1", pdf(10, 2)).await;
    let r = send(
        &s,
        Some(&agent),
        Method::GET,
        "/v1/applicants/app-1/documents?limit=1",
        None,
    )
    .await
    .json_ok()
    .await;
    assert_eq!(r["documents"].as_array().unwrap().len(), 1);
    assert_eq!(r["documents"][0]["id"], id.as_str());
    let cursor = r["next_cursor"].as_str().unwrap().to_owned();
    let r = send(
        &s,
        Some(&agent),
        Method::GET,
        &format!("/v1/applicants/app-1/documents?limit=1&cursor={cursor}"),
        None,
    )
    .await
    .json_ok()
    .await;
    assert_eq!(r["documents"][0]["id"], id2.as_str());

    // Legal hold on a document blocks its deletion until lifted.
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::PUT,
            &format!("/v1/documents/{id2}/legal-hold"),
            None
        )
        .await
        .status(),
        204
    );
    let r = send(
        &s,
        Some(&agent),
        Method::DELETE,
        &format!("/v1/documents/{id2}"),
        None,
    )
    .await;
    assert_eq!(problem(r).await, (409, "legal-hold".into()));
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::DELETE,
            &format!("/v1/documents/{id2}/legal-hold"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        send(
            &s,
            Some(&agent),
            Method::DELETE,
            &format!("/v1/documents/{id2}"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        send(
            &s,
            Some(&agent),
            Method::GET,
            &format!("/v1/documents/{id2}"),
            None
        )
        .await
        .status(),
        404
    );

    // Retention policy.
    let r = send(
        &s,
        Some(&s.admin),
        Method::GET,
        "/v1/retention-policy",
        None,
    )
    .await
    .json_ok()
    .await;
    assert_eq!(r["inactivity_days"], 14);
    let r = send(
        &s,
        Some(&s.admin),
        Method::PUT,
        "/v1/retention-policy",
        Some(r#"{"inactivity_days":7,"retain_days":{"pay_stub":1}}"#),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = r.json_ok().await;
    assert_eq!(r["inactivity_days"], 7);
    assert_eq!(r["retain_days"]["pay_stub"], 1);

    // Close the application; a dry-run purge a week ahead lists the
    // document, a real purge now removes nothing; the future is refused.
    assert_eq!(
        send(
            &s,
            Some(&agent),
            Method::POST,
            "/v1/applicants/app-1/close",
            None
        )
        .await
        .status(),
        204
    );
    let ahead = chrono_like_now_plus_days(3);
    let r = send(
        &s,
        Some(&purger),
        Method::POST,
        "/v1/purge",
        Some(&format!(r#"{{"as_of":{ahead},"dry_run":true}}"#)),
    )
    .await
    .json_ok()
    .await;
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["documents"], serde_json::json!([id]));
    let r = send(
        &s,
        Some(&purger),
        Method::POST,
        "/v1/purge",
        Some(r#"{"dry_run":false}"#),
    )
    .await
    .json_ok()
    .await;
    assert_eq!(r["count"], 0);
    let r = send(
        &s,
        Some(&purger),
        Method::POST,
        "/v1/purge",
        Some(&format!(r#"{{"as_of":{ahead}}}"#)),
    )
    .await;
    assert_eq!(problem(r).await, (400, "bad-request".into()));

    // Export: a tar with the document and the manifests.
    let r = send(
        &s,
        Some(&s.admin),
        Method::GET,
        "/v1/applicants/app-1/export",
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let tar_bytes = r.bytes().await.unwrap();
    let mut names = vec![];
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.starts_with("documents/") {
            let mut content = vec![];
            e.read_to_end(&mut content).unwrap();
            assert_eq!(content, data);
        }
        names.push(name);
    }
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"manifest.csv".to_string()),
        "{names:?}"
    );

    // Applicant hold blocks erasure; lifted, erasure returns a receipt and
    // the documents are gone.
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::PUT,
            "/v1/applicants/app-1/legal-hold",
            None
        )
        .await
        .status(),
        204
    );
    let r = send(
        &s,
        Some(&s.admin),
        Method::DELETE,
        "/v1/applicants/app-1",
        None,
    )
    .await;
    assert_eq!(problem(r).await, (409, "legal-hold".into()));
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::DELETE,
            "/v1/applicants/app-1/legal-hold",
            None
        )
        .await
        .status(),
        204
    );
    let r = send(
        &s,
        Some(&s.admin),
        Method::DELETE,
        "/v1/applicants/app-1",
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let receipt = r.json_ok().await;
    assert_eq!(receipt["documents"], 1);
    assert_eq!(receipt["tenant_id"], s.tenant.as_str());
    assert!(
        !receipt.to_string().contains("app-1"),
        "the receipt names no applicant"
    );
    assert_eq!(
        send(&s, Some(&agent), Method::GET, &location, None)
            .await
            .status(),
        404
    );

    // API keys: create, use, revoke, refused.
    let r = send(
        &s,
        Some(&s.admin),
        Method::POST,
        "/v1/api-keys",
        Some(r#"{"role":"uploader"}"#),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let k = r.json_ok().await;
    let (kid, key) = (
        k["id"].as_str().unwrap().to_owned(),
        k["api_key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        upload(
            &s,
            &key,
            "app-2",
            "pay_stub",
            "application/pdf",
            pdf(100, 3)
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::DELETE,
            &format!("/v1/api-keys/{kid}"),
            None
        )
        .await
        .status(),
        204
    );
    let r = upload(
        &s,
        &key,
        "app-2",
        "pay_stub",
        "application/pdf",
        pdf(100, 3),
    )
    .await;
    assert_eq!(problem(r).await, (401, "unauthorized".into()));
    assert_eq!(
        send(
            &s,
            Some(&s.admin),
            Method::DELETE,
            &format!("/v1/api-keys/{kid}"),
            None
        )
        .await
        .status(),
        404
    );

    // Audit: this tenant's records, paginated, including the refusal;
    // the chain verifies.
    let r = send(
        &s,
        Some(&auditor),
        Method::GET,
        "/v1/audit?limit=1000",
        None,
    )
    .await
    .json_ok()
    .await;
    let records = r["records"].as_array().unwrap();
    assert!(records.iter().any(|x| x["action"] == "document.read"));
    assert!(records.iter().any(|x| x["action"] == "applicant.erase"));
    assert!(records.iter().any(|x| x["outcome"] == "denied"));
    let page = send(&s, Some(&auditor), Method::GET, "/v1/audit?limit=2", None)
        .await
        .json_ok()
        .await;
    let after = page["next_after"].as_u64().unwrap();
    let next = send(
        &s,
        Some(&auditor),
        Method::GET,
        &format!("/v1/audit?limit=2&after={after}"),
        None,
    )
    .await
    .json_ok()
    .await;
    assert!(next["records"][0]["seq"].as_u64().unwrap() > after);
    let v = send(&s, Some(&auditor), Method::GET, "/v1/audit/verify", None)
        .await
        .json_ok()
        .await;
    assert_eq!(v["ok"], true, "{v}");

    // Operations endpoints.
    assert_eq!(
        send(&s, None, Method::GET, "/healthz", None).await.status(),
        200
    );
    assert_eq!(
        send(&s, None, Method::GET, "/readyz", None).await.status(),
        200
    );
    let m = metrics(&s).await;
    assert!(
        m.contains(
            "vault_http_requests_total{method=\"GET\",route=\"/v1/documents/{id}\",status=\"200\"}"
        ),
        "{m}"
    );
    assert!(!m.contains("app-1"), "metrics carry no ids");
    let odd = Method::from_bytes(b"FROBNICATE").unwrap();
    assert_eq!(
        s.http
            .request(odd, s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let m = metrics(&s).await;
    assert!(
        !m.contains("FROBNICATE") && m.contains("method=\"other\""),
        "{m}"
    );
    let o = send(&s, None, Method::GET, "/openapi.json", None)
        .await
        .json_ok()
        .await;
    assert_eq!(o["openapi"], "3.1.0");
    validate_openapi(&o);

    // Logs carry route templates, never applicant ids or file names.
    let log = s.log();
    assert!(log.contains("/v1/applicants/{applicant}/documents"));
    for secret in ["app-1", "fiche", &s.admin[3..40]] {
        assert!(!log.contains(secret), "log leaks {secret}");
    }
}

/// Validates the served document against the OpenAPI 3.x schema with the
/// reference validator (`pip install openapi-spec-validator`; `.ci/run`
/// installs it).
fn validate_openapi(doc: &serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("openapi.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "openapi.json does not validate (is openapi-spec-validator installed? .ci/run installs it): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn support_digest(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

fn chrono_like_now_plus_days(days: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now + days * 86_400_000
}

/// Which roles may call each endpoint. Written out independently of the
/// server's table: a change to either shows up here.
async fn authorization_matrix(b: Backend) {
    let s = Server::start(b);
    let roles = ["admin", "agent", "uploader", "auditor", "purge"];
    let mut keys = std::collections::BTreeMap::new();
    for r in roles {
        keys.insert(
            r,
            if r == "admin" {
                s.admin.clone()
            } else {
                s.key(r).await
            },
        );
    }
    let agent = keys["agent"].clone();
    let doc = upload_pdf(&s, &agent, "m-1", pdf(1000, 1)).await;
    let link = send(
        &s,
        Some(&agent),
        Method::POST,
        &format!("/v1/documents/{doc}/share-links"),
        Some(r#"{"ttl_seconds":60,"max_views":5}"#),
    )
    .await
    .json_ok()
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown_key = "0".repeat(32);

    // (method, path, JSON body, roles allowed)
    let table: Vec<(Method, String, Option<&str>, &[&str])> = vec![
        (
            Method::POST,
            "/v1/applicants/m-2/documents?category=pay_stub".into(),
            None,
            &["agent", "uploader"],
        ),
        (
            Method::GET,
            "/v1/applicants/m-1/documents".into(),
            None,
            &["agent"],
        ),
        (
            Method::GET,
            format!("/v1/documents/{doc}"),
            None,
            &["agent"],
        ),
        (
            Method::HEAD,
            format!("/v1/documents/{doc}"),
            None,
            &["agent"],
        ),
        (
            Method::GET,
            format!("/v1/documents/{doc}/metadata"),
            None,
            &["agent"],
        ),
        (
            Method::PUT,
            format!("/v1/documents/{doc}/legal-hold"),
            None,
            &["admin"],
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{doc}/legal-hold"),
            None,
            &["admin"],
        ),
        (
            Method::POST,
            format!("/v1/documents/{doc}/share-links"),
            Some(r#"{"ttl_seconds":60,"max_views":1}"#),
            &["agent"],
        ),
        (
            Method::DELETE,
            format!("/v1/share-links/{unknown_key}"),
            None,
            &["agent"],
        ),
        (
            Method::POST,
            "/v1/applicants/m-1/close".into(),
            None,
            &["admin", "agent"],
        ),
        (
            Method::GET,
            "/v1/applicants/m-1/export".into(),
            None,
            &["admin"],
        ),
        (
            Method::PUT,
            "/v1/applicants/m-1/legal-hold".into(),
            None,
            &["admin"],
        ),
        (
            Method::DELETE,
            "/v1/applicants/m-1/legal-hold".into(),
            None,
            &["admin"],
        ),
        (Method::GET, "/v1/retention-policy".into(), None, &["admin"]),
        (
            Method::PUT,
            "/v1/retention-policy".into(),
            Some(r#"{"inactivity_days":14,"retain_days":{}}"#),
            &["admin"],
        ),
        (
            Method::POST,
            "/v1/purge".into(),
            Some(r#"{"dry_run":true}"#),
            &["purge"],
        ),
        (
            Method::POST,
            "/v1/api-keys".into(),
            Some(r#"{"role":"auditor"}"#),
            &["admin"],
        ),
        (
            Method::DELETE,
            format!("/v1/api-keys/{unknown_key}"),
            None,
            &["admin"],
        ),
        (Method::GET, "/v1/audit".into(), None, &["auditor"]),
        (Method::GET, "/v1/audit/verify".into(), None, &["auditor"]),
        (
            Method::DELETE,
            "/v1/applicants/m-9".into(),
            None,
            &["admin"],
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{doc}"),
            None,
            &["agent"],
        ),
    ];
    for (method, path, json, allowed) in &table {
        for role in roles {
            let mut req = s
                .http
                .request(method.clone(), s.url(path))
                .bearer_auth(&keys[role]);
            if path.contains("/documents?category") {
                req = req
                    .header("content-type", "application/pdf")
                    .body(pdf(100, 9));
            } else if let Some(j) = json {
                req = req
                    .header("content-type", "application/json")
                    .body(j.to_string());
            }
            let status = req.send().await.unwrap().status().as_u16();
            if allowed.contains(&role) {
                assert!(
                    ![401, 403].contains(&status),
                    "{role} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path}");
            }
        }
        // No key, a malformed key and a well-formed unknown key: 401.
        for key in [
            None,
            Some("nonsense"),
            Some(format!("vk_{}_{}", "1".repeat(32), "2".repeat(64)).as_str()),
        ] {
            let mut req = s.http.request(method.clone(), s.url(path));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                401,
                "{method} {path} {key:?}"
            );
        }
    }
    // Revocation of the share link created above is the agent's.
    assert_eq!(
        send(
            &s,
            Some(&keys["admin"]),
            Method::DELETE,
            &format!("/v1/share-links/{link}"),
            None
        )
        .await
        .status(),
        403
    );

    // An expired key is refused like any other.
    let soon = chrono_like_now_plus_days(0) + 1500;
    let k = send(
        &s,
        Some(&s.admin),
        Method::POST,
        "/v1/api-keys",
        Some(&format!(r#"{{"role":"agent","expires_at":{soon}}}"#)),
    )
    .await
    .json_ok()
    .await;
    let expiring = k["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        send(
            &s,
            Some(&expiring),
            Method::GET,
            "/v1/applicants/m-1/documents",
            None
        )
        .await
        .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        send(
            &s,
            Some(&expiring),
            Method::GET,
            "/v1/applicants/m-1/documents",
            None
        )
        .await
        .status(),
        401
    );

    // Every refusal is in the audit log: 403s with the key, 401s as
    // anonymous.
    let log = send(
        &s,
        Some(&keys["auditor"]),
        Method::GET,
        "/v1/audit?limit=1000",
        None,
    )
    .await
    .json_ok()
    .await;
    let denied = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .count();
    let expected_403: usize = table
        .iter()
        .map(|(_, _, _, a)| roles.len() - a.len())
        .sum::<usize>()
        + 1;
    assert!(
        denied >= expected_403,
        "{denied} denied records, expected at least {expected_403}"
    );
    // Uploader cannot read back its own upload.
    let mine = upload_pdf(&s, &keys["uploader"], "m-3", pdf(100, 4)).await;
    assert_eq!(
        send(
            &s,
            Some(&keys["uploader"]),
            Method::GET,
            &format!("/v1/documents/{mine}"),
            None
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        send(
            &s,
            Some(&keys["uploader"]),
            Method::GET,
            "/v1/applicants/m-3/documents",
            None
        )
        .await
        .status(),
        403
    );
}

async fn tenant_isolation(b: Backend) {
    let s = Server::start(b);
    let agent_a = s.key("agent").await;
    let doc = upload_pdf(&s, &agent_a, "shared-name", pdf(500, 1)).await;
    let link = send(
        &s,
        Some(&agent_a),
        Method::POST,
        &format!("/v1/documents/{doc}/share-links"),
        Some(r#"{"ttl_seconds":60,"max_views":5}"#),
    )
    .await
    .json_ok()
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, admin_b) = s.other_tenant("Other Leasing");
    let r = send(
        &s,
        Some(&admin_b),
        Method::POST,
        "/v1/api-keys",
        Some(r#"{"role":"agent"}"#),
    )
    .await
    .json_ok()
    .await;
    let agent_b = r["api_key"].as_str().unwrap().to_owned();
    let unknown = uuid::Uuid::new_v4().to_string();

    // Another tenant's document answers exactly like an unknown one.
    for path in [
        format!("/v1/documents/{doc}"),
        format!("/v1/documents/{doc}/metadata"),
    ] {
        let theirs = send(&s, Some(&agent_b), Method::GET, &path, None).await;
        let (st, ty) = (theirs.status(), theirs.text().await.unwrap());
        let none = send(
            &s,
            Some(&agent_b),
            Method::GET,
            &path.replace(&doc, &unknown),
            None,
        )
        .await;
        assert_eq!(
            (st, ty.clone()),
            (none.status(), none.text().await.unwrap())
        );
        assert_eq!(st, 404, "{ty}");
    }
    assert_eq!(
        send(
            &s,
            Some(&agent_b),
            Method::DELETE,
            &format!("/v1/documents/{doc}"),
            None
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &s,
            Some(&agent_b),
            Method::POST,
            &format!("/v1/documents/{doc}/share-links"),
            Some(r#"{"ttl_seconds":60,"max_views":5}"#)
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &s,
            Some(&agent_b),
            Method::DELETE,
            &format!("/v1/share-links/{link}"),
            None
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &s,
            Some(&admin_b),
            Method::PUT,
            &format!("/v1/documents/{doc}/legal-hold"),
            None
        )
        .await
        .status(),
        404
    );
    // The same applicant id in another tenant is another applicant.
    assert!(list_ids(&s, &agent_b, "shared-name").await.is_empty());
    assert_eq!(
        send(
            &s,
            Some(&admin_b),
            Method::DELETE,
            "/v1/applicants/shared-name",
            None
        )
        .await
        .status(),
        404
    );
    let key_a_id = &agent_a[3..35];
    assert_eq!(
        send(
            &s,
            Some(&admin_b),
            Method::DELETE,
            &format!("/v1/api-keys/{key_a_id}"),
            None
        )
        .await
        .status(),
        404
    );
    // Tenant A is untouched.
    assert_eq!(
        list_ids(&s, &agent_a, "shared-name").await,
        vec![doc.clone()]
    );
    assert_eq!(
        send(
            &s,
            Some(&agent_a),
            Method::GET,
            &format!("/v1/documents/{doc}"),
            None
        )
        .await
        .status(),
        200
    );
    // B's auditor sees none of A's records.
    let aud_b = send(
        &s,
        Some(&admin_b),
        Method::POST,
        "/v1/api-keys",
        Some(r#"{"role":"auditor"}"#),
    )
    .await
    .json_ok()
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = send(&s, Some(&aud_b), Method::GET, "/v1/audit?limit=1000", None)
        .await
        .json_ok()
        .await;
    assert!(!log.to_string().contains(&doc));
}

async fn bad_input(b: Backend) {
    let s = Server::start(b);
    let agent = s.key("agent").await;
    let p = |r| problem(r);

    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::GET,
            "/v1/documents/not-a-uuid",
            None
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::GET,
            "/v1/applicants/bad%20id/documents",
            None
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::GET,
            &format!("/v1/applicants/{}/documents", "a".repeat(129)),
            None
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::GET,
            &format!("/v1/documents/{}", uuid::Uuid::new_v4()),
            None
        )
        .await)
        .await,
        (404, "not-found".into())
    );
    assert_eq!(
        p(upload(&s, &agent, "a1", "passport", "application/pdf", pdf(100, 1)).await).await,
        (400, "bad-request".into())
    );
    let r = s
        .http
        .post(s.url("/v1/applicants/a1/documents"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .body(pdf(100, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        p(r).await,
        (400, "bad-request".into()),
        "category is required"
    );
    assert_eq!(
        p(send(
            &s,
            Some(&s.admin),
            Method::PUT,
            "/v1/retention-policy",
            Some("{not json")
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&s.admin),
            Method::PUT,
            "/v1/retention-policy",
            Some(r#"{"inactivity_days":14,"retain_days":{},"extra":1}"#)
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&s.admin),
            Method::PUT,
            "/v1/retention-policy",
            Some(r#"{"inactivity_days":14,"retain_days":{"nope":3}}"#)
        )
        .await)
        .await,
        (400, "bad-request".into())
    );
    let r = s
        .http
        .put(s.url("/v1/retention-policy"))
        .bearer_auth(&s.admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(p(r).await, (415, "unsupported-media-type".into()));
    let big_json = format!("{{\"role\":\"{}\"}}", "a".repeat(100_000));
    let r = send(
        &s,
        Some(&s.admin),
        Method::POST,
        "/v1/api-keys",
        Some(&big_json),
    )
    .await;
    // Answered before the body was read: the server closes the connection
    // and says so, or a pooling client would reuse a dead socket.
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(p(r).await, (413, "too-large".into()));
    assert_eq!(
        p(send(&s, None, Method::GET, "/v1/nothing-here", None).await).await,
        (404, "not-found".into())
    );
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::PATCH,
            "/v1/retention-policy",
            None
        )
        .await)
        .await,
        (405, "method-not-allowed".into())
    );

    // Content checks: nothing is stored for any refused upload.
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "pay_stub",
            "application/pdf",
            PNG.to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "pay_stub",
            "application/pdf",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "pay_stub",
            "application/pdf",
            b"<!DOCTYPE html><script>alert(1)</script>".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "other",
            "text/html",
            b"<p>hi</p>".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "id_document",
            "application/x-msdownload",
            b"MZ\x90\0\x03\0\0\0".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "pay_stub",
            "application/pdf",
            vec![],
            415,
            "unsupported-media-type",
        ),
    ];
    for (cat, ct, body, status, ty) in cases {
        let r = upload(&s, &agent, "refused", cat, ct, body).await;
        assert_eq!(p(r).await, (status, ty.to_string()), "{cat} {ct}");
    }
    let r = s
        .http
        .post(s.url("/v1/applicants/refused/documents?category=pay_stub"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .header(
            "content-digest",
            format!("sha-256=:{}:", support_digest(b"other bytes")),
        )
        .body(pdf(1000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(p(r).await, (400, "digest-mismatch".into()));
    let r = s
        .http
        .post(s.url("/v1/applicants/refused/documents?category=pay_stub"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .header("content-digest", "md5=:AAAA:")
        .body(pdf(1000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(p(r).await, (400, "bad-request".into()));
    // A declared length over the limit is refused before the body is
    // sent (the client asked `Expect: 100-continue`).
    {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("POST /v1/applicants/refused/documents?category=pay_stub HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", 4 * 1024 * 1024 + 1).as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(
            text.contains("urn:document-vault:problem:too-large"),
            "{text}"
        );
    }
    // Over the limit without a Content-Length: refused while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..80)
        .map(|i| {
            Ok(if i == 0 {
                pdf(65536, 2)
            } else {
                vec![7u8; 65536]
            })
        })
        .collect();
    let r = s
        .http
        .post(s.url("/v1/applicants/refused/documents?category=pay_stub"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(p(r).await, (413, "too-large".into()));
    }
    assert!(
        list_ids(&s, &agent, "refused").await.is_empty(),
        "a refused upload left a document"
    );

    // Ranges.
    let id = upload_pdf(&s, &agent, "a2", pdf(1000, 3)).await;
    for bad in ["bytes=5-1", "bytes=a-", "lines=0-1", "bytes=0-1,5-6"] {
        let r = s
            .http
            .get(s.url(&format!("/v1/documents/{id}")))
            .bearer_auth(&agent)
            .header("range", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(p(r).await, (400, "bad-request".into()), "{bad}");
    }
    let r = s
        .http
        .get(s.url(&format!("/v1/documents/{id}")))
        .bearer_auth(&agent)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(p(r).await.0, 416);
    // JSON for share links and purge.
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::POST,
            &format!("/v1/documents/{id}/share-links"),
            Some(r#"{"ttl_seconds":0,"max_views":1}"#)
        )
        .await)
        .await
        .0,
        400
    );
    assert_eq!(
        p(send(
            &s,
            Some(&agent),
            Method::POST,
            &format!("/v1/documents/{id}/share-links"),
            Some(r#"{"ttl_seconds":60}"#)
        )
        .await)
        .await
        .0,
        400
    );
}

async fn share_links(b: Backend) {
    let s = Server::start(b);
    let agent = s.key("agent").await;
    let data = pdf(2 * SEG + 5, 7);
    let id = upload_pdf(&s, &agent, "sl", data.clone()).await;
    let mk = |ttl: u64, views: u32| {
        let s = &s;
        let agent = agent.clone();
        let id = id.clone();
        async move {
            let r = send(
                s,
                Some(&agent),
                Method::POST,
                &format!("/v1/documents/{id}/share-links"),
                Some(&format!(r#"{{"ttl_seconds":{ttl},"max_views":{views}}}"#)),
            )
            .await;
            assert_eq!(r.status(), 201);
            r.json_ok().await
        }
    };
    // Views: three allowed, the fourth refused; a range counts as a view.
    let l = mk(600, 3).await;
    let url = l["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/v1/shared/vs_"));
    let r = s.http.get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = s
        .http
        .get(s.url(&url))
        .header("range", format!("bytes={}-{}", SEG - 2, SEG + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[SEG - 2..SEG + 2]);
    // HEAD does not use a view.
    assert_eq!(s.http.head(s.url(&url)).send().await.unwrap().status(), 200);
    assert_eq!(s.http.get(s.url(&url)).send().await.unwrap().status(), 200);
    assert_eq!(
        problem(s.http.get(s.url(&url)).send().await.unwrap()).await,
        (410, "link-expired".into())
    );
    // A token with a wrong secret is unknown, not expired.
    let forged = format!("{}{}", &url[..url.len() - 4], "0000");
    assert_eq!(
        problem(s.http.get(s.url(&forged)).send().await.unwrap()).await,
        (404, "not-found".into())
    );
    assert_eq!(
        problem(
            s.http
                .get(s.url("/v1/shared/garbage"))
                .send()
                .await
                .unwrap()
        )
        .await,
        (404, "not-found".into())
    );

    // Answers that serve no bytes use no view: HEAD, 304, 400, 416.
    let l = mk(600, 1).await;
    let url = l["url"].as_str().unwrap().to_owned();
    let get = |h: Option<(&'static str, String)>| {
        let mut r = s.http.get(s.url(&url));
        if let Some((k, v)) = h {
            r = r.header(k, v);
        }
        r.send()
    };
    assert_eq!(
        get(Some(("range", "bytes=oops".into())))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        get(Some(("range", format!("bytes={}-", data.len()))))
            .await
            .unwrap()
            .status(),
        416
    );
    assert_eq!(
        get(Some(("if-none-match", format!("\"{id}\""))))
            .await
            .unwrap()
            .status(),
        304
    );
    assert_eq!(s.http.head(s.url(&url)).send().await.unwrap().status(), 200);
    assert_eq!(
        get(None).await.unwrap().status(),
        200,
        "the one view is still there"
    );
    assert_eq!(get(None).await.unwrap().status(), 410);

    // Concurrent redemptions never exceed max_views.
    let l = mk(600, 3).await;
    let url = l["url"].as_str().unwrap().to_owned();
    let statuses: Vec<u16> = futures::future::join_all((0..10).map(|_| async {
        s.http
            .get(s.url(&url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|&&x| x == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&x| x == 410).count(),
        7,
        "{statuses:?}"
    );

    // Revocation.
    let l = mk(600, 10).await;
    let url = l["url"].as_str().unwrap().to_owned();
    assert_eq!(s.http.get(s.url(&url)).send().await.unwrap().status(), 200);
    assert_eq!(
        send(
            &s,
            Some(&agent),
            Method::DELETE,
            &format!("/v1/share-links/{}", l["id"].as_str().unwrap()),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(s.http.get(s.url(&url)).send().await.unwrap().status(), 410);

    // Expiry by time.
    let l = mk(1, 10).await;
    let url = l["url"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(s.http.get(s.url(&url)).send().await.unwrap().status(), 410);

    // A deleted document takes its links with it.
    let l = mk(600, 10).await;
    let url = l["url"].as_str().unwrap().to_owned();
    assert_eq!(
        send(
            &s,
            Some(&agent),
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(s.http.get(s.url(&url)).send().await.unwrap().status(), 404);

    // Redemptions are audited under the link's own actor.
    let auditor = s.key("auditor").await;
    let log = send(
        &s,
        Some(&auditor),
        Method::GET,
        "/v1/audit?limit=1000",
        None,
    )
    .await
    .json_ok()
    .await;
    let recs = log["records"].as_array().unwrap();
    assert!(
        recs.iter()
            .any(|r| r["action"] == "share_link.redeem" && r["outcome"] == "ok")
    );
    assert!(
        recs.iter()
            .any(|r| r["action"] == "share_link.redeem" && r["outcome"] == "denied")
    );
    assert!(recs.iter().any(|r| r["action"] == "document.read"
        && r["actor"].as_str().unwrap().starts_with("share-link:")));
}

/// Raw TCP: a client that disconnects mid-upload, one that stalls in the
/// body, one that never finishes its headers.
async fn misbehaving_clients(b: Backend) {
    let s = Server::start(b);
    let agent = s.key("agent").await;
    let addr = s.addr();
    let head = |len: usize| {
        format!(
            "POST /v1/applicants/raw/documents?category=pay_stub HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\nContent-Type: application/pdf\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // Disconnect after part of the body.
    {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.write_all(head(1_000_000).as_bytes()).unwrap();
        c.write_all(&pdf(300_000, 1)).unwrap();
        drop(c);
    }
    // Stall in the body: the idle timeout answers 408 (or closes).
    {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(head(1_000_000).as_bytes()).unwrap();
        c.write_all(&pdf(100_000, 1)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    // Never finish the headers: the connection is closed.
    {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let start = std::time::Instant::now();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(start.elapsed() < Duration::from_secs(9));
    }
    // A JSON body that stalls is cut off too.
    {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ro", s.admin).as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    // Refused before the body is read (too large; no key): the answer says
    // the connection closes, and it does, so no client reuses it.
    for (len, auth) in [(5_000_000, true), (1000, false)] {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = head(len);
        if !auth {
            req = req.replace(&format!("Authorization: Bearer {agent}\r\n"), "");
        }
        c.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        let status = if auth { "413" } else { "401" };
        assert!(text.starts_with(&format!("http/1.1 {status}")), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        list_ids(&s, &agent, "raw").await.is_empty(),
        "a broken upload is visible"
    );
    // The server still serves.
    upload_pdf(&s, &agent, "raw", pdf(100, 2)).await;
    assert_eq!(list_ids(&s, &agent, "raw").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let settings = support::TEST_SERVER
        .replace("rate_per_key = 10000.0", "rate_per_key = 0.5")
        .replace("burst_per_key = 10000.0", "burst_per_key = 3.0");
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    let mut statuses = vec![];
    for _ in 0..5 {
        let r = send(
            &s,
            Some(&s.admin),
            Method::GET,
            "/v1/retention-policy",
            None,
        )
        .await;
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);

    // Per client address, before any key is looked at.
    let settings = support::TEST_SERVER
        .replace("rate_per_client = 10000.0", "rate_per_client = 0.5")
        .replace("burst_per_client = 10000.0", "burst_per_client = 2.0");
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    let st: Vec<u16> = futures::future::join_all((0..4).map(|_| async {
        send(&s, None, Method::GET, "/healthz", None)
            .await
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(st.iter().filter(|&&x| x == 429).count(), 2, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_header_is_used_only_when_configured() {
    let settings = format!(
        "{}trusted_proxy_header = \"X-Forwarded-For\"\n",
        support::TEST_SERVER
            .replace("rate_per_client = 10000.0", "rate_per_client = 0.1")
            .replace("burst_per_client = 10000.0", "burst_per_client = 1.0")
    );
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    for i in 1..=3 {
        let r = s
            .http
            .get(s.url("/healthz"))
            .header("x-forwarded-for", format!("198.51.100.7, 10.0.0.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "each proxied client has its own bucket");
    }
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // With two header lines, the client's own first line is not the
    // address: the proxy's last line is, and its bucket is spent.
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.99")
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "a spoofed first line chose the bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_hsts() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (cp, kp) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cp, cert.cert.pem()).unwrap();
    std::fs::write(&kp, cert.signing_key.serialize_pem()).unwrap();
    let settings = format!(
        "{}\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        support::TEST_SERVER,
        cp.display(),
        kp.display()
    );
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    assert!(s.base.starts_with("https://"));
    let port = s.addr().rsplit(':').next().unwrap().to_owned();
    for (min, max) in [
        (
            reqwest::tls::Version::TLS_1_2,
            reqwest::tls::Version::TLS_1_2,
        ),
        (
            reqwest::tls::Version::TLS_1_3,
            reqwest::tls::Version::TLS_1_3,
        ),
    ] {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .tls_version_min(min)
            .tls_version_max(max)
            .build()
            .unwrap();
        let r = client
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
    }
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_an_upload_in_flight() {
    let mut s = Server::start(Backend::SqliteLocal);
    let agent = s.key("agent").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let req = s
        .http
        .post(s.url("/v1/applicants/gs/documents?category=pay_stub"))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .body(body)
        .send();
    let upload = tokio::spawn(req);
    tx.send(Ok(pdf(100_000, 1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = s.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the upload finishes.
    assert!(
        TcpStream::connect(s.addr()).is_err(),
        "still accepting after SIGTERM"
    );
    tx.send(Ok(vec![1u8; 50_000])).await.unwrap();
    drop(tx);
    let r = upload.await.unwrap().unwrap();
    assert_eq!(r.status(), 201);
    let status = s.child.take().unwrap().wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The document is there after a restart.
    s.spawn();
    assert_eq!(list_ids(&s, &agent, "gs").await.len(), 1);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Flipped bytes on disk: the bad segment is never served. A range before
/// it still is; a whole download stops short of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bytes_are_never_served() {
    let s = Server::start(Backend::SqliteLocal);
    let agent = s.key("agent").await;
    let data = pdf(3 * SEG, 5);
    let id = upload_pdf(&s, &agent, "t", data.clone()).await;
    // The only blob: flip a byte in the middle of the second segment.
    let mut blobs = vec![];
    let mut stack = vec![s.config.parent().unwrap().join("data/blobs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::metadata(&p).unwrap().len() > SEG as u64 {
                blobs.push(p);
            }
        }
    }
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&blobs[0], bytes).unwrap();

    let url = format!("/v1/documents/{id}");
    let r = s
        .http
        .get(s.url(&url))
        .bearer_auth(&agent)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..1000]);

    // The connection is cut either before the headers are flushed (the
    // server buffers the first segment with them) or mid-body; never a
    // clean end, never a byte past the first segment.
    let mut got = vec![];
    let mut failed = true;
    if let Ok(r) = s.http.get(s.url(&url)).bearer_auth(&agent).send().await {
        failed = false;
        let mut stream = r.bytes_stream();
        while let Some(c) = futures::StreamExt::next(&mut stream).await {
            match c {
                Ok(c) => got.extend_from_slice(&c),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    }
    assert!(failed, "the download must end in an error, not a clean EOF");
    assert!(
        got.len() <= SEG,
        "served {} bytes, past the bad segment",
        got.len()
    );
    assert_eq!(&got[..], &data[..got.len()]);

    // The bad segment fails before any byte: the connection is cut
    // (before or after the status line), or, if the check lands before
    // the headers, a 500 integrity problem. Never a byte of it.
    let r = s
        .http
        .get(s.url(&url))
        .bearer_auth(&agent)
        .header("range", format!("bytes={}-{}", SEG + 10, SEG + 20))
        .send()
        .await;
    match r {
        Err(_) => {}
        Ok(r) if r.status() == 206 => assert!(r.bytes().await.is_err()),
        Ok(r) => assert_eq!(problem(r).await, (500, "integrity".into())),
    }
}

/// Idle sockets cannot pile up: past `max_connections` new ones are
/// closed on arrival, and silent ones are closed by the header timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_timed_out() {
    let settings = format!("{}max_connections = 2\n", support::TEST_SERVER);
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    let addr = s.addr();
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    assert_eq!(
        third.read(&mut buf).unwrap_or(0),
        0,
        "a connection past the cap is closed"
    );
    // The silent ones are closed by the header timer (2 s here).
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let start = std::time::Instant::now();
        let n = c.read(&mut buf).unwrap_or(0);
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"));
        assert!(start.elapsed() < Duration::from_secs(7));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        send(&s, None, Method::GET, "/healthz", None).await.status(),
        200
    );
}

async fn metrics(s: &Server) -> String {
    send(s, None, Method::GET, "/metrics", None)
        .await
        .text()
        .await
        .unwrap()
}

/// A client that stops reading a download is cut off after the stall
/// timeout rather than holding the connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    let settings =
        support::TEST_SERVER.replace("max_upload_bytes = 4194304", "max_upload_bytes = 67108864");
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    let agent = s.key("agent").await;
    let size = 48 << 20;
    let id = upload_pdf(&s, &agent, "slow", pdf(size, 3)).await;
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.write_all(
        format!(
            "GET /v1/documents/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    // Read nothing for longer than the stall timeout (2 s here).
    std::thread::sleep(Duration::from_secs(5));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(
        total < size,
        "the whole {size}-byte body arrived after a stall ({total} bytes)"
    );
    // The server is fine.
    assert_eq!(
        send(&s, None, Method::GET, "/healthz", None).await.status(),
        200
    );
}

/// `GET /v1/audit/verify` catches a forged checkpoint, names only the kind
/// of problem (no sequence numbers), and serves one result for a while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_kind_and_reuses_its_result() {
    let s = Server::start(Backend::SqliteLocal);
    let auditor = s.key("auditor").await;
    // A checkpoint outside the database claiming records the log lacks:
    // what cutting off the log's tail looks like.
    let dir = s
        .config
        .parent()
        .unwrap()
        .join("data/blobs/audit/checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("00000000000001000000-00000000000000000000-forged.json"),
        format!(
            "{{\"seq\":1000000,\"mac\":\"{}\",\"at_ms\":0}}\n",
            "00".repeat(32)
        ),
    )
    .unwrap();
    let first = send(&s, Some(&auditor), Method::GET, "/v1/audit/verify", None)
        .await
        .json_ok()
        .await;
    assert_eq!(first["ok"], false, "{first}");
    assert_eq!(first["problem"], "truncated", "{first}");
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["ok", "problem", "verified_at"], "{first}");
    // Within the reuse window the same result comes back, even though the
    // forged checkpoint is gone.
    std::fs::remove_dir_all(&dir).unwrap();
    let again = send(&s, Some(&auditor), Method::GET, "/v1/audit/verify", None)
        .await
        .json_ok()
        .await;
    assert_eq!(again, first);
}
