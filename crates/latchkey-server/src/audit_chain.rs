//! The audit log's hash chain, without I/O. Entry `n` stores `prev_hash` (the hash of entry
//! `n - 1`, 32 zero bytes for the first) and `hash = SHA-256("latchkey-audit-v1" ‖ 0 ‖
//! prev_hash ‖ canonical(entry))`, where `canonical` is the compact JSON array
//! `[seq, at, actor, action, target, details]` (serde_json's escaping is deterministic).
//! Altering an entry changes its hash; deleting one leaves a gap in `seq`; reordering breaks
//! `prev_hash`. `verify` walks the chain and names the first entry where it breaks.

use ring::digest::{Context, SHA256};
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

/// Verifies entries sorted by `seq`; `None` when the chain is intact.
pub fn verify(entries: &[Stored]) -> Option<Break> {
    let mut prev: Vec<u8> = GENESIS.to_vec();
    for (expected_seq, s) in (1..).zip(entries) {
        let seq = s.entry.seq;
        if seq != expected_seq {
            return Some(Break {
                seq,
                reason: if seq > expected_seq {
                    format!("entries {expected_seq}..{} are missing (deleted)", seq - 1)
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
}
