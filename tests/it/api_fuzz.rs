//! The admin API against its own OpenAPI document, with tools from PyPI (installed by
//! `scripts/test` into a virtualenv): `openapi-spec-validator` validates the served document
//! as OpenAPI 3.1, and `schemathesis` generates requests from it (coverage, fuzzing and
//! stateful phases, as a system administrator) and fails on any 5xx. Both databases.
//!
//! Key rotation and revocation are left out of the generated run: they take no input worth
//! fuzzing, revoking the key that signed the run's own token ends the run's authentication
//! (correctly), and both are tested in `rotation`. PostgreSQL found here that text with NUL
//! characters gave 500s; the API now refuses it with a 422 naming the field.

use crate::both;
use crate::common::*;

/// A tool from the test virtualenv (`LATCHKEY_TEST_VENV` is not used: `LATCHKEY_*` is the
/// configuration overlay), else from `PATH`.
fn tool(name: &str) -> std::path::PathBuf {
    let venv = std::env::var("TEST_PY_VENV").unwrap_or_else(|_| "/var/tmp/latchkey-pyenv".into());
    let p = std::path::Path::new(&venv).join("bin").join(name);
    if p.exists() { p } else { name.into() }
}

async fn run(cmd: &mut tokio::process::Command) -> String {
    let out = cmd
        .output()
        .await
        .expect("the tool runs (scripts/test installs it from PyPI)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

both!(
    openapi_document_validates_and_schemathesis_finds_no_server_error,
    async |app: &TestApp| {
        let dir = tempfile::tempdir().unwrap();
        let doc = reqwest::get(app.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, &doc).unwrap();
        run(tokio::process::Command::new(tool("openapi-spec-validator")).arg(&file)).await;

        let token = client_token(app, "*").await;
        let out = run(tokio::process::Command::new(tool("st"))
            .arg("run")
            .arg(app.url("/api/v1/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "not_a_server_error"])
            .args(["--exclude-path-regex", "^/api/v1/keys/"])
            .args(["--max-examples", "10", "--seed", "7", "--workers", "2"])
            .args(["--max-time", "150"])
            .current_dir(dir.path())
            .env("SCHEMATHESIS_HOOKS", ""))
        .await;
        assert!(out.contains("passed"), "{out}");
        // The service is still whole afterwards.
        let r = reqwest::get(app.url("/health")).await.unwrap();
        assert_eq!(r.status(), 200);
    }
);
