//! Tests of wrapping and key providers.

use std::os::unix::fs::PermissionsExt;

use proptest::prelude::*;

use super::*;
use crate::error::Error;
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::secret::{ApplicantKey, DataKey, RootKey};

fn provider(versions: &[u32]) -> LocalKeyProvider {
    LocalKeyProvider::new(
        versions
            .iter()
            .map(|&v| {
                (
                    RootKeyVersion::new(v).unwrap(),
                    RootKey::generate().unwrap(),
                )
            })
            .collect(),
    )
    .unwrap()
}

fn akid(tenant: [u8; 16], applicant: &str, version: u32) -> ApplicantKeyId {
    ApplicantKeyId {
        tenant: TenantId::from_bytes(tenant),
        applicant: ApplicantId::new(applicant).unwrap(),
        version,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Applicant keys unwrap only under the same root version and ids.
    #[test]
    fn applicant_key_wrap_round_trip(
        tenant in any::<[u8; 16]>(),
        applicant in "[A-Za-z0-9._-]{1,40}",
        version in 1u32..5,
    ) {
        let p = provider(&[1, 2]);
        let id = akid(tenant, &applicant, version);
        let key = ApplicantKey::generate().unwrap();
        let v1 = RootKeyVersion::new(1).unwrap();
        let v2 = RootKeyVersion::new(2).unwrap();
        let w = wrap_applicant_key(&p, v1, &id, &key).unwrap();
        let back = unwrap_applicant_key(&p, v1, &id, &w).unwrap();
        prop_assert_eq!(back.expose(), key.expose());
        // Wrong root key version.
        prop_assert!(matches!(unwrap_applicant_key(&p, v2, &id, &w), Err(Error::Authentication)));
        // A version not loaded.
        let v9 = RootKeyVersion::new(9).unwrap();
        prop_assert!(matches!(unwrap_applicant_key(&p, v9, &id, &w), Err(Error::UnknownKeyVersion(9))));
        // Any other id.
        let mut other_tenant = tenant;
        other_tenant[0] ^= 1;
        for other in [
            akid(other_tenant, &applicant, version),
            akid(tenant, &format!("{applicant}x"), version),
            akid(tenant, &applicant, version + 1),
        ] {
            prop_assert!(matches!(unwrap_applicant_key(&p, v1, &other, &w), Err(Error::Authentication)));
        }
        // Another provider's root key.
        prop_assert!(matches!(unwrap_applicant_key(&provider(&[1]), v1, &id, &w), Err(Error::Authentication)));
    }

    /// Data keys unwrap only under the same applicant key and ids.
    #[test]
    fn data_key_wrap_round_trip(tenant in any::<[u8; 16]>(), doc in any::<[u8; 16]>(), flip in 0usize..WRAPPED_KEY_LEN) {
        let ak = ApplicantKey::generate().unwrap();
        let id = DataKeyId { applicant_key: akid(tenant, "app-1", 1), document: DocumentId::from_bytes(doc) };
        let dk = DataKey::generate().unwrap();
        let w = wrap_data_key(&ak, &id, &dk).unwrap();
        let back = unwrap_data_key(&ak, &id, &w).unwrap();
        prop_assert_eq!(back.expose(), dk.expose());
        let mut other_doc = doc;
        other_doc[15] ^= 0x80;
        let other = DataKeyId { document: DocumentId::from_bytes(other_doc), ..id.clone() };
        prop_assert!(matches!(unwrap_data_key(&ak, &other, &w), Err(Error::Authentication)));
        let mut other_tenant = tenant;
        other_tenant[3] ^= 2;
        for other_ak in [akid(tenant, "app-1", 2), akid(tenant, "app-2", 1), akid(other_tenant, "app-1", 1)] {
            let other = DataKeyId { applicant_key: other_ak, ..id.clone() };
            prop_assert!(matches!(unwrap_data_key(&ak, &other, &w), Err(Error::Authentication)));
        }
        prop_assert!(matches!(unwrap_data_key(&ApplicantKey::generate().unwrap(), &id, &w), Err(Error::Authentication)));
        // Any flipped byte, the version byte included, is unauthentic.
        let mut bytes = w.as_bytes().to_vec();
        bytes[flip] ^= 1;
        let bad = WrappedKey::from_bytes(&bytes).unwrap();
        prop_assert!(matches!(unwrap_data_key(&ak, &id, &bad), Err(Error::Authentication)));
        // So is a cut or extended one.
        for len in [1, WRAPPED_KEY_LEN - 1] {
            let cut = WrappedKey::from_bytes(&w.as_bytes()[..len]).unwrap();
            prop_assert!(matches!(unwrap_data_key(&ak, &id, &cut), Err(Error::Authentication)));
        }
        let mut longer = w.as_bytes().to_vec();
        longer.push(0);
        prop_assert!(matches!(unwrap_data_key(&ak, &id, &WrappedKey::from_bytes(&longer).unwrap()), Err(Error::Authentication)));
    }
}

#[test]
fn wraps_are_randomised_and_hide_the_key() {
    let ak = ApplicantKey::generate().unwrap();
    let id = DataKeyId {
        applicant_key: akid([1; 16], "a", 1),
        document: DocumentId::from_bytes([2; 16]),
    };
    let dk = DataKey::from_slice(&[0x42; 32]).unwrap();
    let a = wrap_data_key(&ak, &id, &dk).unwrap();
    let b = wrap_data_key(&ak, &id, &dk).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert!(!a.as_bytes().windows(4).any(|w| w == [0x42; 4]));
    assert!(WrappedKey::from_bytes(&[]).is_err());
    assert!(WrappedKey::from_bytes(&vec![1u8; WRAPPED_KEY_MAX_LEN + 1]).is_err());
}

#[test]
fn provider_versions_and_current() {
    let p = provider(&[3, 1, 2]);
    assert_eq!(p.current_version().get(), 3);
    assert_eq!(
        p.versions().iter().map(|v| v.get()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(LocalKeyProvider::new(vec![]).is_err());
    let dup = vec![
        (
            RootKeyVersion::new(1).unwrap(),
            RootKey::generate().unwrap(),
        ),
        (
            RootKeyVersion::new(1).unwrap(),
            RootKey::generate().unwrap(),
        ),
    ];
    assert!(LocalKeyProvider::new(dup).is_err());
    assert!(RootKeyVersion::new(0).is_err());
    assert!(!format!("{p:?}").contains("kek"));
}

#[test]
fn key_file_is_created_0600_and_refused_when_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    FileKeyProvider::create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Refuses to overwrite.
    assert!(FileKeyProvider::create(&path).is_err());
    let p = FileKeyProvider::load(&path).unwrap();
    assert_eq!(p.current_version().get(), 1);

    // A key wrapped by one load unwraps after another load of the same file.
    let id = akid([5; 16], "applicant", 1);
    let key = ApplicantKey::generate().unwrap();
    let w = wrap_applicant_key(&p, p.current_version(), &id, &key).unwrap();
    let again = FileKeyProvider::load(&path).unwrap();
    assert_eq!(
        unwrap_applicant_key(&again, again.current_version(), &id, &w)
            .unwrap()
            .expose(),
        key.expose()
    );

    for bad_mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad_mode)).unwrap();
        let e = FileKeyProvider::load(&path).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::KeyProvider(_)));
        assert!(msg.contains("chmod 600"), "{msg}");
        let text = std::fs::read_to_string(&path).unwrap();
        let hex_key = text.lines().find(|l| l.starts_with("1:")).unwrap();
        assert!(!msg.contains(&hex_key[2..]), "error message leaks the key");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(FileKeyProvider::load(&path).is_ok());
    assert!(FileKeyProvider::load(dir.path()).is_err());
    // A symbolic link is not followed, even to a private file.
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(
        FileKeyProvider::load(&link),
        Err(Error::KeyProvider(_))
    ));
    assert!(FileKeyProvider::load(&dir.path().join("missing")).is_err());
}

#[test]
fn key_file_with_several_versions_and_malformed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let write = |text: &str| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let k1 = "11".repeat(32);
    let k2 = "22".repeat(32);
    write(&format!("# comment\n1:{k1}\n\n2:{k2}\n"));
    let p = FileKeyProvider::load(&path).unwrap();
    assert_eq!(p.current_version().get(), 2);
    assert_eq!(p.versions().len(), 2);
    for bad in [
        format!("1:{}", "11".repeat(31)),
        format!("0:{k1}"),
        format!("x:{k1}"),
        format!("1 {k1}"),
        format!("1:{}zz", "11".repeat(31)),
        format!("1:{k1}\n1:{k2}"),
        "# only a comment\n".to_string(),
        format!("1:{k1} # 2:{k2} in a comment is ignored, so only one key\n0:bad"),
    ] {
        write(&bad);
        let e = FileKeyProvider::load(&path).unwrap_err();
        assert!(matches!(e, Error::KeyProvider(_)), "{bad:?}");
        assert!(
            !e.to_string().contains("1111"),
            "error message leaks key material"
        );
    }
}

#[test]
fn text_syntax_accepts_commas_spaces_and_comments() {
    let k1 = "ab".repeat(32);
    let k2 = "cd".repeat(32);
    let p = LocalKeyProvider::parse(&format!("1:{k1}, 2:{k2} # trailing comment")).unwrap();
    assert_eq!(p.current_version().get(), 2);
    assert!(LocalKeyProvider::parse("1:nothex").is_err());
    assert!(LocalKeyProvider::parse("").is_err());
}

/// Runs only inside the child process started by
/// `env_provider_reads_vault_root_keys` (the environment cannot be changed
/// safely inside a multi-threaded test process).
#[test]
fn env_provider_child() {
    if std::env::var_os("VAULT_TEST_ENV_CHILD").is_none() {
        return;
    }
    let p = LocalKeyProvider::from_env().unwrap();
    assert_eq!(
        p.versions().iter().map(|v| v.get()).collect::<Vec<_>>(),
        vec![4, 7]
    );
}

#[test]
fn env_provider_reads_vault_root_keys() {
    let exe = std::env::current_exe().unwrap();
    let run = |value: Option<String>| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--exact",
            "keys::tests::env_provider_child",
            "--test-threads=1",
        ])
        .env("VAULT_TEST_ENV_CHILD", "1")
        .env_remove(ENV_ROOT_KEYS);
        if let Some(v) = value {
            cmd.env(ENV_ROOT_KEYS, v);
        }
        cmd.output().unwrap()
    };
    let ok = run(Some(format!("4:{},7:{}", "01".repeat(32), "02".repeat(32))));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 passed"));
    let missing = run(None);
    assert!(!missing.status.success());
}

#[test]
fn key_file_versions_are_added_and_removed_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    FileKeyProvider::create(&path).unwrap();
    let v1 = FileKeyProvider::load(&path).unwrap();
    let id = akid([3; 16], "a", 1);
    let key = ApplicantKey::generate().unwrap();
    let w1 = wrap_applicant_key(&v1, v1.current_version(), &id, &key).unwrap();
    assert_eq!(FileKeyProvider::add_version(&path).unwrap().get(), 2);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let both = FileKeyProvider::load(&path).unwrap();
    assert_eq!(both.current_version().get(), 2);
    // Version 1 still opens its wraps while both are loaded.
    let v = RootKeyVersion::new(1).unwrap();
    assert_eq!(
        unwrap_applicant_key(&both, v, &id, &w1).unwrap().expose(),
        key.expose()
    );
    FileKeyProvider::remove_version(&path, v).unwrap();
    let only2 = FileKeyProvider::load(&path).unwrap();
    assert_eq!(only2.versions(), vec![RootKeyVersion::new(2).unwrap()]);
    assert!(matches!(
        unwrap_applicant_key(&only2, v, &id, &w1),
        Err(Error::UnknownKeyVersion(1))
    ));
    assert!(
        FileKeyProvider::remove_version(&path, RootKeyVersion::new(2).unwrap()).is_err(),
        "the last key stays"
    );
}
