//! Known devices (OWASP's "device cookie"): after a successful sign-in the browser gets a
//! cookie that names the account (its keyed hash) and a random device id, MACed under a key
//! derived from the KEK. A password attempt from a browser whose cookie is valid for the
//! e-mail typed spends only that device's own budget, so guesses from anywhere else never
//! hold the real user back. Nothing is stored: a cookie for another account, a forged or a
//! truncated one is simply not a known device.

use crate::secret::ct_eq;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const VERSION: &str = "d1";

/// The account an e-mail names in throttle counters and device cookies (see
/// [`AppState::throttle_account`]).
pub fn account(state: &AppState, email: &str) -> String {
    state.throttle_account(email)
}

fn mac(state: &AppState, device: &str, account: &str) -> String {
    let msg = format!("device\0{device}\0{account}");
    URL_SAFE_NO_PAD.encode(&ring::hmac::sign(&state.throttle_key, msg.as_bytes()).as_ref()[..16])
}

/// The device id of `cookie` when it is a valid device cookie for `account`.
pub fn check(state: &AppState, cookie: &str, account: &str) -> Option<String> {
    let mut parts = cookie.split('.');
    let (Some(VERSION), Some(device), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let valid = device.len() == 32
        && device.bytes().all(|b| b.is_ascii_hexdigit())
        && ct_eq(&mac(state, device, account), tag);
    valid.then(|| device.to_owned())
}

/// The cookie value that makes this browser a known device of `account`: the same device id
/// when the browser already was one (`current`), a new one otherwise.
pub fn cookie_value(state: &AppState, account: &str, current: Option<&str>) -> String {
    let device = current
        .and_then(|c| check(state, c, account))
        .unwrap_or_else(|| hex::encode(crate::secret::random_bytes(16)));
    format!("{VERSION}.{device}.{}", mac(state, &device, account))
}
