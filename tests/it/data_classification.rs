//! `docs/security.md` classifies every column of every table (public, internal, personal or
//! secret) and says how it is kept at rest. The columns are read from a freshly migrated
//! database of each backend, so a migration that adds a column without classifying it fails
//! here, and so does a listed column that no longer exists.

use crate::both;
use crate::common::*;
use std::collections::BTreeSet;

const CLASSES: &[&str] = &["public", "internal", "personal", "secret"];

/// `table.column` of every row of the classification table, with its class.
fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md"))
        .expect("docs/security.md");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let column = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            column.contains('.').then(|| {
                (
                    column.to_owned(),
                    cells.get(2).copied().unwrap_or("").to_owned(),
                )
            })
        })
        .collect()
}

async fn columns(app: &TestApp) -> BTreeSet<String> {
    let url = app.state.config.database_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        use diesel::{Connection, QueryableByName, RunQueryDsl, sql_types::Text};
        #[derive(QueryableByName)]
        struct Col {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let mut c = diesel::sqlite::SqliteConnection::establish(path).unwrap();
        diesel::sql_query(
            "SELECT m.name || '.' || p.name AS name FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
             AND m.name NOT LIKE 'sqlite_%'",
        )
        .load::<Col>(&mut c)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect()
    } else {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let rows = c
            .query(
                "SELECT table_name || '.' || column_name FROM information_schema.columns \
                 WHERE table_schema = 'public'",
                &[],
            )
            .await
            .unwrap();
        drop(c);
        let _ = task.await;
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    }
}

both!(every_column_is_classified, async |app: &TestApp| {
    let have = columns(app).await;
    assert!(have.len() > 150, "{} columns", have.len());
    let doc = documented();
    let mut listed = BTreeSet::new();
    for (column, class) in &doc {
        assert!(
            CLASSES.contains(&class.as_str()),
            "{column}: class `{class}` is none of {CLASSES:?}"
        );
        assert!(listed.insert(column.clone()), "{column} is listed twice");
    }
    let unclassified: Vec<_> = have.difference(&listed).collect();
    assert!(
        unclassified.is_empty(),
        "classify these columns in docs/security.md (public, internal, personal or secret, and how they are kept at rest): {unclassified:?}"
    );
    let stale: Vec<_> = listed.difference(&have).collect();
    assert!(
        stale.is_empty(),
        "docs/security.md lists columns that do not exist: {stale:?}"
    );
});

/// What the model promises for the columns that would hurt most: never stored readable.
#[test]
fn credentials_and_keys_are_secret() {
    let doc: std::collections::HashMap<_, _> = documented().into_iter().collect();
    for column in [
        "users.password_hash",
        "clients.secret_hash",
        "signing_keys.private_key",
        "totp_credentials.secret",
        "recovery_codes.code_hash",
        "refresh_tokens.token_hash",
        "authorization_codes.code_hash",
        "sessions.token_hash",
        "server_secrets.sealed",
        "invitations.token_hash",
    ] {
        assert_eq!(
            doc.get(column).map(String::as_str),
            Some("secret"),
            "{column}"
        );
    }
}
