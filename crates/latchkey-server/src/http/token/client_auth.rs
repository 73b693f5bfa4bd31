//! Reading client credentials from a request to the token, revocation, introspection or PAR
//! endpoint: HTTP Basic or the form body (RFC 6749 section 2.3.1), or a `client_assertion`
//! (RFC 7521 section 4.2, RFC 7523 section 2.2). Checking them is
//! [`crate::token::client_auth`]'s.

use crate::http::Params;
use crate::protocol::OAuthError;
use crate::token::client_auth::Credentials;
use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The credentials the request presents: HTTP Basic, `client_id` (and `client_secret`) in
/// the body, or a client assertion; more than one method at once is refused.
pub fn credentials(req: &HttpRequest, params: &Params) -> Result<Credentials, OAuthError> {
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return assertion(req, params);
    }
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let basic = header.and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("basic")
            .then(|| rest.trim().to_owned())
    });
    if let Some(b64) = basic {
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not HTTP Basic and client_secret together",
            ));
        }
        let bad = || {
            let mut e =
                OAuthError::invalid_client("the Authorization header is not valid HTTP Basic");
            e.basic_challenge = true;
            e
        };
        let decoded = STANDARD.decode(b64).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        // RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        let id = form_decode(id);
        if params.get("client_id").is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(Credentials {
            id,
            secret: Some(form_decode(secret)),
            assertion: None,
            basic: true,
        });
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
    Ok(Credentials {
        id: id.to_owned(),
        secret: params.get("client_secret").map(str::to_owned),
        assertion: None,
        basic: false,
    })
}

/// `private_key_jwt`: the client is the one the assertion names (`client_id`, when sent too,
/// must be the same).
fn assertion(req: &HttpRequest, params: &Params) -> Result<Credentials, OAuthError> {
    use crate::token::client_assertion::{ASSERTION_TYPE, claimed_client};
    if req.headers().contains_key("authorization") || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method: a client_assertion, HTTP Basic or client_secret, not several",
        ));
    }
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let Some(jwt) = params.get("client_assertion") else {
        return Err(OAuthError::invalid_client(
            "client_assertion_type was sent without a client_assertion",
        ));
    };
    let Some(id) = claimed_client(jwt) else {
        return Err(OAuthError::invalid_client(
            "the client_assertion is not a JWT naming its client (sub)",
        ));
    };
    if params.get("client_id").is_some_and(|c| c != id) {
        return Err(OAuthError::invalid_client(
            "client_id differs from the client the client_assertion names",
        ));
    }
    Ok(Credentials {
        id,
        secret: None,
        assertion: Some(jwt.to_owned()),
        basic: false,
    })
}

/// Decodes one `application/x-www-form-urlencoded` value (RFC 6749 section 2.3.1, appendix B):
/// `+` is a space and `%XX` a byte; a `%` not followed by two hex digits stays as it is. The
/// value is decoded whole: unlike a query string it is not cut at `&` or `=`.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || {
            let pair = b.get(i + 1..i + 3)?;
            u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()
        };
        match (b[i], hex()) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (other, _) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn rfc6749_2_3_1_credentials_are_form_urlencoding_decoded() {
        assert_eq!(form_decode("s%26e%25c%3Ar%2Bt+x"), "s&e%c:r+t x");
        assert_eq!(form_decode("a&b=c"), "a&b=c");
        assert_eq!(form_decode("50%"), "50%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("caf%C3%A9"), "caf\u{e9}");
    }

    mod properties {
        use super::super::{credentials, form_decode};
        use crate::http::Params;
        use base64::Engine;
        use proptest::prelude::*;

        fn form_encode(s: &str) -> String {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
        }

        fn request(authorization: &str) -> actix_web::HttpRequest {
            actix_web::test::TestRequest::default()
                .insert_header(("authorization", authorization))
                .to_http_request()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// RFC 6749 2.3.1: whatever characters an id and secret hold (`:`, `&`, `%`, `+`,
            /// non-ASCII), encoding them as the RFC says and reading them back gives them
            /// exactly.
            #[test]
            fn basic_credentials_round_trip(id in "\\PC{1,40}", secret in "\\PC{0,60}") {
                let raw = format!("{}:{}", form_encode(&id), form_encode(&secret));
                let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw));
                let empty = Params::parse(b"").unwrap();
                let c = credentials(&request(&header), &empty).unwrap();
                prop_assert_eq!(c.id, id);
                prop_assert_eq!(c.secret, Some(secret));
                prop_assert!(c.basic);
            }

            /// Any Authorization header, decodable or not, is an answer, never a panic.
            #[test]
            fn any_authorization_header_is_answered(h in "[ -~]{0,200}") {
                let empty = Params::parse(b"").unwrap();
                let _ = credentials(&request(&h), &empty);
                let b64 = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(h.as_bytes())
                );
                let _ = credentials(&request(&b64), &empty);
            }

            #[test]
            fn form_decoding_inverts_form_encoding(s in "\\PC{0,80}") {
                prop_assert_eq!(form_decode(&form_encode(&s)), s);
            }

            #[test]
            fn form_decoding_never_panics(s in "[%+0-9a-fA-F&=\\PC]{0,80}") {
                let _ = form_decode(&s);
            }
        }
    }
}
