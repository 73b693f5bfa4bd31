//! The one OAuth error type: RFC code, HTTP status, a public description and private debug
//! text that is logged but never sent (RFC 6749 section 5.2, RFC 6750 section 3.1).

use latchkey_core::ErrorCode;
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Sent to the client as `error_description`: says what to fix, never a secret. It may
    /// quote the request; [`OAuthError::public_description`] is what is sent.
    pub description: String,
    /// Logged only.
    pub debug: Option<String>,
    /// For `invalid_client` when the client tried HTTP Basic: answer 401 with a challenge.
    pub basic_challenge: bool,
    /// A protected resource's refusal of a DPoP request (RFC 9449 section 7.1): 401 with a
    /// `DPoP` challenge instead of `Bearer`.
    pub dpop_challenge: bool,
    /// A fresh nonce for the `DPoP-Nonce` header (RFC 9449 section 8), with `use_dpop_nonce`.
    /// (Boxed: this error travels inside other errors, and Clippy's size limit applies.)
    pub dpop_nonce: Option<Box<str>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            debug: None,
            basic_challenge: false,
            dpop_challenge: false,
            dpop_nonce: None,
        }
    }

    pub fn with_debug(mut self, debug: impl fmt::Display) -> OAuthError {
        self.debug = Some(debug.to_string());
        self
    }

    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, d)
    }
    pub fn server_error(debug: impl fmt::Display) -> OAuthError {
        OAuthError::new(
            ErrorCode::ServerError,
            "The server could not complete the request.",
        )
        .with_debug(debug)
    }

    /// The `error_description` as sent, wherever the error goes (the token endpoint's JSON, a
    /// `WWW-Authenticate` challenge, the redirect to the client): see [`public_text`].
    pub fn public_description(&self) -> String {
        public_text(&self.description)
    }

    /// HTTP status per RFC 6749 section 5.2 and RFC 6750 section 3.1.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient if self.basic_challenge => 401,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce if self.dpop_challenge => 401,
            ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope | ErrorCode::InsufficientUserAuthentication => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)?;
        if let Some(d) = &self.debug {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Restricts a text to the characters RFC 6749 allows in `error_description` (sections
/// 4.1.2.1 and 5.2: %x20-21 / %x23-5B / %x5D-7E), so that no echoed input can carry a quote,
/// a backslash, a control character (CR, LF, NUL), a bidirectional override or any other
/// non-ASCII character to the client: `"` becomes `'`, `\` becomes `/`, anything else outside
/// the set `?`.
pub fn public_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn allowed(c: char) -> bool {
        matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
    }

    #[test]
    fn rfc6749_5_2_error_description_is_limited_to_its_character_set() {
        let e = OAuthError::invalid_request(
            "scope `\"<x>\\` line\r\nbreak\0 \u{202e}evil caf\u{e9} \u{1F600}",
        );
        assert_eq!(
            e.public_description(),
            "scope `'<x>/` line??break? ?evil caf? ?"
        );
        assert_eq!(public_text("plain text, kept."), "plain text, kept.");
    }

    proptest! {
        #[test]
        fn rfc6749_4_1_2_1_public_text_never_leaves_the_set(s in "\\PC*|[\\x00-\\x7f]*") {
            prop_assert!(public_text(&s).chars().all(allowed));
        }
    }
}
