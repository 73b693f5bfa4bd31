//! The one OAuth error type: RFC code, HTTP status, a public description and private debug
//! text that is logged but never sent (RFC 6749 section 5.2, RFC 6750 section 3.1).

use latchkey_core::ErrorCode;
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Sent to the client as `error_description`: says what to fix, never a secret.
    pub description: String,
    /// Logged only.
    pub debug: Option<String>,
    /// For `invalid_client` when the client tried HTTP Basic: answer 401 with a challenge.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            debug: None,
            basic_challenge: false,
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

    /// HTTP status per RFC 6749 section 5.2 and RFC 6750 section 3.1.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient if self.basic_challenge => 401,
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
