//! The audit log's hash chain, without I/O. Entry `n` stores `prev_hash` (the hash of entry
//! `n - 1`, 32 zero bytes for the first) and `hash = SHA-256("latchkey-audit-v1" ‖ 0 ‖
//! prev_hash ‖ canonical(entry))`, where `canonical` is the compact JSON array
//! `[seq, at, actor, action, target, details]` (serde_json's escaping is deterministic).
//! Altering an entry changes its hash; deleting one leaves a gap in `seq`; reordering breaks
//! `prev_hash`. `verify` walks the chain and names the first entry where it breaks.
//!
//! Retention prunes the oldest entries and leaves a [`Checkpoint`] in their place: the `seq`
//! and hash of the last pruned entry, signed with HMAC-SHA256 under a key derived from the KEK
//! ([`checkpoint_key`]). [`verify_with_checkpoints`] checks every checkpoint's signature, that
//! together they account for every pruned entry, and that the remaining chain starts right
//! after the latest one (`seq + 1`, `prev_hash` = its hash). Without the KEK nobody can make a
//! checkpoint that hides deleted entries.

use crate::crypto::Kek;
use ring::digest::{Context, SHA256};
use ring::hmac;
use serde::Serialize;

pub const GENESIS: [u8; 32] = [0; 32];

/// The fields an entry's hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON text, as stored.
    pub details: String,
}

pub fn canonical(e: &Entry) -> Vec<u8> {
    serde_json::to_vec(&(e.seq, e.at, &e.actor, &e.action, &e.target, &e.details))
        .unwrap_or_default()
}

pub fn entry_hash(prev: &[u8], e: &Entry) -> Vec<u8> {
    let mut c = Context::new(&SHA256);
    c.update(b"latchkey-audit-v1\0");
    c.update(prev);
    c.update(&canonical(e));
    c.finish().as_ref().to_vec()
}

/// An entry as stored: the chain fields may be missing when someone tampered with them.
#[derive(Debug, Clone)]
pub struct Stored {
    pub entry: Entry,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The first entry (by `seq`) that does not verify.
    pub seq: i64,
    pub reason: String,
}

/// Verifies entries sorted by `seq`, from the first one; `None` when the chain is intact.
pub fn verify(entries: &[Stored]) -> Option<Break> {
    walk(entries, 1, GENESIS.to_vec())
}

/// Walks entries that must start at `first_seq`, linked to `prev`.
fn walk(entries: &[Stored], first_seq: i64, mut prev: Vec<u8>) -> Option<Break> {
    for (expected_seq, s) in (first_seq..).zip(entries) {
        let seq = s.entry.seq;
        if seq != expected_seq {
            let unaccounted = if expected_seq == first_seq {
                "; no signed checkpoint records them as pruned"
            } else {
                ""
            };
            return Some(Break {
                seq,
                reason: if seq > expected_seq {
                    format!(
                        "entries {expected_seq}..{} are missing (deleted){unaccounted}",
                        seq - 1
                    )
                } else {
                    format!("entry {seq} appears twice or out of order")
                },
            });
        }
        if s.prev_hash.as_deref() != Some(prev.as_slice()) {
            return Some(Break {
                seq,
                reason: "its link to the previous entry is broken (reordered, or an earlier entry was replaced)".into(),
            });
        }
        let h = entry_hash(&prev, &s.entry);
        if s.hash.as_deref() != Some(h.as_slice()) {
            return Some(Break {
                seq,
                reason: "its content does not match its hash (altered)".into(),
            });
        }
        prev = h;
    }
    None
}

/// A signed record that entries `seq - pruned + 1 ..= seq` were pruned on purpose; `hash` is
/// the hash of entry `seq`, which the first remaining entry carries as its `prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(serialize_with = "as_hex")]
    pub hash: Vec<u8>,
    pub pruned: i64,
    pub created_at: i64,
    #[serde(serialize_with = "as_hex")]
    pub mac: Vec<u8>,
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// The purpose label of the checkpoint signing key; a different label gives an unrelated key,
/// so a CSRF token or any other value derived from the KEK can never pass as a checkpoint MAC.
const CHECKPOINT_LABEL: &[u8] = b"latchkey audit checkpoint v1";

/// The HMAC-SHA256 key checkpoints are signed with, derived from the KEK.
pub fn checkpoint_key(kek: &Kek) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &kek.derive(CHECKPOINT_LABEL))
}

fn checkpoint_message(seq: i64, hash: &[u8], pruned: i64, created_at: i64) -> Vec<u8> {
    let mut m = b"latchkey-audit-checkpoint-v1\0".to_vec();
    m.extend_from_slice(
        &serde_json::to_vec(&(seq, hex::encode(hash), pruned, created_at)).unwrap_or_default(),
    );
    m
}

impl Checkpoint {
    /// A checkpoint signed under `key`.
    pub fn signed(key: &hmac::Key, seq: i64, hash: Vec<u8>, pruned: i64, created_at: i64) -> Self {
        let mac = hmac::sign(key, &checkpoint_message(seq, &hash, pruned, created_at))
            .as_ref()
            .to_vec();
        Checkpoint {
            seq,
            hash,
            pruned,
            created_at,
            mac,
        }
    }

    /// Whether the signature is valid under `key` (constant-time comparison).
    pub fn is_valid(&self, key: &hmac::Key) -> bool {
        let m = checkpoint_message(self.seq, &self.hash, self.pruned, self.created_at);
        hmac::verify(key, &m, &self.mac).is_ok()
    }
}

/// Verifies a pruned chain: every checkpoint (sorted by `seq`) is signed under `key` and
/// follows the previous one without a hole, and `entries` (sorted by `seq`) continue from the
/// latest checkpoint. `None` when all of it is intact.
pub fn verify_with_checkpoints(
    checkpoints: &[Checkpoint],
    entries: &[Stored],
    key: &hmac::Key,
) -> Option<Break> {
    let mut covered = 0;
    for cp in checkpoints {
        if !cp.is_valid(key) {
            return Some(Break {
                seq: cp.seq,
                reason: format!(
                    "the checkpoint for entries up to {} has no valid signature (forged or altered, or signed under another key-encryption key)",
                    cp.seq
                ),
            });
        }
        let first = cp.seq - cp.pruned + 1;
        if first != covered + 1 || cp.pruned < 1 {
            return Some(Break {
                seq: covered + 1,
                reason: if first > covered + 1 {
                    format!(
                        "entries {}..{} are missing: they were pruned but their checkpoint is missing (deleted)",
                        covered + 1,
                        first - 1
                    )
                } else {
                    format!(
                        "the checkpoint for entries up to {} overlaps an earlier one",
                        cp.seq
                    )
                },
            });
        }
        covered = cp.seq;
    }
    let Some(last) = checkpoints.last() else {
        return walk(entries, 1, GENESIS.to_vec());
    };
    if entries.is_empty() {
        return Some(Break {
            seq: last.seq + 1,
            reason: format!(
                "no entry follows the checkpoint at entry {}: pruning always keeps the newest entry, so later entries were deleted",
                last.seq
            ),
        });
    }
    walk(entries, last.seq + 1, last.hash.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Stored> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let entry = Entry {
                    seq,
                    at: 1000 + seq,
                    actor: "cli".into(),
                    action: "policy.lab".into(),
                    target: format!("lab-{seq}"),
                    details: r#"{"min_acr":"mfa"}"#.into(),
                };
                let hash = entry_hash(&prev, &entry);
                let s = Stored {
                    entry,
                    prev_hash: Some(prev.clone()),
                    hash: Some(hash.clone()),
                };
                prev = hash;
                s
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), None);
        assert_eq!(verify(&[]), None);
    }

    #[test]
    fn alteration_deletion_and_reordering_are_each_caught_at_the_first_bad_entry() {
        let mut c = chain(5);
        c[2].entry.details = r#"{"min_acr":"pwd"}"#.into();
        let b = verify(&c).unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("altered"));

        let mut c = chain(5);
        c.remove(1);
        let b = verify(&c).unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("missing"));

        let mut c = chain(5);
        // Swap the contents of entries 2 and 3, keeping their sequence numbers.
        let (a, b2) = (c[1].clone(), c[2].clone());
        c[1] = Stored {
            entry: Entry { seq: 2, ..b2.entry },
            ..b2
        };
        c[2] = Stored {
            entry: Entry { seq: 3, ..a.entry },
            ..a
        };
        assert_eq!(verify(&c).unwrap().seq, 2);
    }

    fn key() -> hmac::Key {
        checkpoint_key(&Kek::from_bytes(&[9u8; 32]).unwrap())
    }

    /// The chain with entries 1..=n pruned behind checkpoints at each of `cuts`.
    fn pruned(total: i64, cuts: &[i64]) -> (Vec<Checkpoint>, Vec<Stored>) {
        let c = chain(total);
        let mut prev = 0;
        let cps = cuts
            .iter()
            .map(|&cut| {
                let cp = Checkpoint::signed(
                    &key(),
                    cut,
                    c[(cut - 1) as usize].hash.clone().unwrap(),
                    cut - prev,
                    2000,
                );
                prev = cut;
                cp
            })
            .collect();
        (cps, c.into_iter().skip(prev as usize).collect())
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_checkpoints() {
        let (cps, rest) = pruned(10, &[3, 7]);
        assert_eq!(verify_with_checkpoints(&cps, &rest, &key()), None);
        assert_eq!(verify_with_checkpoints(&[], &chain(4), &key()), None);
        // Without the checkpoints, the pruned entries look deleted.
        let b = verify_with_checkpoints(&[], &rest, &key()).unwrap();
        assert!(b.reason.contains("no signed checkpoint"), "{b:?}");
    }

    #[test]
    fn forged_deleted_and_dangling_checkpoints_are_caught() {
        let (mut cps, rest) = pruned(10, &[3, 7]);
        cps[1].hash[0] ^= 1;
        let b = verify_with_checkpoints(&cps, &rest, &key()).unwrap();
        assert!(b.reason.contains("no valid signature"), "{b:?}");
        let other = checkpoint_key(&Kek::from_bytes(&[1u8; 32]).unwrap());
        let (cps, rest) = pruned(10, &[3, 7]);
        assert!(verify_with_checkpoints(&cps, &rest, &other).is_some());

        let (mut cps, rest) = pruned(10, &[3, 7]);
        cps.remove(0);
        let b = verify_with_checkpoints(&cps, &rest, &key()).unwrap();
        assert_eq!(b.seq, 1);
        assert!(b.reason.contains("checkpoint is missing"), "{b:?}");

        let (cps, _) = pruned(10, &[3, 7]);
        let b = verify_with_checkpoints(&cps, &[], &key()).unwrap();
        assert!(b.reason.contains("no entry follows"), "{b:?}");

        let (cps, mut rest) = pruned(10, &[3, 7]);
        rest[0].prev_hash = Some(vec![0; 32]);
        assert_eq!(verify_with_checkpoints(&cps, &rest, &key()).unwrap().seq, 8);
    }
}
