//! `docs/configuration.md` documents every configuration key (the reference is checked
//! against the struct, so a new option cannot go undocumented).

use latchkey_server::Config;
use serde_json::Value;

fn keys(prefix: &str, v: &Value, out: &mut Vec<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if child.is_object() {
                keys(&name, child, out);
            } else {
                out.push(name);
            }
        }
    }
}

#[test]
fn every_config_key_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let mut all = Vec::new();
    keys(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut all,
    );
    assert!(all.len() > 15);
    for k in all {
        assert!(
            doc.contains(&format!("`{k}`")),
            "docs/configuration.md does not document `{k}`"
        );
        let env = format!("LATCHKEY_{}", k.replace('.', "__").to_uppercase());
        assert!(
            doc.contains(&env),
            "docs/configuration.md does not name {env}"
        );
    }
}
