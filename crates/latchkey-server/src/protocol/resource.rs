//! Resource indicators (RFC 8707): a client names, with `resource`, the service it wants an
//! access token for, and the token's `aud` is that service's URI instead of the client's id.
//! A token minted for one service is then refused by every other (each verifies its own
//! audience), and a lab service's API can be called by other clients of the lab without
//! sharing their client id.
//!
//! The rules, each an `invalid_target` refusal (section 2):
//! - a `resource` is an absolute `http`/`https` URI without fragment or query, user name or
//!   password (section 2: "MUST NOT include a fragment component", "SHOULD NOT include a
//!   query component"), at most [`MAX_LEN`] bytes, compared byte for byte with the URI a
//!   resource server registered ([`check_uri`]);
//! - a client gets tokens only for the resources its registration lists (`resources`), and
//!   only while a client registered with that `resource_uri` is active and serves the
//!   token's lab (checked at issuance, in `token::`);
//! - an authorization request may name several resources (at most [`MAX_PER_REQUEST`]): the
//!   grant covers them (the user is asked about them on the consent page), and each token
//!   request names one of them, or none when the grant covers exactly one ([`audience`]); a
//!   user's grant that named none gets tokens for the client only. `client_credentials` names
//!   any one of the client's resources. An access token has a single audience: a token request
//!   naming several resources is refused rather than issuing a token every one of them would
//!   accept (section 2.2 allows either; one audience per token keeps a leaked token to one
//!   service).

use super::OAuthError;
use latchkey_core::ErrorCode;

/// The longest resource URI accepted, in bytes.
pub const MAX_LEN: usize = 2000;
/// The most `resource` parameters one request may carry.
pub const MAX_PER_REQUEST: usize = 10;

fn invalid_target(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, d)
}

/// Whether `uri` can be a resource indicator (section 2) a resource server registers or a
/// client names: `Err` says why not, naming the rule. `issuer`: Latchkey itself, which is not
/// a resource other clients get tokens for (`None` leaves that rule to the registration).
pub fn check_uri(uri: &str, issuer: Option<&str>) -> Result<(), String> {
    if uri.len() > MAX_LEN {
        return Err(format!("a resource URI is at most {MAX_LEN} bytes"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a resource URI holds no spaces or control characters".into());
    }
    let url = url::Url::parse(uri)
        .map_err(|_| "a resource must be an absolute URI (RFC 8707 section 2)".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err("a resource URI must be an https (or http) URL with a host".into());
    }
    if url.fragment().is_some() || uri.contains('#') {
        return Err("a resource URI must not include a fragment (RFC 8707 section 2)".into());
    }
    if url.query().is_some() || uri.contains('?') {
        return Err("a resource URI must not include a query (RFC 8707 section 2)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a resource URI has no user name or password".into());
    }
    // Compared as parsed URLs (scheme and host case, default ports, `\\` read as `/`): any
    // URL on the issuer's origin is Latchkey's.
    let host = |u: &url::Url| u.host_str().map(|h| h.trim_end_matches('.').to_owned());
    if let Some(issuer) = issuer.and_then(|i| url::Url::parse(i).ok())
        && (url.origin() == issuer.origin()
            || (url.scheme() == issuer.scheme()
                && url.port_or_known_default() == issuer.port_or_known_default()
                && host(&url) == host(&issuer)))
    {
        return Err(
            "a resource URI cannot be Latchkey itself (a URL on its issuer's origin)".into(),
        );
    }
    Ok(())
}

/// The `resource` values of a request, checked ([`check_uri`]; a resource that is Latchkey
/// itself is never registered, so never allowed) and without repeats, in order.
pub fn parse(values: &[String]) -> Result<Vec<String>, OAuthError> {
    if values.len() > MAX_PER_REQUEST {
        return Err(invalid_target(format!(
            "at most {MAX_PER_REQUEST} resources per request"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for v in values {
        check_uri(v, None).map_err(invalid_target)?;
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(out)
}

/// The `resource` values of a token request ([`parse`]): at most one, since an access token
/// is for a single resource.
pub fn parse_token_request(values: &[String]) -> Result<Vec<String>, OAuthError> {
    let parsed = parse(values)?;
    if parsed.len() > 1 {
        return Err(invalid_target(
            "name one resource per token request: an access token is for a single resource",
        ));
    }
    Ok(parsed)
}

/// Refuses a resource the client's registration does not list.
pub fn check_allowed(requested: &[String], allowed: &[String]) -> Result<(), OAuthError> {
    match requested.iter().find(|r| !allowed.contains(r)) {
        None => Ok(()),
        Some(r) => Err(invalid_target(format!(
            "this client may not get tokens for the resource `{r}` (it is not among the \
             resources its registration lists)"
        ))),
    }
}

/// The resource a user's access token is for (its `aud`), `None` for the client itself.
///
/// `requested`: the token request's `resource` values (parsed); `granted`: the resources the
/// authorization request named (and the consent page showed); `allowed`: the client's
/// registered resources.
/// - one requested: it must be among `granted` (a grant that named none gets tokens for the
///   client only), and among `allowed` (the registration as it is now);
/// - none requested: the grant's only resource, or the client itself when it named none;
///   a grant naming several needs the token request to pick one;
/// - several requested: refused (one audience per access token).
pub fn audience(
    requested: &[String],
    granted: &[String],
    allowed: &[String],
) -> Result<Option<String>, OAuthError> {
    let chosen = match requested {
        [] => match granted {
            [] => return Ok(None),
            [only] => only,
            _ => {
                return Err(invalid_target(
                    "the authorization covers several resources: name the one this token is \
                     for with `resource`",
                ));
            }
        },
        [one] => {
            if !granted.contains(one) {
                return Err(invalid_target(format!(
                    "the resource `{one}` is not among those of the authorization request \
                     (a user's tokens are for the services the user was asked about)"
                )));
            }
            one
        }
        _ => {
            return Err(invalid_target(
                "name one resource per token request: an access token is for a single resource",
            ));
        }
    };
    // Still listed: a resource removed from the registration is refused from then on, even
    // to a grant that named it.
    check_allowed(std::slice::from_ref(chosen), allowed)?;
    Ok(Some(chosen.clone()))
}

/// Resources as a column holds them: space-separated (a URI has no spaces).
pub fn join(resources: &[String]) -> String {
    resources.join(" ")
}

/// The resources of a column ([`join`]).
pub fn split(column: &str) -> Vec<String> {
    column
        .split(' ')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.lab.example";

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rfc8707_2_a_resource_is_an_absolute_uri_without_fragment_or_query() {
        for ok in [
            "https://orders.lab.example",
            "https://orders.lab.example/",
            "https://api.lab.example/orders",
            "http://127.0.0.1:8090",
        ] {
            assert_eq!(check_uri(ok, Some(ISSUER)), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("orders", "absolute URI"),
            ("/orders", "absolute URI"),
            ("urn:lab:orders", "https"),
            ("latchkey:admin", "https"),
            ("https://orders.lab.example/#x", "fragment"),
            ("https://orders.lab.example/?a=b", "query"),
            ("https://u:p@orders.lab.example/", "user name"),
            ("https://orders.lab.example/ x", "spaces"),
            ("https://orders.lab.example/\n", "control"),
            ("https://id.lab.example", "Latchkey itself"),
            ("https://id.lab.example/", "Latchkey itself"),
            ("https://id.lab.example/userinfo", "Latchkey itself"),
            ("HTTPS://ID.LAB.EXAMPLE:443/x", "Latchkey itself"),
            ("https://id.lab.example\\userinfo", "Latchkey itself"),
            ("https://id.lab.example./", "Latchkey itself"),
        ] {
            let e = check_uri(bad, Some(ISSUER)).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_uri(&format!("https://a.example/{}", "a".repeat(MAX_LEN)), None).is_err());
        // A host that merely starts like the issuer's is another service.
        assert_eq!(
            check_uri("https://id.lab.example.org/x", Some(ISSUER)),
            Ok(())
        );
    }

    #[test]
    fn rfc8707_2_an_invalid_resource_is_invalid_target() {
        let e = parse(&v(&["https://a.example/#f"])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        let many: Vec<String> = (0..=MAX_PER_REQUEST)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        assert_eq!(parse(&many).unwrap_err().code, ErrorCode::InvalidTarget);
        assert_eq!(
            parse(&v(&["https://a.example", "https://a.example"])).unwrap(),
            v(&["https://a.example"])
        );
    }

    #[test]
    fn rfc8707_2_a_client_gets_tokens_only_for_its_listed_resources() {
        let allowed = v(&["https://a.example"]);
        assert_eq!(
            audience(&v(&["https://a.example"]), &allowed, &allowed).unwrap(),
            Some("https://a.example".into())
        );
        let e = audience(&v(&["https://b.example"]), &allowed, &allowed).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(check_allowed(&v(&["https://b.example"]), &allowed).is_err());
        // A user's grant that named no resource gets tokens for the client only.
        let e = audience(&v(&["https://a.example"]), &[], &allowed).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn rfc8707_2_2_a_token_is_for_one_resource_of_the_grant() {
        let granted = v(&["https://a.example", "https://b.example"]);
        let allowed = granted.clone();
        assert_eq!(audience(&[], &[], &allowed).unwrap(), None);
        assert_eq!(
            audience(&[], &granted[..1], &allowed).unwrap(),
            Some("https://a.example".into())
        );
        assert_eq!(
            audience(&[], &granted, &allowed).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            audience(&v(&["https://b.example"]), &granted, &allowed).unwrap(),
            Some("https://b.example".into())
        );
        // Listed for the client, but not named at the authorization request.
        let allowed = v(&["https://a.example", "https://c.example"]);
        assert_eq!(
            audience(&v(&["https://c.example"]), &granted[..1], &allowed)
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
        // Named at the authorization request, since removed from the registration.
        assert_eq!(
            audience(&[], &granted[..1], &[]).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            audience(&granted, &granted, &granted).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn resources_round_trip_through_their_column() {
        let r = v(&["https://a.example", "https://b.example/x"]);
        assert_eq!(split(&join(&r)), r);
        assert!(split("").is_empty());
    }
}
