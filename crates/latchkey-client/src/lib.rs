//! `latchkey-client`: what a lab service embeds to trust Latchkey's tokens without calling
//! Latchkey on every request.
//!
//! - [`Verifier`] checks RFC 9068 access tokens and OpenID Connect ID tokens offline: the
//!   signature with ring (the algorithm comes from the JWK, never from the token alone), `typ`,
//!   `iss`, `aud`, `exp`/`nbf`/`iat` with a small leeway.
//! - Keys come from a [`KeySource`] (discovery + JWKS over HTTP, or a fixed JWKS for offline
//!   use and tests) through a cache that honours `Cache-Control`, refreshes ahead of expiry,
//!   refetches on an unknown `kid` at most once per interval, and keeps serving the last good
//!   keys while the issuer is unreachable ([`Verifier::status`] reports it).
//! - [`Grants`] turns claims into `allows("invoices:approve")`, with an optional
//!   [`FeatureMap`] from roles or scopes to a service's own features.
//! - [`Grants::require_acr`] yields an RFC 9470 step-up challenge.
//! - [`Verifier::verify_request`] enforces DPoP-bound tokens (RFC 9449): the proof, its key,
//!   and one use per proof ([`dpop`]).
//! - [`Verifier::verify_logout_token`] checks OpenID Connect Back-Channel Logout 1.0 logout
//!   tokens (section 2.6): signature, `typ: logout+jwt`, `iss`, `aud`, `iat`/`exp`, the logout
//!   event, no `nonce`, `sub` or `sid`, and one use per `jti`; it returns a [`LogoutToken`]
//!   naming the session to end.
//! - With the `actix` feature, [`actix`] has an extractor and guards, and the
//!   `BackchannelLogout` extractor for a service's `backchannel_logout_uri`; with `axum`,
//!   [`axum`] has the same extractors; with `tower`, [`tower::RequireToken`] is a layer for
//!   any tower service. What they share (verification, refusals and their answers, the
//!   [`guard::Feature`] and [`guard::Level`] markers) is in [`guard`].
//!
//! No global state: every verifier owns its cache.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod cache;
pub mod dpop;
mod error;
mod grants;
pub mod guard;
mod keys;
mod logout;
mod replay;
#[cfg(test)]
mod testkit;
#[cfg(feature = "tower")]
pub mod tower;
mod verifier;

pub use cache::KeyStatus;
pub use dpop::{DpopOptions, Presented};
pub use error::{StepUpRequired, VerifyError};
pub use grants::{FeatureMap, Grants};
#[cfg(feature = "http")]
pub use keys::HttpKeySource;
pub use keys::{FetchError, FetchFuture, JwkSet, Jwks, KeySource, StaticKeys};
pub use latchkey_core::{Acr, SigningAlg, jws};
pub use logout::LogoutToken;
pub use verifier::{Claims, Labs, Verifier, VerifierOptions};
