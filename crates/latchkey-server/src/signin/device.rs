//! Known devices (OWASP's "device cookie"): after a successful sign-in the browser's cookie
//! gets an entry that binds a random device id to the account (its keyed hash), MACed under a
//! key derived from the KEK; a browser keeps entries for its last [`MAX_ACCOUNTS`] accounts. A password attempt from a browser whose cookie is valid for the
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

/// How many accounts one browser is known to (people with an administrator's and a
/// member's account, a shared lab computer): the most recent sign-ins are kept.
pub const MAX_ACCOUNTS: usize = 5;

/// The device id of one cookie entry when it is valid for `account`.
fn check_entry(state: &AppState, entry: &str, account: &str) -> Option<String> {
    let mut parts = entry.split('.');
    let (Some(VERSION), Some(device), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let valid = device.len() == 32
        && device
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && ct_eq(&mac(state, device, account), tag);
    valid.then(|| device.to_owned())
}

/// The device id under which `cookie` (entries joined by `~`) makes the browser known to
/// `account`, if it does.
pub fn check(state: &AppState, cookie: &str, account: &str) -> Option<String> {
    cookie
        .split('~')
        .take(MAX_ACCOUNTS)
        .find_map(|entry| check_entry(state, entry, account))
}

/// The cookie value that makes this browser a known device of `account`, first, and keeps
/// it known to the other accounts of `current` (up to [`MAX_ACCOUNTS`] in all): the same
/// device id for `account` when the browser already was one of its devices, a new one
/// otherwise.
pub fn cookie_value(state: &AppState, account: &str, current: Option<&str>) -> String {
    let entries: Vec<&str> = current
        .map(|c| c.split('~').take(MAX_ACCOUNTS).collect())
        .unwrap_or_default();
    let device = entries
        .iter()
        .find_map(|e| check_entry(state, e, account))
        .unwrap_or_else(|| hex::encode(crate::secret::random_bytes(16)));
    let mine = format!("{VERSION}.{device}.{}", mac(state, &device, account));
    let mut out = vec![mine];
    for e in entries {
        // Another account's entry (it cannot be checked without that account: keep entries
        // that are well formed; a forged one is useless anyway).
        let well_formed = e.len() <= 80
            && e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if out.len() < MAX_ACCOUNTS && well_formed && check_entry(state, e, account).is_none() {
            out.push(e.to_owned());
        }
    }
    out.join("~")
}

/// "Firefox on Linux" and the like: a user agent as people name their browsers.
pub fn browser_label(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map_or("A browser", |(_, v)| v);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}
