//! Redirect URIs: registration rules and exact matching (RFC 6749 section 3.1.2, OAuth 2.0
//! Security BCP (RFC 9700) section 4.1: exact string comparison, no wildcards, no normalising).
//!
//! The one exception is RFC 8252 section 7.3: for a registered loopback IP literal
//! (`http://127.0.0.1/…` or `http://[::1]/…`) a native app picks a free port when it starts,
//! so any port is accepted at request time; everything else about the URI still compares
//! exactly. `http://localhost` gets no such latitude (section 8.3: the name may resolve to
//! something else than the loopback interface, and a firewall may treat it differently).

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

/// Exact, case-sensitive string comparison against the registered URIs, except for the port
/// of a loopback IP literal (RFC 8252 section 7.3).
pub fn is_registered(registered: &[String], presented: &str) -> bool {
    let loopback = loopback_without_port(presented);
    registered
        .iter()
        .any(|r| r == presented || (loopback.is_some() && loopback_without_port(r) == loopback))
}

/// For `http://127.0.0.1[:port]<rest>` or `http://[::1][:port]<rest>`: the URI with the port
/// left out, as (scheme and host, rest). The comparison stays textual: nothing is normalised.
fn loopback_without_port(uri: &str) -> Option<(&'static str, &str)> {
    const HOSTS: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];
    let (host, rest) = HOSTS
        .iter()
        .find_map(|h| uri.strip_prefix(h).map(|rest| (*h, rest)))?;
    let rest = match rest.strip_prefix(':') {
        Some(p) => {
            let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            match p[..end].parse::<u16>() {
                Ok(port) if port > 0 && end <= 5 => &p[end..],
                _ => return None,
            }
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
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
    fn rfc8252_7_3_loopback_ip_redirect_accepts_any_port() {
        let reg = vec![
            "http://127.0.0.1/cb".to_owned(),
            "http://[::1]:8000/native?x=1".to_owned(),
        ];
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:65535/cb",
            "http://[::1]/native?x=1",
            "http://[::1]:51004/native?x=1",
        ] {
            assert!(is_registered(&reg, ok), "{ok}");
        }
        for other in [
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:80a/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:5000/cb/",
            "http://127.0.0.1:5000/CB",
            "http://127.0.0.1:5000",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "http://127.0.0.2:5000/cb",
            "https://127.0.0.1:5000/cb",
            "http://[::1]:5000/native",
            "http://127.0.0.1:5000/native?x=1",
        ] {
            assert!(!is_registered(&reg, other), "{other}");
        }
    }

    #[test]
    fn rfc8252_8_3_localhost_keeps_its_registered_port() {
        let reg = vec!["http://localhost:8000/cb".to_owned()];
        assert!(is_registered(&reg, "http://localhost:8000/cb"));
        assert!(!is_registered(&reg, "http://localhost:8001/cb"));
        assert!(!is_registered(&reg, "http://localhost/cb"));
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

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_uri_is_answered(uri in "\\PC{0,120}", reg in "\\PC{0,60}") {
                let _ = validate_for_registration(&uri);
                let _ = is_registered(std::slice::from_ref(&reg), &uri);
            }

            /// RFC 9700 4.1: a registered https URI matches itself and nothing that differs
            /// from it in one character (no normalising, no prefix or wildcard matching).
            #[test]
            fn https_uris_match_exactly(
                host in "[a-z]{1,12}\\.example",
                path in "(/[a-z0-9._~-]{0,10}){0,3}",
                at in any::<prop::sample::Index>(),
                c in "[ -~]",
            ) {
                let uri = format!("https://{host}{path}");
                let reg = vec![uri.clone()];
                prop_assert!(validate_for_registration(&uri).is_ok());
                prop_assert!(is_registered(&reg, &uri));
                let i = at.index(uri.len() + 1);
                let mut changed = uri.clone();
                changed.insert_str(i, &c);
                prop_assert!(!is_registered(&reg, &changed), "{changed}");
                if i < uri.len() {
                    let mut cut = uri.clone();
                    cut.remove(i);
                    prop_assert!(!is_registered(&reg, &cut), "{cut}");
                }
            }

            /// RFC 8252 7.3: for a registered loopback IP literal only the port may differ.
            #[test]
            fn loopback_literals_match_on_any_port_and_nothing_else(
                port in 1u16..,
                path in "(/[a-z0-9]{0,8}){0,2}",
                host in prop::sample::select(vec!["127.0.0.1", "[::1]"]),
                other in "[a-z]{1,8}",
            ) {
                let reg = vec![format!("http://{host}{path}")];
                let any_port = format!("http://{host}:{port}{path}");
                let elsewhere = format!("http://{host}:{port}{path}/{other}");
                let by_name = format!("http://localhost:{port}{path}");
                let other_scheme = format!("https://{host}:{port}{path}");
                prop_assert!(is_registered(&reg, &any_port));
                prop_assert!(!is_registered(&reg, &elsewhere));
                prop_assert!(!is_registered(&reg, &by_name));
                prop_assert!(!is_registered(&reg, &other_scheme));
            }
        }
    }
}
