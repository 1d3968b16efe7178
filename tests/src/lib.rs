//! Shared fixtures for the end-to-end tests of every crate: a real
//! S3-compatible server (s3s-fs) on a free loopback port, and a fresh
//! PostgreSQL schema per test. The suites themselves live beside the code
//! they drive (`vault-core/tests`, `vault-server/tests`, `vault-ffi/tests`).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Access key of the test S3 server.
pub const S3_KEY: &str = "vault-test-access";
/// Secret key of the test S3 server.
pub const S3_SECRET: &str = "vault-test-secret";

/// PostgreSQL for tests: `VAULT_TEST_POSTGRES_URL`, else the local server.
pub fn postgres_url() -> String {
    std::env::var("VAULT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A running s3s-fs on a free loopback port, stopped when dropped (or when
/// the test process exits: it watches our pipe).
#[derive(Debug)]
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The server's data directory (one sub-directory per bucket).
    pub data: TempDir,
    child: Child,
}

fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("VAULT_TEST_S3S_FS") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_bin = PathBuf::from(home).join(".cargo/bin/s3s-fs");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("s3s-fs")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3Server {
    /// Starts a server on a free port.
    pub fn start() -> S3Server {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(&data, port);
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            data,
            child,
        }
    }

    fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Stops the server and starts a new one on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(&self.data, self.port());
    }

    fn spawn(data: &TempDir, port: u16) -> Child {
        let bin = s3s_fs_binary();
        // The shell wrapper ends the server when our end of its stdin
        // closes, so no server outlives the test process.
        let script = format!(
            "\"$0\" --host 127.0.0.1 --port {port} --access-key {S3_KEY} --secret-key {S3_SECRET} \"$1\" >/dev/null 2>&1 & p=$!; \
             echo started; cat >/dev/null; kill $p 2>/dev/null; wait $p 2>/dev/null"
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .arg(&bin)
            .arg(data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start s3s-fs ({}): {e}; run .ci/run or `cargo install s3s-fs@0.14.1 --features binary --locked`", bin.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs ({}) did not start on port {port}",
                bin.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// A new empty bucket (a directory, for s3s-fs).
    pub fn bucket(&self) -> String {
        let name = format!("b{}", uuid::Uuid::new_v4().simple());
        std::fs::create_dir(self.data.path().join(&name)).unwrap();
        name
    }

    /// Stops the server (for fault tests).
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        let port = self.port();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One S3 server shared by every test of this process.
pub fn shared_s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
}

/// A PostgreSQL URL whose connections use `schema`.
pub fn pg_url_with_schema(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Creates a fresh schema and returns its name.
pub async fn new_pg_schema() -> String {
    let schema = format!("vt_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not reachable: {e}; run .ci/run",
                postgres_url()
            )
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    schema
}
