//! Passwords: NIST SP 800-63B rules (length limits, a blocklist of common and context-specific
//! passwords, no composition rules) and Argon2id hashing on a bounded blocking pool, so a burst
//! of logins can neither stall the async workers nor use unbounded memory.

use crate::config::{Argon2Config, PasswordConfig};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};
use unicode_normalization::UnicodeNormalization;

/// Why a new password was refused; the message is shown next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    #[error("Use at most {0} characters.")]
    TooLong(usize),
    #[error("This password is too common or too easy to guess; choose another one.")]
    Guessable,
}

/// NFKC-normalises a password (NIST SP 800-63B-4 section 3.1.1.2) so the same password typed
/// on different keyboards hashes the same.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// Checks a new password against the length rules and the blocklist; `context` holds words an
/// attacker would try first (the user's email and name, the service's name).
pub fn check_new_password(
    rules: &PasswordConfig,
    password: &str,
    context: &[&str],
) -> Result<(), PasswordRejected> {
    let normalized = normalize(password);
    let len = normalized.chars().count();
    if len < rules.min_length {
        return Err(PasswordRejected::TooShort(rules.min_length));
    }
    if len > rules.max_length {
        return Err(PasswordRejected::TooLong(rules.max_length));
    }
    let mut words: Vec<&str> = vec!["latchkey", "lab", "password"];
    words.extend_from_slice(context);
    // zxcvbn matches against its frequency lists of leaked passwords, common words and names,
    // plus our context words; score 3 means more than 10^8 guesses are needed.
    let estimate = zxcvbn::zxcvbn(&normalized, &words);
    if (estimate.score() as u8) < 3 {
        return Err(PasswordRejected::Guessable);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing pool is shut down")]
    Pool,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with other parameters than the configured ones: store this new hash.
    YesRehash(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(cfg: &Argon2Config) -> Result<PasswordHasher, HashError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let n = if cfg.max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            cfg.max_concurrent
        };
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(n)),
            dummy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Pool)?;
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || f(argon))
            .await
            .map_err(|_| HashError::Pool)
    }

    /// Hashes a (normalised) password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = normalize(password);
        self.run(move |argon| {
            let salt = SaltString::encode_b64(&crate::secret::random_bytes(16))
                .map_err(|e| HashError::Hash(e.to_string()))?;
            argon
                .hash_password(pw.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await?
    }

    /// Verifies `password` against `stored`; with `stored = None` (unknown user) it burns the
    /// same time on a dummy hash so response timing does not reveal which accounts exist.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let stored = match stored {
            Some(s) => s.to_owned(),
            None => {
                let dummy = self
                    .dummy
                    .get_or_try_init(|| self.hash("latchkey-dummy-password"))
                    .await?
                    .clone();
                let pw = normalize(password);
                self.run(move |argon| {
                    if let Ok(parsed) = PasswordHash::new(&dummy) {
                        let _ = argon.verify_password(pw.as_bytes(), &parsed);
                    }
                })
                .await?;
                return Ok(Verified::No);
            }
        };
        let pw = normalize(password);
        let params = self.params.clone();
        let ok = self
            .run(move |argon| {
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    return Ok(None);
                };
                if argon.verify_password(pw.as_bytes(), &parsed).is_err() {
                    return Ok(None);
                }
                let current = Params::try_from(&parsed).ok();
                let same = parsed.algorithm.as_str() == "argon2id"
                    && current.is_some_and(|p| {
                        p.m_cost() == params.m_cost()
                            && p.t_cost() == params.t_cost()
                            && p.p_cost() == params.p_cost()
                    });
                if same {
                    return Ok(Some(None));
                }
                let salt = SaltString::encode_b64(&crate::secret::random_bytes(16))
                    .map_err(|e| HashError::Hash(e.to_string()))?;
                argon
                    .hash_password(pw.as_bytes(), &salt)
                    .map(|h| Some(Some(h.to_string())))
                    .map_err(|e| HashError::Hash(e.to_string()))
            })
            .await??;
        Ok(match ok {
            None => Verified::No,
            Some(None) => Verified::Yes,
            Some(Some(rehash)) => Verified::YesRehash(rehash),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PasswordConfig {
        PasswordConfig::default()
    }

    #[test]
    fn nist_800_63b_length_rules() {
        assert_eq!(
            check_new_password(&rules(), "short", &[]),
            Err(PasswordRejected::TooShort(15))
        );
        let long = "x".repeat(300);
        assert_eq!(
            check_new_password(&rules(), &long, &[]),
            Err(PasswordRejected::TooLong(256))
        );
        check_new_password(&rules(), "violet tractor sings at dawn", &[]).unwrap();
    }

    #[test]
    fn nist_800_63b_blocklist_refuses_common_and_context_passwords() {
        for common in ["passwordpassword", "123456789012345", "qwertyuiopasdfgh"] {
            assert_eq!(
                check_new_password(&rules(), common, &[]),
                Err(PasswordRejected::Guessable),
                "{common}"
            );
        }
        assert_eq!(
            check_new_password(
                &rules(),
                "ada.lovelace@lab.example1",
                &["ada.lovelace@lab.example"]
            ),
            Err(PasswordRejected::Guessable)
        );
    }

    #[tokio::test]
    async fn hash_verify_and_rehash_on_parameter_change() {
        let small = Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            ..Argon2Config::default()
        };
        let h = PasswordHasher::new(&small).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert_eq!(
            h.verify("correct horse battery", Some(&phc)).await.unwrap(),
            Verified::Yes
        );
        assert_eq!(h.verify("wrong", Some(&phc)).await.unwrap(), Verified::No);
        assert_eq!(h.verify("anything", None).await.unwrap(), Verified::No);
        let bigger = PasswordHasher::new(&Argon2Config {
            memory_kib: 2048,
            ..small
        })
        .unwrap();
        assert!(matches!(
            bigger
                .verify("correct horse battery", Some(&phc))
                .await
                .unwrap(),
            Verified::YesRehash(_)
        ));
    }
}
