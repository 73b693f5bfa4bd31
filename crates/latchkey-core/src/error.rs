//! OAuth 2.0 and OpenID Connect error codes, spelled as the RFCs spell them
//! (RFC 6749 section 4.1.2.1 and 5.2, RFC 6750 section 3.1, RFC 7009, OIDC Core 3.1.2.6,
//! RFC 9470, RFC 8628 section 3.5, RFC 9449, RFC 8707).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    InvalidRequestUri,
    InvalidRequestObject,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    UnmetAuthenticationRequirements,
    InsufficientUserAuthentication,
    /// RFC 8628 section 3.5: the user has not answered the device's request yet.
    AuthorizationPending,
    /// RFC 8628 section 3.5: the device polls too often; its interval grew by 5 seconds.
    SlowDown,
    /// RFC 8628 section 3.5: the device_code expired; start again.
    ExpiredToken,
    /// RFC 9449 section 5: the DPoP proof is missing, malformed or does not fit the request.
    InvalidDpopProof,
    /// RFC 9449 section 8: retry with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// RFC 8707 section 2: the `resource` is invalid, unknown, or not one this client may
    /// get tokens for.
    InvalidTarget,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            UnsupportedTokenType => "unsupported_token_type",
            InvalidScope => "invalid_scope",
            AccessDenied => "access_denied",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
            AccountSelectionRequired => "account_selection_required",
            InvalidRequestUri => "invalid_request_uri",
            InvalidRequestObject => "invalid_request_object",
            RequestNotSupported => "request_not_supported",
            RequestUriNotSupported => "request_uri_not_supported",
            RegistrationNotSupported => "registration_not_supported",
            UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            InsufficientUserAuthentication => "insufficient_user_authentication",
            AuthorizationPending => "authorization_pending",
            SlowDown => "slow_down",
            ExpiredToken => "expired_token",
            InvalidDpopProof => "invalid_dpop_proof",
            UseDpopNonce => "use_dpop_nonce",
            InvalidTarget => "invalid_target",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in [
            ErrorCode::InvalidGrant,
            ErrorCode::UnmetAuthenticationRequirements,
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::ExpiredToken,
            ErrorCode::InvalidDpopProof,
            ErrorCode::UseDpopNonce,
            ErrorCode::InvalidTarget,
        ] {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json.as_str(), Some(code.as_str()));
        }
    }
}
