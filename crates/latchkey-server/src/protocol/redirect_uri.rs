//! Redirect URIs: registration rules and exact matching (RFC 6749 section 3.1.2, OAuth 2.0
//! Security BCP (RFC 9700) section 4.1: exact string comparison, no wildcards, no normalising).

/// Checks a redirect URI at client registration: absolute, no fragment (RFC 6749 3.1.2),
/// `https`, or `http` only on a loopback host (RFC 8252 7.3), or a private-use scheme for
/// native apps (RFC 8252 7.1, reverse-domain with a dot).
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URI: {e}"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{uri}` must use https (http is allowed only on localhost)"
                ))
            }
        }
        "javascript" | "data" | "file" | "vbscript" => Err(format!(
            "`{uri}` uses a scheme that is never a valid redirect"
        )),
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "`{uri}`: private-use schemes must be reverse domain names (e.g. com.example.app), not `{scheme}`"
        )),
    }
}

/// Exact, case-sensitive string comparison against the registered URIs.
pub fn is_registered(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| r == presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9700_4_1_exact_matching_only() {
        let reg = vec!["https://app.example/cb".to_owned()];
        assert!(is_registered(&reg, "https://app.example/cb"));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "https://evil.example/cb",
            "https://app.example/cb#f",
        ] {
            assert!(!is_registered(&reg, other), "{other}");
        }
    }

    #[test]
    fn registration_rules() {
        assert!(validate_for_registration("https://app.example/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1:9000/cb").is_ok());
        assert!(validate_for_registration("http://localhost/cb").is_ok());
        assert!(validate_for_registration("com.example.app:/cb").is_ok());
        assert!(validate_for_registration("http://app.example/cb").is_err());
        assert!(validate_for_registration("https://app.example/cb#x").is_err());
        assert!(validate_for_registration("/relative").is_err());
        assert!(validate_for_registration("javascript:alert(1)").is_err());
    }
}
