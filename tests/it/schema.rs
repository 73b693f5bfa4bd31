//! `store/schema.rs` (diesel's view of the tables) must say what both migration trees build:
//! the same tables, the same columns, with matching types and nullability. A migration that
//! forgets one backend, or a schema edit that forgets a migration, fails here instead of at
//! the first query that touches the column in production.

use crate::common::{Backend, TestApp};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use std::collections::BTreeMap;

/// Column name → (diesel type without `Nullable`, nullable).
type Columns = BTreeMap<String, (String, bool)>;

/// Reads the `diesel::table!` blocks of `store/schema.rs`.
fn declared() -> BTreeMap<String, Columns> {
    let text = include_str!("../../crates/latchkey-server/src/store/schema.rs");
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, Columns)> = None;
    for line in text.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(" (")
            && line.ends_with('{')
            && current.is_none()
        {
            current = Some((name.to_owned(), Columns::new()));
        } else if let Some((col, ty)) = line.trim_end_matches(',').split_once(" -> ")
            && let Some((_, cols)) = current.as_mut()
        {
            let (ty, nullable) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (ty, false),
            };
            cols.insert(col.to_owned(), (ty.to_owned(), nullable));
        } else if line == "}"
            && let Some((name, cols)) = current.take()
        {
            tables.insert(name, cols);
        }
    }
    assert!(
        tables.len() > 10,
        "schema.rs parsed to {} tables",
        tables.len()
    );
    tables
}

/// The diesel type a column's SQL type maps to on each backend.
fn diesel_type(sql: &str) -> String {
    match sql.to_ascii_lowercase().as_str() {
        "text" => "Text",
        "bigint" => "BigInt",
        "integer" => "Integer",
        "boolean" => "Bool",
        "blob" | "bytea" => "Binary",
        other => return format!("unknown SQL type {other}"),
    }
    .to_owned()
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tbl: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    ty: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    not_null: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pk: i32,
}

fn sqlite_columns(path: &str) -> BTreeMap<String, Columns> {
    let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite database");
    let rows: Vec<SqliteColumn> = diesel::sql_query(
        "SELECT m.name AS tbl, p.name AS name, p.type AS ty, p.\"notnull\" AS not_null, p.pk AS pk \
         FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
         AND m.name != '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .expect("read SQLite columns");
    let mut tables: BTreeMap<String, Columns> = BTreeMap::new();
    for r in rows {
        // SQLite lets a non-INTEGER primary key hold NULL unless declared NOT NULL; a key
        // column is still never NULL in practice (every insert gives it), as diesel assumes.
        let nullable = r.not_null == 0 && r.pk == 0;
        tables
            .entry(r.tbl)
            .or_default()
            .insert(r.name, (diesel_type(&r.ty), nullable));
    }
    tables
}

async fn postgres_columns(url: &str) -> BTreeMap<String, Columns> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name != '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("read PostgreSQL columns");
    drop(client);
    let _ = task.await;
    let mut tables: BTreeMap<String, Columns> = BTreeMap::new();
    for r in rows {
        let (table, col, ty, nullable): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        tables
            .entry(table)
            .or_default()
            .insert(col, (diesel_type(&ty), nullable == "YES"));
    }
    tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_both_migration_trees() {
    let declared = declared();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::new(backend).await;
        let url = app.state.config.database_url();
        let actual = match backend {
            Backend::Sqlite => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(&url)
                    .to_owned();
                tokio::task::spawn_blocking(move || sqlite_columns(&path))
                    .await
                    .expect("SQLite task")
            }
            Backend::Postgres => postgres_columns(&url).await,
        };
        app.stop().await;
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            declared.keys().collect::<Vec<_>>(),
            "{backend:?}: the migrations and schema.rs define different tables"
        );
        for (table, cols) in &declared {
            assert_eq!(
                &actual[table], cols,
                "{backend:?}: table `{table}` differs between its migrations (left) and schema.rs (right)"
            );
        }
    }
}
