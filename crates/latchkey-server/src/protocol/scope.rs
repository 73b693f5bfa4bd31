//! Scopes (RFC 6749 section 3.3) and the OpenID Connect scopes Latchkey serves.

use super::OAuthError;

/// Scopes this server understands (OIDC Core section 5.4 and 11).
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Parses a space-delimited scope string, refusing malformed tokens and unknown scopes.
/// Duplicates are removed; order is kept.
pub fn parse(raw: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for token in raw.split(' ').filter(|t| !t.is_empty()) {
        // scope-token = 1*NQCHAR ; %x21 / %x23-5B / %x5D-7E
        let nqchar = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !nqchar {
            return Err(OAuthError::new(
                latchkey_core::ErrorCode::InvalidScope,
                "scope contains characters RFC 6749 section 3.3 does not allow",
            ));
        }
        if !SUPPORTED.contains(&token) {
            return Err(OAuthError::new(
                latchkey_core::ErrorCode::InvalidScope,
                format!(
                    "unknown scope `{token}`; supported: {}",
                    SUPPORTED.join(" ")
                ),
            ));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn contains(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// The scope that lets a grant outlive the browser session (OIDC Core section 11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// OIDC Core section 11: `offline_access` needs the user's consent to it, asked with
/// `prompt=consent` or given before and remembered; a client that skips the consent page does
/// not get it silently. "Unless one or both of these conditions are fulfilled, then it MUST
/// ignore the offline_access request": the other scopes are granted without it. Call it for a
/// flow that issues without showing the consent page; `consented`: the user's remembered
/// consent to this client covers `offline_access`.
pub fn without_unconsented_offline_access(scope: &mut Vec<String>, consented: bool) {
    if !consented {
        scope.retain(|s| s != OFFLINE_ACCESS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_3_scope_parsing() {
        assert_eq!(
            parse("openid  email openid").unwrap(),
            vec!["openid", "email"]
        );
        assert!(parse("openid \"x\"").is_err());
        assert!(parse("openid admin").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn oidc_core_11_offline_access_is_ignored_without_consent() {
        let mut s = parse("openid offline_access email").unwrap();
        without_unconsented_offline_access(&mut s, true);
        assert_eq!(s, vec!["openid", "offline_access", "email"]);
        without_unconsented_offline_access(&mut s, false);
        assert_eq!(s, vec!["openid", "email"]);
    }
}
