//! Latchkey's integration tests: the real server in process, on SQLite and PostgreSQL, driven
//! by real relying-party code (the `openidconnect` crate), by raw HTTP for the refusals, by the
//! CLI binary, and by headless Chromium.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod account_data;
mod account_sessions;
mod admin_api;
mod admin_strength;
mod admin_tokens;
mod api_fuzz;
mod architecture;
mod attestation;
mod audit;
mod audit_atomic;
mod backchannel_logout;
mod backup;
mod browser;
mod browser_dpop;
mod browser_mail;
mod cli;
mod client;
mod client_axum;
mod client_labs;
mod client_settings;
mod clients_lifecycle;
mod common;
mod config_reference;
mod consents;
mod console;
mod data_classification;
mod deploy;
mod device_flow;
mod documents;
mod dpop;
mod dpop_code;
mod features;
mod https;
mod lab_admin_rules;
mod labs;
mod mail;
mod mail_address;
mod mfa;
mod monitoring;
mod oidc_flow;
mod par;
mod passkeys;
mod password_change;
mod personal;
mod private_key_jwt;
mod protocol_rules;
mod read_paths;
mod ready;
mod recovery_codes;
mod refresh_rotation;
mod refusals;
mod resource_indicators;
mod rotation;
mod schema;
mod throttle;
mod webauthn_tampered;
