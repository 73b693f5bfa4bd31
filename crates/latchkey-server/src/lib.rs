//! The Latchkey account service as a library: configuration, storage, the OpenID Connect and
//! OAuth 2.0 endpoints, the hosted login, and the signing keys.
//!
//! Layers, each readable and testable alone (`docs/architecture.md` draws the map):
//! - [`protocol`]: pure request validation and decisions, no I/O;
//! - [`store`]: the database behind one `Store`, SQLite or PostgreSQL;
//! - services, one function per user-visible operation: [`signin`], [`token`], [`admin`];
//! - [`http`]: thin actix-web handlers that parse, call one service, and render.

pub(crate) mod access_cache;
pub mod admin;
pub mod alerts;
pub mod app;
pub mod attestation;
pub mod audit;
pub mod backchannel;
pub mod backup;
pub mod client_keys;
pub mod config;
pub mod crypto;
pub mod factors;
pub mod http;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod password;
pub mod protocol;
pub mod provision;
pub mod secret;
pub mod signin;
pub mod state;
pub mod store;
pub mod tls;
pub mod token;

pub use app::{App, Server};
pub use config::Config;
