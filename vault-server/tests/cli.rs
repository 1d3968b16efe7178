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
