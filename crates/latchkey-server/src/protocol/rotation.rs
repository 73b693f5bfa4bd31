//! Signing-key rotation as a pure plan. Keys move `staged` (published, not signing) →
//! `active` (signing) → `retiring` (published until every token it signed has expired) →
//! `removed`. A staged key is published at least `lead` seconds before it signs, and `lead` is
//! at least the JWKS cache lifetime, so a verifier has always seen a key before meeting it.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> staged: schedule (interval - lead before due) or `keys rotate`
//!     staged --> active: activate_at reached
//!     active --> retiring: its successor activates
//!     retiring --> removed: retired_at + retire_after
//!     staged --> removed: `keys revoke`
//!     active --> removed: `keys revoke` (the staged key, or a new one, signs at once)
//!     retiring --> removed: `keys revoke`
//! ```

use latchkey_core::SigningAlg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Staged,
    Active,
    Retiring,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Staged => "staged",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
        }
    }
    pub fn parse(s: &str) -> Option<KeyState> {
        match s {
            "staged" => Some(KeyState::Staged),
            "active" => Some(KeyState::Active),
            "retiring" => Some(KeyState::Retiring),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub activate_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a key signs before its successor takes over.
    pub interval: i64,
    /// How long a staged key is published before it signs (≥ JWKS cache lifetime).
    pub lead: i64,
    /// How long a retiring key stays published (longest token lifetime plus leeway).
    pub retire_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Generate and publish a key for `alg` that starts signing at `activate_at`.
    Stage { alg: SigningAlg, activate_at: i64 },
    /// `staged` starts signing; the current active key (if any) starts retiring.
    Promote {
        staged: String,
        retire: Option<String>,
    },
    /// Unpublish a key whose tokens have all expired.
    Remove { kid: String },
}

/// What the scheduled rotation should do now.
pub fn plan(keys: &[KeyInfo], p: Policy, now: i64) -> Vec<Action> {
    let mut out = Vec::new();
    for alg in SigningAlg::ALL {
        let active = keys
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active);
        let staged = keys
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Staged);
        match (active, staged) {
            (_, Some(s)) if s.activate_at.is_none_or(|t| t <= now) => out.push(Action::Promote {
                staged: s.kid.clone(),
                retire: active.map(|a| a.kid.clone()),
            }),
            (Some(a), None) => {
                let due = a.activated_at.unwrap_or(now) + p.interval;
                if due - p.lead <= now {
                    out.push(Action::Stage {
                        alg,
                        activate_at: due.max(now + p.lead),
                    });
                }
            }
            (None, None) => out.push(Action::Stage {
                alg,
                activate_at: now,
            }),
            _ => {}
        }
        for k in keys
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Retiring)
        {
            if k.retired_at.unwrap_or(now) + p.retire_after <= now {
                out.push(Action::Remove { kid: k.kid.clone() });
            }
        }
    }
    out
}

/// What `latchkey keys rotate` does: stage a successor for every algorithm that has none,
/// activating after the lead time (never sooner: verifiers must see it first).
pub fn plan_manual(keys: &[KeyInfo], p: Policy, now: i64) -> Vec<Action> {
    SigningAlg::ALL
        .into_iter()
        .filter(|alg| {
            !keys
                .iter()
                .any(|k| k.alg == *alg && k.state == KeyState::Staged)
        })
        .map(|alg| Action::Stage {
            alg,
            activate_at: now + p.lead,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        interval: 1000,
        lead: 100,
        retire_after: 50,
    };

    fn key(
        kid: &str,
        state: KeyState,
        activate_at: Option<i64>,
        activated_at: Option<i64>,
        retired_at: Option<i64>,
    ) -> KeyInfo {
        KeyInfo {
            kid: kid.into(),
            alg: SigningAlg::ES256,
            state,
            activate_at,
            activated_at,
            retired_at,
        }
    }

    fn es256(actions: Vec<Action>) -> Vec<Action> {
        actions
            .into_iter()
            .filter(|a| !matches!(a, Action::Stage { alg, .. } if *alg != SigningAlg::ES256))
            .collect()
    }

    #[test]
    fn stages_lead_time_before_due_and_never_sooner_than_lead() {
        let keys = vec![key("a", KeyState::Active, None, Some(0), None)];
        assert!(es256(plan(&keys, P, 899)).is_empty());
        assert_eq!(
            es256(plan(&keys, P, 900)),
            vec![Action::Stage {
                alg: SigningAlg::ES256,
                activate_at: 1000
            }]
        );
        // Overdue (e.g. the service was down): still published `lead` before it signs.
        assert_eq!(
            es256(plan(&keys, P, 5000)),
            vec![Action::Stage {
                alg: SigningAlg::ES256,
                activate_at: 5100
            }]
        );
    }

    #[test]
    fn promotes_when_due_and_retires_the_old_key() {
        let keys = vec![
            key("a", KeyState::Active, None, Some(0), None),
            key("b", KeyState::Staged, Some(1000), None, None),
        ];
        assert!(es256(plan(&keys, P, 999)).is_empty());
        assert_eq!(
            es256(plan(&keys, P, 1000)),
            vec![Action::Promote {
                staged: "b".into(),
                retire: Some("a".into())
            }]
        );
    }

    #[test]
    fn removes_retiring_keys_after_their_tokens_expired() {
        let keys = vec![
            key("b", KeyState::Active, None, Some(1000), None),
            key("a", KeyState::Retiring, None, Some(0), Some(1000)),
        ];
        assert!(es256(plan(&keys, P, 1049)).is_empty());
        assert_eq!(
            es256(plan(&keys, P, 1050)),
            vec![Action::Remove { kid: "a".into() }]
        );
    }

    #[test]
    fn manual_rotation_respects_the_lead_time() {
        let keys = vec![key("a", KeyState::Active, None, Some(0), None)];
        let actions = plan_manual(&keys, P, 10);
        assert_eq!(actions.len(), 3);
        assert!(actions.iter().all(|a| matches!(
            a,
            Action::Stage {
                activate_at: 110,
                ..
            }
        )));
    }
}
