//! Second factors and passkeys without HTTP: TOTP secrets (RFC 6238, sealed under the KEK),
//! recovery codes, and the WebAuthn relying party (webauthn-rs) with conversions between
//! stored credentials and the ceremony types.

use crate::crypto::kek::Kek;
use crate::secret::{TokenHash, random_bytes};
use crate::store::factors::WebauthnRow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use totp_rs::{Algorithm, Builder, Totp};
use webauthn_rs::prelude::{Credential, DiscoverableKey, Passkey, SecurityKey, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// RFC 6238 parameters every authenticator app understands: SHA-1, 6 digits, 30 s steps,
/// one step of skew either way.
const TOTP_DIGITS: u8 = 6;
const TOTP_STEP: u64 = 30;
const TOTP_SKEW: u16 = 1;

pub fn new_totp_secret() -> Vec<u8> {
    random_bytes(20)
}

pub fn seal_totp(kek: &Kek, user_id: &str, secret: &[u8]) -> Vec<u8> {
    kek.seal(&crate::crypto::kek::totp_aad(user_id), secret)
}

pub fn open_totp(kek: &Kek, user_id: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
    kek.open(&crate::crypto::kek::totp_aad(user_id), sealed)
        .map_err(|e| format!("cannot open TOTP secret: {e}"))
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS)
        .with_step_duration(TOTP_STEP)
        .with_skew(TOTP_SKEW)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', "")))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| format!("TOTP setup failed: {e}"))
}

/// The time step a code matches, if any: the current step or one of the `steps_back` before
/// it (`authentication.totp_steps_back`), never a future one. Every candidate is compared in
/// constant time.
pub fn check_totp(secret: &[u8], code: &str, now: i64, steps_back: u8) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != TOTP_DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "x", "x").ok()?;
    let step = i64::try_from(TOTP_STEP).ok()?;
    let current = now.div_euclid(step);
    let mut matched = None;
    for back in 0..=i64::from(steps_back) {
        let candidate = current - back;
        let at = u64::try_from(candidate * step).ok()?;
        if crate::secret::ct_eq(&t.generate(at).to_string(), &code) && matched.is_none() {
            matched = Some(candidate);
        }
    }
    matched
}

/// What an enrolment page shows: the key as text and the `otpauth://` URI as a QR code.
pub struct TotpEnrolment {
    pub key_base32: String,
    pub uri: String,
    /// `data:image/svg+xml;base64,…`
    pub qr_data_uri: String,
}

pub fn totp_enrolment(secret: &[u8], issuer: &str, email: &str) -> Result<TotpEnrolment, String> {
    let t = totp(secret, issuer, email)?;
    let uri = t.to_url().map_err(|e| e.to_string())?;
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| e.to_string())?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let key = t.secret().to_base32();
    // Groups of four are easier to type.
    let key_base32 = key
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(TotpEnrolment {
        key_base32,
        uri,
        qr_data_uri: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg)
        ),
    })
}

/// Crockford's base32 alphabet: no `i`, `l`, `o` or `u`, so what is read is what was meant.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Ten recovery codes of 80 random bits each, as `xxxx-xxxx-xxxx-xxxx` in Crockford's base32
/// (10 random bytes, 5 bits a character: no bias).
pub fn new_recovery_codes() -> Vec<String> {
    (0..10)
        .map(|_| {
            let bytes = random_bytes(10);
            let mut bits: u128 = 0;
            for b in &bytes {
                bits = (bits << 8) | u128::from(*b);
            }
            let chars: Vec<u8> = (0..16)
                .rev()
                .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize])
                .collect();
            chars
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The server secret ([`crate::store::secrets`]) recovery codes' hashes are keyed with.
pub const RECOVERY_SECRET: &str = "recovery_codes";

/// Keys recovery codes' stored hashes: HMAC-SHA256 under the server secret
/// [`RECOVERY_SECRET`], which the database holds only sealed under the KEK, so a stolen
/// database alone cannot be searched for codes, however fast the attacker's hardware.
pub struct RecoveryKey(ring::hmac::Key);

impl RecoveryKey {
    pub fn from_secret(secret: &[u8]) -> RecoveryKey {
        RecoveryKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// The stored form of `code` for `user_id`: case, spaces and dashes do not matter, and
    /// `o`, `i` and `l` read as `0`, `1` and `1` (Crockford's base32).
    pub fn hash(&self, user_id: &str, code: &str) -> Vec<u8> {
        let norm: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                c => c,
            })
            .collect();
        let msg = format!("{user_id}\0{norm}");
        ring::hmac::sign(&self.0, msg.as_bytes()).as_ref().to_vec()
    }
}

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

/// The stored form of a recovery code made before keyed hashes (about 50 bits, SHA-256 salted
/// with the user id): such codes still work until the user makes new ones, and the account
/// page asks them to.
pub fn legacy_recovery_code_hash(user_id: &str, code: &str) -> Vec<u8> {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    TokenHash::of(&format!("latchkey recovery v1\0{user_id}\0{norm}")).to_vec()
}

/// The WebAuthn relying party for an issuer: RP id from config or the issuer's host, origin
/// the issuer's origin.
pub fn relying_party(
    issuer: &str,
    rp_id: Option<&str>,
    timeout_secs: i64,
) -> Result<Webauthn, String> {
    let origin = Url::parse(issuer).map_err(|e| format!("issuer is not a URL: {e}"))?;
    let host = origin
        .host_str()
        .ok_or("the issuer URL has no host")?
        .to_owned();
    let rp_id = rp_id.map_or(host, str::to_owned);
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| {
            b.rp_name("Latchkey")
                .timeout(std::time::Duration::from_secs(
                    u64::try_from(timeout_secs).unwrap_or(300),
                ))
                .build()
        })
        .map_err(|e| {
            format!(
                "WebAuthn cannot use relying-party id `{rp_id}` with origin {origin}: {e} (set authentication.webauthn_rp_id to the issuer's host or a parent domain; IP addresses are not allowed)"
            )
        })
}

pub fn cred_id_b64(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

pub fn credential(row: &WebauthnRow) -> Result<Credential, String> {
    serde_json::from_str(&row.credential).map_err(|e| format!("stored credential: {e}"))
}

pub fn passkey(row: &WebauthnRow) -> Result<Passkey, String> {
    credential(row).map(Passkey::from)
}

pub fn security_key(row: &WebauthnRow) -> Result<SecurityKey, String> {
    credential(row).map(SecurityKey::from)
}

pub fn discoverable(row: &WebauthnRow) -> Result<DiscoverableKey, String> {
    passkey(row).map(|p| DiscoverableKey::from(&p))
}

/// The WebAuthn user handle for a user id (Latchkey's ids are UUIDs).
pub fn user_handle(user_id: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(user_id).map_err(|e| format!("user id is not a UUID: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_totp_accepts_the_current_step_and_the_configured_steps_back_never_ahead() {
        let secret = new_totp_secret();
        let t = totp(&secret, "Latchkey", "a@example.com").unwrap();
        let now = 1_700_000_010_i64;
        let code = t.generate(now as u64).to_string();
        assert_eq!(check_totp(&secret, &code, now, 1), Some(now / 30));
        assert_eq!(check_totp(&secret, &code, now + 30, 1), Some(now / 30));
        assert_eq!(
            check_totp(&secret, &code, now + 30, 0),
            None,
            "no step back"
        );
        assert_eq!(check_totp(&secret, &code, now + 60, 1), None);
        assert_eq!(check_totp(&secret, &code, now + 60, 2), Some(now / 30));
        assert_eq!(
            check_totp(&secret, &code, now - 30, 2),
            None,
            "a future code"
        );
        assert_eq!(check_totp(&secret, "12345", now, 1), None);
        assert_eq!(check_totp(&secret, "abcdef", now, 1), None);
    }

    #[test]
    fn recovery_codes_carry_80_bits_and_hash_whatever_the_spelling() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        for c in &codes {
            // Sixteen characters of a 32-letter alphabet: 80 bits.
            assert_eq!(c.len(), 19, "{c}");
            assert_eq!(c.matches('-').count(), 3, "{c}");
            assert!(
                c.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| CROCKFORD.contains(&b))
            );
        }
        let key = RecoveryKey::from_secret(&[7u8; 32]);
        let c = &codes[0];
        assert_eq!(
            key.hash("u1", c),
            key.hash("u1", &c.to_uppercase().replace('-', " "))
        );
        assert_eq!(key.hash("u1", "0011-abcd"), key.hash("u1", "oOiL-ABCD"));
        assert_ne!(key.hash("u1", c), key.hash("u2", c));
        // Another key gives another hash, and neither is the unkeyed one.
        let other = RecoveryKey::from_secret(&[8u8; 32]);
        assert_ne!(key.hash("u1", c), other.hash("u1", c));
        assert_ne!(key.hash("u1", c), legacy_recovery_code_hash("u1", c));
    }

    #[test]
    fn enrolment_shows_the_key_and_an_otpauth_qr_code() {
        let e = totp_enrolment(&new_totp_secret(), "Latchkey", "a@example.com").unwrap();
        assert!(e.uri.starts_with("otpauth://totp/"));
        assert!(e.qr_data_uri.starts_with("data:image/svg+xml;base64,"));
        assert_eq!(e.key_base32.replace(' ', "").len(), 32);
    }
}
