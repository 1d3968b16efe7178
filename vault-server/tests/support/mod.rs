//! The real `vault` binary serving on a real loopback socket, on either
//! storage configuration, for the HTTP suites.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// Which storage the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    SqliteLocal,
    PostgresS3,
}

pub fn vault_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vault")
}

/// Runs the CLI against `config` and parses its `--json` output.
pub fn cli(config: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(vault_bin())
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(args)
        .env_remove("VAULT_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vault {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Settings for tests: generous limits unless a test narrows them.
pub const TEST_SERVER: &str = "max_upload_bytes = 4194304\nrate_per_key = 10000.0\nburst_per_key = 10000.0\nrate_per_client = 10000.0\nburst_per_client = 10000.0\nheader_timeout_seconds = 2\nbody_idle_timeout_seconds = 2\nshutdown_grace_seconds = 20\n";

/// A running server with one tenant and its admin key.
pub struct Server {
    pub backend: Backend,
    pub base: String,
    pub dir: TempDir,
    pub config: PathBuf,
    pub tenant: String,
    pub admin: String,
    pub child: Option<Child>,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        Self::with_settings(backend, TEST_SERVER)
    }

    /// Starts a server whose `[server]` section is `settings`.
    pub fn with_settings(backend: Backend, settings: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("v");
        let out = Command::new(vault_bin())
            .args(["init", "--dir"])
            .arg(&d)
            .output()
            .unwrap();
        assert!(out.status.success());
        let config = d.join("vault.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        if backend == Backend::PostgresS3 {
            // Its own runtime on its own thread: callers are async tests.
            let schema = std::thread::spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(vault_e2e::new_pg_schema())
            })
            .join()
            .unwrap();
            let s3 = vault_e2e::shared_s3();
            let bucket = s3.bucket();
            text.push_str(&format!(
                "metadata_url = \"{}\"\n\n[storage.s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n",
                vault_e2e::pg_url_with_schema(&schema),
                s3.endpoint,
                vault_e2e::S3_KEY,
                vault_e2e::S3_SECRET
            ));
        }
        text.push_str("\n[server]\n");
        text.push_str(settings);
        std::fs::write(&config, text).unwrap();
        let t = cli(&config, &["tenant", "create", "Acme Leasing"]);
        let mut s = Server {
            backend,
            base: String::new(),
            tenant: t["tenant_id"].as_str().unwrap().to_owned(),
            admin: t["api_key"].as_str().unwrap().to_owned(),
            dir,
            config,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        };
        s.spawn();
        s
    }

    /// Starts `vault serve` and waits for its "listening" line.
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let mut child = Command::new(vault_bin())
            .arg("--config")
            .arg(&self.config)
            .args(["--json", "serve", "--listen", "127.0.0.1:0"])
            .env_remove("VAULT_CONFIG")
            .env("VAULT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("server did not start: {line:?} {}", self.log()));
        self.base = v["listening"].as_str().unwrap().to_owned();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.base.split("://").nth(1).unwrap().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an API key of `role` through the API.
    pub async fn key(&self, role: &str) -> String {
        let r = self
            .http
            .post(self.url("/v1/api-keys"))
            .bearer_auth(&self.admin)
            .header("content-type", "application/json")
            .body(format!("{{\"role\":\"{role}\"}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json_ok().await;
        v["api_key"].as_str().unwrap().to_owned()
    }

    /// A second tenant with its own admin key (via the CLI, while serving).
    pub fn other_tenant(&self, name: &str) -> (String, String) {
        let t = cli(&self.config, &["tenant", "create", name]);
        (
            t["tenant_id"].as_str().unwrap().to_owned(),
            t["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// JSON bodies of responses.
pub trait JsonOk {
    async fn json_ok(self) -> serde_json::Value;
}

impl JsonOk for reqwest::Response {
    async fn json_ok(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&bytes)))
    }
}

/// A minimal PDF-looking body of `n` bytes (sniffed as application/pdf).
pub fn pdf(n: usize, seed: u8) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x >> 7) as u8);
    }
    v.truncate(n.max(16));
    v
}

/// A PNG signature and header chunk.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

/// The problem `type` of a response, asserting the content type.
pub async fn problem(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .as_deref(),
        Some("application/problem+json"),
        "status {status}"
    );
    let v = r.json_ok().await;
    assert_eq!(v["status"], status);
    let t = v["type"].as_str().unwrap();
    (
        status,
        t.strip_prefix("urn:document-vault:problem:")
            .unwrap()
            .to_owned(),
    )
}
