//! The real `vault` binary, driven as an operator would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn vault(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(args)
        .env_remove("VAULT_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn init_creates_a_private_key_file_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let d = dir.to_str().unwrap();
    let out = vault(&["init", "--dir", d, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["key_file"].as_str().unwrap().ends_with("root.key"));

    let key_file = dir.join("root.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let data_mode = std::fs::metadata(dir.join("data"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(data_mode, 0o700, "the data directory is private");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let key_hex = key_text.lines().find(|l| l.starts_with("1:")).unwrap()[2..].to_string();
    assert_eq!(key_hex.len(), 64);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&key_hex));

    // A second init changes nothing and fails.
    let again = vault(&["init", "--dir", d]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_text);

    // The configuration finds the key file; output names versions, never keys.
    let config = dir.join("vault.toml");
    let c = config.to_str().unwrap();
    let keys = vault(&["--config", c, "keys", "--json"]);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(v["versions"], serde_json::json!([1]));
    assert_eq!(v["current"], 1);
    assert!(!String::from_utf8_lossy(&keys.stdout).contains(&key_hex));

    // VAULT_CONFIG works as well as --config.
    let via_env = Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(["keys"])
        .env("VAULT_CONFIG", c)
        .output()
        .unwrap();
    assert!(via_env.status.success());

    // A key file readable by others is refused, with the fix in the message
    // and the key nowhere in it.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = vault(&["--config", c, "keys"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(&key_hex));
}

#[test]
fn missing_or_malformed_config_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.toml");
    let out = vault(&["--config", missing.to_str().unwrap(), "keys"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read configuration"));

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[keys]\nfile = 3\n").unwrap();
    let out = vault(&["--config", bad.to_str().unwrap(), "keys", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("invalid configuration")
    );

    // Unknown subcommands are usage errors (exit code 2).
    assert_eq!(vault(&["frobnicate"]).status.code(), Some(2));
}

/// The operator commands against a real vault on embedded defaults: purge
/// (dry run, real, refusal of a future as-of), export, erase,
/// rotate-root-key, sweep and audit verify, all with --json.
#[test]
fn operator_commands_drive_a_real_vault() {
    use vault_core::audit::Actor;
    use vault_core::category::Category;
    use vault_core::config::ConfigFile;
    use vault_core::ids::ApplicantId;
    use vault_core::retention::RetentionPolicy;
    use vault_core::vault::{PutRequest, Vault};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    assert!(
        vault(&["init", "--dir", dir.to_str().unwrap()])
            .status
            .success()
    );
    let config = dir.join("vault.toml");
    let c = config.to_str().unwrap().to_string();
    let json = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let mut all = vec!["--config", c.as_str(), "--json"];
        all.extend_from_slice(args);
        let out = vault(&all);
        let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), v)
    };

    let rt = tokio::runtime::Runtime::new().unwrap();
    let tenant = rt.block_on(async {
        let v = Vault::open(ConfigFile::load(&config).unwrap().vault_config().unwrap())
            .await
            .unwrap();
        let tid = v.create_tenant("acme", &Actor::operator()).await.unwrap();
        let t = v.tenant(tid, Actor::operator()).await.unwrap();
        let mut zero = RetentionPolicy::default();
        for cat in Category::ALL {
            zero.retain_days.insert(cat, 0);
        }
        t.set_retention_policy(&zero).await.unwrap();
        for (a, data) in [
            ("app-1", &b"first"[..]),
            ("app-1", &b"second"[..]),
            ("app-2", &b"old"[..]),
        ] {
            let mut req = PutRequest::new(
                ApplicantId::new(a).unwrap(),
                Category::PayStub,
                "application/pdf",
            );
            req.file_name = Some(format!("{a}.pdf"));
            let chunks: Vec<vault_core::Result<bytes::Bytes>> =
                vec![Ok(bytes::Bytes::copy_from_slice(data))];
            t.put(req, futures::stream::iter(chunks)).await.unwrap();
        }
        t.close_application(&ApplicantId::new("app-2").unwrap(), Some(0))
            .await
            .unwrap();
        v.close().await;
        tid.to_string()
    });

    let (code, v) = json(&["purge", "--dry-run"]);
    assert_eq!((code, v["documents"].as_u64()), (Some(0), Some(1)), "{v}");
    let (code, _) = json(&["purge", "--as-of", "2999-01-01T00:00:00Z"]);
    assert_eq!(code, Some(1), "a future as-of is refused for a real purge");
    let (code, v) = json(&["purge"]);
    assert_eq!((code, v["documents"].as_u64()), (Some(0), Some(1)), "{v}");
    assert_eq!(json(&["purge"]).1["documents"].as_u64(), Some(0));

    let archive = tmp.path().join("export.tar");
    let (code, v) = json(&[
        "export",
        "--tenant",
        &tenant,
        "app-1",
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert_eq!((code, v["documents"].as_u64()), (Some(0), Some(2)), "{v}");
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"manifest.csv".to_string())
    );
    let (code, _) = json(&[
        "export",
        "--tenant",
        &tenant,
        "app-1",
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "an existing archive is not overwritten");

    let (code, v) = json(&["erase", "--tenant", &tenant, "app-1"]);
    assert_eq!((code, v["documents"].as_u64()), (Some(0), Some(2)), "{v}");
    assert!(
        !v.to_string().contains("app-1"),
        "the receipt holds no applicant id"
    );
    let (code, _) = json(&["erase", "--tenant", &tenant, "app-1"]);
    assert_eq!(code, Some(1));

    let (code, v) = json(&["rotate-root-key"]);
    assert_eq!((code, v["version"].as_u64()), (Some(0), Some(2)), "{v}");
    assert!(
        v["rewrapped"].as_u64().unwrap() >= 2,
        "app-2's key and the system key: {v}"
    );
    assert_eq!(v["retirable"], serde_json::json!([1]));
    assert_eq!(json(&["keys"]).1["versions"], serde_json::json!([1, 2]));

    let (code, v) = json(&["sweep", "--grace-seconds", "0"]);
    assert_eq!(code, Some(0), "{v}");
    let (code, v) = json(&["audit", "verify"]);
    assert_eq!((code, v["ok"].as_bool()), (Some(0), Some(true)), "{v}");
    assert!(v["records"].as_u64().unwrap() > 5);
}

#[test]
fn tenants_and_api_keys_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    assert!(
        vault(&["init", "--dir", dir.to_str().unwrap()])
            .status
            .success()
    );
    let c = dir.join("vault.toml");
    let c = c.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", c, "--json"];
        all.extend_from_slice(args);
        let out = vault(&all);
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default(),
        )
    };
    let (code, t) = run(&["tenant", "create", "Acme"]);
    assert_eq!(code, Some(0));
    let tenant = t["tenant_id"].as_str().unwrap().to_owned();
    let admin = t["api_key"].as_str().unwrap();
    assert!(admin.starts_with("vk_") && admin.len() == 3 + 32 + 1 + 64);
    // The name is unique.
    assert_eq!(run(&["tenant", "create", "Acme"]).0, Some(1));

    let (code, k) = run(&["apikey", "create", "--tenant", &tenant, "--role", "auditor"]);
    assert_eq!(code, Some(0));
    let id = k["id"].as_str().unwrap().to_owned();
    assert_eq!(k["api_key"].as_str().unwrap()[3..35], id);
    assert_eq!(
        run(&["apikey", "create", "--tenant", &tenant, "--role", "root"]).0,
        Some(1)
    );
    assert_eq!(
        run(&[
            "apikey",
            "create",
            "--tenant",
            &tenant,
            "--role",
            "agent",
            "--expires",
            "2000-01-01T00:00:00Z"
        ])
        .0,
        Some(1),
        "an expiry in the past is refused"
    );
    assert_eq!(
        run(&["apikey", "revoke", "--tenant", &tenant, &id]).0,
        Some(0)
    );
    assert_eq!(
        run(&["apikey", "revoke", "--tenant", &tenant, &id]).0,
        Some(1),
        "revoking twice is an error"
    );
    // Keys never reach the audit log or the metadata database in clear.
    let secret = &admin[36..];
    for f in std::fs::read_dir(dir.join("data")).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a key secret",
                f.display()
            );
        }
    }
}
