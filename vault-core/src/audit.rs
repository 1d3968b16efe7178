//! The audit log: an append-only, keyed hash chain of privileged actions.
//!
//! Record `n` carries `mac_n = HMAC-SHA256(K, "vault/v1/audit" || be64(n) ||
//! lp(tenant) || be64(at) || lp(actor) || lp(action) || lp(target) ||
//! lp(outcome) || mac_{n-1})`, with `mac_0` = 32 zero bytes and `lp(x)` a
//! big-endian u32 length followed by `x`. `K` is derived from the vault's
//! system key, which is stored only wrapped under the root key, so whoever
//! can write the database cannot recompute the chain. The head (sequence
//! number and MAC) is also anchored outside the database, as checkpoint
//! objects in the blob store, so a cut-off tail is detected back to the last
//! checkpoint. Records never hold a file name or document content.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::secret::Secret32;

/// Who performed an action: an API key id, `operator`, a job name. Never a
/// person's name or email.
#[derive(Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// An actor label: 1–128 characters of `A-Za-z0-9._:@-`.
    pub fn new(s: &str) -> Result<Self> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:@".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidArgument(
                "actor must be 1-128 characters of A-Za-z0-9._:@-",
            ))
        }
    }

    /// The operator's command line.
    pub fn operator() -> Self {
        Self("operator".into())
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({})", self.0)
    }
}

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It was refused (authorization, legal hold).
    Denied,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
        }
    }
}

/// One action to record.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    pub(crate) tenant: Option<TenantId>,
    pub(crate) actor: &'a Actor,
    pub(crate) action: &'static str,
    pub(crate) target: String,
    pub(crate) outcome: Outcome,
}

/// A stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// The tenant acted on, if any.
    pub tenant: Option<TenantId>,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What (`document.read`, `applicant.erase`, …).
    pub action: String,
    /// On what: ids only.
    pub target: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// The chained MAC.
    pub mac: [u8; 32],
}

fn push_lp(h: &mut Hmac<Sha256>, bytes: &[u8]) {
    h.update(&(bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// The chained MAC of a record with these fields.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_mac(
    key: &Secret32,
    seq: u64,
    tenant: Option<TenantId>,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut h =
        <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    h.update(b"vault/v1/audit");
    h.update(&seq.to_be_bytes());
    push_lp(
        &mut h,
        tenant.map(|t| t.to_string()).unwrap_or_default().as_bytes(),
    );
    h.update(&at_ms.to_be_bytes());
    push_lp(&mut h, actor.as_bytes());
    push_lp(&mut h, action.as_bytes());
    push_lp(&mut h, target.as_bytes());
    push_lp(&mut h, outcome.as_bytes());
    h.update(prev);
    h.finalize().into_bytes().into()
}

/// The audit head anchored outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the last record when the checkpoint was taken.
    pub seq: u64,
    /// That record's MAC.
    pub mac: [u8; 32],
    /// When (Unix milliseconds).
    pub at_ms: i64,
}

impl Checkpoint {
    pub(crate) fn to_json(&self) -> String {
        format!(
            "{{\"seq\":{},\"mac\":\"{}\",\"at_ms\":{}}}\n",
            self.seq,
            hex::encode(self.mac),
            self.at_ms
        )
    }

    pub(crate) fn from_json(text: &str) -> Result<Self> {
        let bad = || Error::Corrupt("malformed audit checkpoint");
        let field = |name: &str| -> Result<String> {
            let key = format!("\"{name}\":");
            let start = text.find(&key).ok_or_else(bad)? + key.len();
            let rest = &text[start..];
            let end = rest.find([',', '}']).ok_or_else(bad)?;
            Ok(rest[..end].trim().trim_matches('"').to_owned())
        };
        let mac: [u8; 32] = hex::decode(field("mac")?)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        Ok(Self {
            seq: field("seq")?.parse().map_err(|_| bad())?,
            mac,
            at_ms: field("at_ms")?.parse().map_err(|_| bad())?,
        })
    }
}

/// What is wrong with the log, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditProblem {
    /// Records are missing before `seq` (removed from the middle or the
    /// start).
    Missing {
        /// The first record present after the gap.
        seq: u64,
    },
    /// Record `seq` does not verify against its MAC and the chain: edited,
    /// inserted, or moved.
    Tampered {
        /// The first record that fails.
        seq: u64,
    },
    /// The log ends at `last_seq` but a checkpoint saw `checkpoint_seq`: its
    /// tail was cut off (or the checkpointed record was rewritten).
    Truncated {
        /// The last record in the database.
        last_seq: u64,
        /// The checkpoint's sequence number.
        checkpoint_seq: u64,
    },
    /// The database's head row disagrees with the last record.
    HeadMismatch,
}

/// The result of verifying the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Records checked.
    pub records: u64,
    /// The latest checkpoint found outside the database.
    pub checkpoint: Option<Checkpoint>,
    /// The first problem found, if any.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// Whether the log verified completely.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies `records` (ordered by seq) against the key, the database head
/// and every checkpoint taken outside the database.
pub(crate) fn verify(
    key: &Secret32,
    records: &[AuditRecord],
    head: (u64, [u8; 32]),
    checkpoints: &[Checkpoint],
) -> AuditReport {
    let checkpoint = checkpoints.iter().max_by_key(|c| (c.seq, c.at_ms)).cloned();
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut problem = None;
    for r in records {
        if r.seq != expected {
            problem = Some(AuditProblem::Missing { seq: r.seq });
            break;
        }
        let mac = record_mac(
            key, r.seq, r.tenant, r.at_ms, &r.actor, &r.action, &r.target, &r.outcome, &prev,
        );
        if !bool::from(mac.ct_eq(&r.mac)) {
            problem = Some(AuditProblem::Tampered { seq: r.seq });
            break;
        }
        prev = r.mac;
        expected += 1;
    }
    let last_seq = expected - 1;
    if problem.is_none() {
        // Every checkpoint must still match: one past the end means the tail
        // was cut; one whose MAC differs means history was rewritten there
        // (also what restoring an older database backup looks like).
        let mut sorted: Vec<&Checkpoint> = checkpoints.iter().collect();
        sorted.sort_by_key(|c| (c.seq, c.at_ms));
        for cp in sorted {
            match cp.seq.checked_sub(1).and_then(|i| records.get(i as usize)) {
                _ if cp.seq == 0 => {}
                None => {
                    problem = Some(AuditProblem::Truncated {
                        last_seq,
                        checkpoint_seq: cp.seq,
                    });
                    break;
                }
                Some(r) if !bool::from(r.mac.ct_eq(&cp.mac)) => {
                    problem = Some(AuditProblem::Tampered { seq: cp.seq });
                    break;
                }
                Some(_) => {}
            }
        }
    }
    if problem.is_none() && (head.0 != last_seq || !bool::from(head.1.ct_eq(&prev))) {
        problem = Some(AuditProblem::HeadMismatch);
    }
    AuditReport {
        records: records.len() as u64,
        checkpoint,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret32 {
        Secret32::from_slice(&[9u8; 32]).unwrap()
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let mac = record_mac(
                    &key(),
                    seq,
                    None,
                    seq as i64,
                    "operator",
                    "x",
                    "t",
                    "ok",
                    &prev,
                );
                prev = mac;
                AuditRecord {
                    seq,
                    tenant: None,
                    at_ms: seq as i64,
                    actor: "operator".into(),
                    action: "x".into(),
                    target: "t".into(),
                    outcome: "ok".into(),
                    mac,
                }
            })
            .collect()
    }

    #[test]
    fn checkpoint_json_round_trips() {
        let c = Checkpoint {
            seq: 42,
            mac: [7; 32],
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(Checkpoint::from_json(&c.to_json()).unwrap(), c);
        assert!(Checkpoint::from_json("{}").is_err());
    }

    #[test]
    fn a_clean_chain_verifies_and_every_tamper_is_located() {
        let recs = chain(10);
        let head = (10, recs[9].mac);
        let cp = vec![Checkpoint {
            seq: 8,
            mac: recs[7].mac,
            at_ms: 0,
        }];
        assert!(verify(&key(), &recs, head, &cp).is_ok());
        // Edited field.
        let mut r = recs.clone();
        r[4].target = "other".into();
        assert_eq!(
            verify(&key(), &r, head, &cp).problem,
            Some(AuditProblem::Tampered { seq: 5 })
        );
        // Removed record.
        let mut r = recs.clone();
        r.remove(3);
        assert_eq!(
            verify(&key(), &r, head, &cp).problem,
            Some(AuditProblem::Missing { seq: 5 })
        );
        // Reordered (contents swapped, seq kept).
        let mut r = recs.clone();
        let (a, b) = (r[2].clone(), r[3].clone());
        r[2] = AuditRecord { seq: 3, ..b };
        r[3] = AuditRecord { seq: 4, ..a };
        assert_eq!(
            verify(&key(), &r, head, &cp).problem,
            Some(AuditProblem::Tampered { seq: 3 })
        );
        // Chain recomputed without the key (with another key) does not help.
        let forged: Vec<_> = {
            let other = Secret32::from_slice(&[1u8; 32]).unwrap();
            let mut prev = [0u8; 32];
            recs.iter()
                .map(|x| {
                    let mac = record_mac(
                        &other, x.seq, None, x.at_ms, &x.actor, &x.action, "forged", &x.outcome,
                        &prev,
                    );
                    prev = mac;
                    AuditRecord {
                        target: "forged".into(),
                        mac,
                        ..x.clone()
                    }
                })
                .collect()
        };
        assert_eq!(
            verify(&key(), &forged, head, &cp).problem,
            Some(AuditProblem::Tampered { seq: 1 })
        );
        // Tail cut back past the checkpoint.
        let r = recs[..6].to_vec();
        assert_eq!(
            verify(&key(), &r, (6, recs[5].mac), &cp).problem,
            Some(AuditProblem::Truncated {
                last_seq: 6,
                checkpoint_seq: 8
            })
        );
        // Tail cut after the checkpoint, head left behind.
        let r = recs[..9].to_vec();
        assert_eq!(
            verify(&key(), &r, head, &cp).problem,
            Some(AuditProblem::HeadMismatch)
        );
    }

    #[test]
    fn actor_labels_are_restricted() {
        assert!(Actor::new("api-key:0b6f").is_ok());
        assert!(Actor::new("jane doe").is_err());
        assert!(Actor::new("").is_err());
    }
}
