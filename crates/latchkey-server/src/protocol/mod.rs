//! Protocol logic without I/O: pure functions and state machines that take a typed request and
//! `now`, and return an outcome the HTTP layer turns into a page, a redirect or a JSON body.

pub mod authorize;
pub mod code;
pub mod detect;
pub mod device_code;
pub mod dpop;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh;
pub mod resource;
pub mod rotation;
pub mod scope;
pub mod strength;
pub mod throttle;

pub use error::OAuthError;
