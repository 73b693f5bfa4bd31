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

/// Ten recovery codes of 50 random bits each, as `xxxxx-xxxxx` in an unambiguous alphabet.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    (0..10)
        .map(|_| {
            let bytes = random_bytes(10);
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of the user id and the code's normalised
/// spelling (case, spaces and dashes do not matter). The user id salts it, so a stolen table
/// must be attacked one user at a time.
pub fn recovery_code_hash(user_id: &str, code: &str) -> Vec<u8> {
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
    fn recovery_codes_are_distinct_and_hash_whatever_the_spelling() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        let c = &codes[0];
        assert_eq!(
            recovery_code_hash("u1", c),
            recovery_code_hash("u1", &c.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_code_hash("u1", c), recovery_code_hash("u2", c));
    }

    #[test]
    fn enrolment_shows_the_key_and_an_otpauth_qr_code() {
        let e = totp_enrolment(&new_totp_secret(), "Latchkey", "a@example.com").unwrap();
        assert!(e.uri.starts_with("otpauth://totp/"));
        assert!(e.qr_data_uri.starts_with("data:image/svg+xml;base64,"));
        assert_eq!(e.key_base32.replace(' ', "").len(), 32);
    }
}
