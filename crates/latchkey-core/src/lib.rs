//! Protocol vocabulary shared by the Latchkey server and the client crate: authentication
//! strength (`acr`, RFC 8176 `amr`), the claims Latchkey puts in its tokens, JOSE algorithm
//! names, public JWKs and DPoP proofs (RFC 9449), the validated names and typed ids of administration (`names`) and the OAuth 2.0 / OpenID Connect error codes. No HTTP, no database.

pub mod acr;
pub mod alg;
pub mod bearer;
pub mod claims;
pub mod dpop;
pub mod error;
pub mod jose;
pub mod jws;
pub mod names;

pub use acr::{Acr, Amr};
pub use alg::SigningAlg;
pub use bearer::bearer_token;
pub use claims::{AccessTokenClaims, Confirmation, IdTokenClaims};
pub use error::ErrorCode;
