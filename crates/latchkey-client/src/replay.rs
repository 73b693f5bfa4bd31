//! The per-instance memory of single-use identifiers: DPoP proofs' `jti` (RFC 9449 section
//! 11.1) and logout tokens' `jti` (OpenID Connect Back-Channel Logout 1.0 section 2.6, step 8).
//! Each entry is kept while its token or proof could still be accepted, and no longer; the
//! memory holds at most a fixed number of entries, and when it is full it refuses new ones
//! (fails closed) rather than forgetting entries that are still live.

use std::collections::HashMap;
use std::sync::Mutex;

/// The identifiers seen (as SHA-256 fingerprints), with when each stops being acceptable.
#[derive(Default)]
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

/// What [`ReplayCache::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The identifier's first use: it is now remembered.
    First,
    /// The identifier was used before and is still remembered.
    Replayed,
    /// The memory is full of live entries: refused until some age out.
    Full,
}

impl ReplayCache {
    /// Records `key` as used until `until` (Unix seconds). A poisoned lock counts as full.
    pub(crate) fn insert(&self, key: [u8; 32], until: i64, now: i64, cap: usize) -> Seen {
        let Ok(mut seen) = self.seen.lock() else {
            return Seen::Full;
        };
        if let Some(t) = seen.get(&key)
            && *t >= now
        {
            return Seen::Replayed;
        }
        if seen.len() >= cap {
            seen.retain(|_, t| *t >= now);
            if seen.len() >= cap {
                return Seen::Full;
            }
        }
        seen.insert(key, until);
        Seen::First
    }
}

/// The SHA-256 of `parts`, each followed by a NUL byte (so that `("ab", "c")` and `("a", "bc")`
/// differ): what the cache stores instead of attacker-chosen strings of any length.
pub(crate) fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
        ctx.update(b"\0");
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_11_1_a_proof_is_accepted_once_while_it_is_acceptable() {
        let c = ReplayCache::default();
        assert_eq!(c.insert([1; 32], 100, 50, 10), Seen::First);
        assert_eq!(c.insert([1; 32], 100, 60, 10), Seen::Replayed);
        // Past its window the proof is stale anyway; the entry no longer refuses.
        assert_eq!(c.insert([1; 32], 200, 101, 10), Seen::First);
    }

    #[test]
    fn a_full_replay_cache_fails_closed_until_entries_age_out() {
        let c = ReplayCache::default();
        assert_eq!(c.insert([1; 32], 100, 50, 2), Seen::First);
        assert_eq!(c.insert([2; 32], 100, 50, 2), Seen::First);
        assert_eq!(c.insert([3; 32], 100, 50, 2), Seen::Full);
        assert_eq!(c.insert([3; 32], 200, 101, 2), Seen::First);
    }

    #[test]
    fn fingerprints_keep_part_boundaries() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"a", b"bc"]), fingerprint(&[b"a", b"bc"]));
    }
}
