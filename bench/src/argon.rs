//! The ceiling for password logins: how many Argon2id hashes per second this machine computes
//! with the server's default parameters, on every core, outside the server.

use anyhow::{Result, anyhow};
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::time::{Duration, Instant};

/// The server's defaults (`Argon2Config::default()`): 19 MiB, 2 passes, 1 lane, 32 bytes.
pub const MEMORY_KIB: u32 = 19456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
pub const OUTPUT_LEN: usize = 32;

/// Hashes per second on `threads` threads hashing for `duration` each.
pub fn rate(threads: usize, duration: Duration) -> Result<f64> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN))
        .map_err(|e| anyhow!("Argon2 parameters: {e}"))?;
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let params = params.clone();
                s.spawn(move || -> Result<f64> {
                    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    let started = Instant::now();
                    let mut n = 0u64;
                    while started.elapsed() < duration {
                        let salt = SaltString::encode_b64(&crate::login::random_bytes(16)?)
                            .map_err(|e| anyhow!("salt: {e}"))?;
                        argon
                            .hash_password(crate::login::PASSWORD.as_bytes(), &salt)
                            .map_err(|e| anyhow!("Argon2: {e}"))?;
                        n += 1;
                    }
                    Ok(n as f64 / started.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("Argon2 thread panicked"))?)
            .collect::<Result<Vec<f64>>>()
    })?;
    Ok(per_thread.iter().sum())
}

/// One PHC string with the server's defaults, as a stored password hash looks.
pub fn phc_hash(password: &str) -> Result<String> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN))
        .map_err(|e| anyhow!("Argon2 parameters: {e}"))?;
    let salt = SaltString::encode_b64(&crate::login::random_bytes(16)?)
        .map_err(|e| anyhow!("salt: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow!("Argon2: {e}"))?
        .to_string())
}
