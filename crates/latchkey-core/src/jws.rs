//! Compact JWS parsing (RFC 7515 section 7.1): three base64url parts, a JSON header. Never
//! panics: any malformed input is an error (property-tested below).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
    /// The signer's public key, carried in the header (RFC 7515 section 4.1.3): only DPoP
    /// proofs use it (RFC 9449 section 4.2); tokens Latchkey issues never do.
    #[serde(default)]
    pub jwk: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A parsed but unverified compact JWS.
#[derive(Debug)]
pub struct Compact<'a> {
    pub header: Header,
    /// `base64url(header) . base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed JWS: {0}")]
pub struct Malformed(pub &'static str);

/// Longest token accepted; guards the decoders against absurd input.
pub const MAX_LEN: usize = 16 * 1024;

pub fn parse(token: &str) -> Result<Compact<'_>, Malformed> {
    if token.len() > MAX_LEN {
        return Err(Malformed("token too long"));
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Malformed("expected three dot-separated parts"));
    };
    if parts.next().is_some() {
        return Err(Malformed("expected three dot-separated parts"));
    }
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| Malformed("header is not a JSON object"))?;
    if header.crit.is_some() {
        return Err(Malformed("critical header parameters are not supported"));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| Malformed("payload is not base64url"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Malformed("signature is not base64url"))?;
    Ok(Compact {
        header,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_token() {
        let t = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"u"}"#),
            URL_SAFE_NO_PAD.encode([1, 2, 3])
        );
        let c = parse(&t).unwrap();
        assert_eq!(c.header.alg, "ES256");
        assert_eq!(c.signature, vec![1, 2, 3]);
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,400}") {
            let _ = parse(&s);
        }

        #[test]
        fn arbitrary_parts_never_panic(a in "[A-Za-z0-9_=.-]{0,80}", b in "[A-Za-z0-9_=-]{0,80}", c in "[A-Za-z0-9_=-]{0,80}") {
            let _ = parse(&format!("{a}.{b}.{c}"));
        }

        #[test]
        fn arbitrary_json_headers_never_panic(h in ".{0,120}", p in ".{0,120}") {
            let t = format!("{}.{}.AA", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
            let _ = parse(&t);
        }
    }
}
