//! Cryptography with ring: the key-encryption key that wraps private keys at rest
//! (AES-256-GCM), signing keys and their public JWKs (RFC 7517, RFC 7638 thumbprints as `kid`),
//! compact JWS/JWT encoding and verification (RFC 7515, RFC 7519), and clients' own public keys
//! for `private_key_jwt` ([`client_jwk`]).

pub mod backup_key;
pub mod client_jwk;
pub mod jwk;
pub mod jwt;
pub mod kek;
pub mod signing;

pub use jwt::{JwtError, VerifiedJwt};
pub use kek::Kek;
pub use signing::SigningKey;
