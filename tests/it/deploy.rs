//! `deploy/`: what can be checked without a container runtime or a cluster. The compose file
//! follows the Compose Specification and keeps PostgreSQL on a network the proxy is not on;
//! the Kubernetes manifests validate strictly against the API's schemas and restrict who
//! reaches whom; the systemd unit verifies and scores as hardened; the Dockerfile runs
//! non-root on a distroless image and builds with `deploy/build.sh` (which `scripts/test`
//! runs). Each validator is first shown a broken copy, so a validator that accepts anything
//! fails the test.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var("TEST_PY_VENV").unwrap_or_else(|_| "/var/tmp/latchkey-pyenv".into());
    Path::new(&venv).join("bin").join(name)
}

/// Runs a tool; (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The YAML documents of a file as JSON (through the validators' own YAML parser).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let (ok, out) = run(Command::new(venv_tool("python")).args([
        "-c",
        "import sys, json, ruamel.yaml\n\
         y = ruamel.yaml.YAML(typ='safe')\n\
         print(json.dumps([d for d in y.load_all(open(sys.argv[1])) if d is not None]))",
        path.to_str().unwrap(),
    ]));
    assert!(ok, "{out}");
    serde_json::from_str::<Vec<Value>>(&out).unwrap()
}

/// A copy of `path` in a temporary directory with `from` replaced by `to`.
fn broken_copy(dir: &Path, path: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    let copy = dir.join(path.file_name().unwrap());
    std::fs::write(&copy, text.replacen(from, to, 1)).unwrap();
    copy
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn compose_file_follows_the_spec_and_keeps_the_database_apart() {
    let file = deploy("compose/compose.yaml");
    let check = |f: &Path| {
        run(Command::new(venv_tool("check-jsonschema"))
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(f))
    };
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out) = check(&broken_copy(
        tmp.path(),
        &file,
        "cap_drop: [ALL]",
        "cap_drops: [ALL]",
    ));
    assert!(!ok, "the validator accepts a broken file: {out}");
    let (ok, out) = check(&file);
    assert!(ok, "{out}");

    let c = &yaml_docs(&file)[0];
    let s = &c["services"];
    let networks = |svc: &str| -> Vec<String> {
        match &s[svc]["networks"] {
            Value::Array(a) => a.iter().map(|n| n.as_str().unwrap().to_owned()).collect(),
            Value::Object(m) => m.keys().cloned().collect(),
            _ => vec![],
        }
    };
    assert_eq!(
        networks("db"),
        ["data"],
        "PostgreSQL is on the data network only"
    );
    assert_eq!(c["networks"]["data"]["internal"], true);
    assert!(
        !networks("proxy").contains(&"data".to_owned()),
        "the proxy cannot reach the database"
    );
    assert!(
        s["db"].get("ports").is_none(),
        "the database is not published"
    );
    for node in ["latchkey-1", "latchkey-2"] {
        let n = &s[node];
        assert!(networks(node).contains(&"data".to_owned()), "{node}");
        assert!(
            n.get("ports").is_none(),
            "{node} is reached through the proxy only"
        );
        assert_eq!(n["read_only"], true, "{node}");
        assert_eq!(n["user"], "65532:65532", "{node}");
        assert_eq!(strs(&n["cap_drop"]), ["ALL"], "{node}");
        assert_eq!(
            n["healthcheck"]["test"][1], "/usr/local/bin/latchkey",
            "{node}"
        );
        let proxy_ip = &s["proxy"]["networks"]["app"]["ipv4_address"];
        let pool = &c["networks"]["app"]["ipam"]["config"][0]["ip_range"];
        let (net, bits) = pool
            .as_str()
            .expect("an ip_range for automatic addresses")
            .split_once('/')
            .unwrap();
        let net = u32::from(net.parse::<std::net::Ipv4Addr>().unwrap());
        let mask = u32::MAX << (32 - bits.parse::<u32>().unwrap());
        let proxy = u32::from(
            proxy_ip
                .as_str()
                .unwrap()
                .parse::<std::net::Ipv4Addr>()
                .unwrap(),
        );
        assert_ne!(
            proxy & mask,
            net & mask,
            "a node starting first cannot take the proxy's address"
        );
        assert!(
            n["environment"]["LATCHKEY_PROXY__TRUSTED"]
                .as_str()
                .unwrap()
                .contains(proxy_ip.as_str().unwrap()),
            "{node} trusts the proxy's forwarding headers, and only the proxy's"
        );
    }
}

#[test]
fn kubernetes_manifests_validate_and_restrict_the_network() {
    let dir = deploy("kubernetes");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml")
        })
        .collect();
    assert!(files.len() >= 7, "{files:?}");
    let validate = |f: &[PathBuf]| {
        run(Command::new(venv_tool("kubernetes-validate"))
            .args(["--strict", "--quiet"])
            .args(f))
    };
    let tmp = tempfile::tempdir().unwrap();
    let broken = broken_copy(
        tmp.path(),
        &dir.join("deployment.yaml"),
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: true\n            readOnlyRootFileSystem: true",
    );
    let (ok, out) = validate(&[broken]);
    assert!(!ok, "strict validation accepts an unknown field: {out}");
    let (ok, out) = validate(&files);
    assert!(ok, "{out}");

    let mut kinds = std::collections::BTreeMap::new();
    for f in &files {
        for doc in yaml_docs(f) {
            let name = format!(
                "{}/{}",
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            );
            kinds.insert(name, doc);
        }
    }
    for want in [
        "Deployment/latchkey",
        "Service/latchkey",
        "PodDisruptionBudget/latchkey",
        "NetworkPolicy/latchkey",
        "NetworkPolicy/postgresql",
        "Secret/latchkey",
        "ConfigMap/latchkey",
        "CronJob/latchkey-backup",
        "PersistentVolumeClaim/latchkey-backups",
        "NetworkPolicy/latchkey-backup",
    ] {
        assert!(
            kinds.contains_key(want),
            "{want} missing: {:?}",
            kinds.keys()
        );
    }
    let pod = &kinds["Deployment/latchkey"]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(strs(&c["securityContext"]["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(
        pod["enableServiceLinks"], false,
        "no LATCHKEY_SERVICE_HOST and the like in the environment"
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["limits"]["cpu"].is_string());
    let kek = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "LATCHKEY_KEK")
        .expect("the KEK comes from the Secret");
    assert_eq!(kek["valueFrom"]["secretKeyRef"]["name"], "latchkey");

    // Only the ingress controller reaches Latchkey; only Latchkey reaches PostgreSQL.
    let lk = &kinds["NetworkPolicy/latchkey"]["spec"];
    assert_eq!(strs(&lk["policyTypes"]), ["Ingress", "Egress"]);
    let from = &lk["ingress"][0]["from"];
    assert_eq!(from.as_array().unwrap().len(), 1);
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let pg = &kinds["NetworkPolicy/postgresql"]["spec"];
    assert_eq!(
        pg["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "postgresql"
    );
    let from = pg["ingress"][0]["from"].as_array().unwrap();
    let admitted: Vec<&str> = from
        .iter()
        .map(|f| {
            assert!(f.get("namespaceSelector").is_none(), "this namespace only");
            f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(admitted, ["latchkey", "latchkey-backup"]);

    // The backup CronJob: the image's own command, verified, pruned, hardened like the
    // Deployment, the backup key from the Secret (not the KEK), reachable by no one.
    let job = &kinds["CronJob/latchkey-backup"]["spec"];
    assert_eq!(job["concurrencyPolicy"], "Forbid");
    let pod = &job["jobTemplate"]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args = strs(&c["args"]);
    assert_eq!(args[..3], ["backup", "create", "/backups"]);
    assert!(args.contains(&"--verify") && args.contains(&"--keep"));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["enableServiceLinks"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"LATCHKEY_BACKUP__KEY") && env.contains(&"LATCHKEY_KEK"));
    let bk = &kinds["NetworkPolicy/latchkey-backup"]["spec"];
    assert_eq!(strs(&bk["policyTypes"]), ["Ingress", "Egress"]);
    assert!(
        bk.get("ingress").is_none(),
        "nothing reaches the backup Job"
    );
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = deploy("systemd/latchkey.service");
    let tmp = tempfile::tempdir().unwrap();
    // `verify` wants the ExecStart binary to exist: point it at the one under test.
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("/usr/local/bin/latchkey", env!("CARGO_BIN_EXE_latchkey"));
    let copy = tmp.path().join("latchkey.service");
    std::fs::write(&copy, &text).unwrap();
    let verify = |f: &Path| run(Command::new("systemd-analyze").arg("verify").arg(f));
    let broken_dir = tempfile::tempdir().unwrap();
    let broken = broken_copy(
        broken_dir.path(),
        &copy,
        "ProtectSystem=strict",
        "ProtectSystem=sometimes",
    );
    let (_, out) = verify(&broken);
    assert!(
        !out.trim().is_empty(),
        "verify says nothing about a bad value"
    );
    // `verify` exits 0 on unknown keys and bad values: any message is a failure.
    let (ok, out) = verify(&copy);
    assert!(ok && out.trim().is_empty(), "{out}");
    // Exposure 0.0 (locked down) to 10.0 (unprotected); `--threshold` is in tenths.
    let (ok, out) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&copy));
    assert!(ok, "exposure above 2.0: {out}");
    for key in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "LoadCredential=kek:",
    ] {
        assert!(text.contains(key), "{key}");
    }
}

#[test]
fn dockerfile_builds_with_the_script_and_runs_non_root_without_a_shell() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stages.len(), 2, "multi-stage: build, then runtime");
    let (build, runtime) = lines.split_at(stages[1]);
    assert!(
        build.contains(&"RUN sh deploy/build.sh /out"),
        "the build stage runs deploy/build.sh, the script CI runs"
    );
    assert!(
        runtime[0].starts_with("FROM gcr.io/distroless/"),
        "no shell at runtime: {}",
        runtime[0]
    );
    assert!(
        !runtime.iter().any(|l| l.starts_with("RUN ")),
        "nothing runs a shell in the runtime stage"
    );
    assert!(runtime.contains(&"USER 65532:65532"), "non-root");
    let exec_form = |prefix: &str| {
        runtime
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .contains("[\"/usr/local/bin/latchkey\"")
    };
    assert!(exec_form("ENTRYPOINT"), "exec form: no shell needed");
    assert!(
        text.contains("CMD [\"/usr/local/bin/latchkey\", \"health\"]"),
        "health check without a shell"
    );
    let script = std::fs::read_to_string(deploy("build.sh")).unwrap();
    assert!(
        script.contains("cargo build --locked"),
        "reproducible: the lock file decides"
    );
    assert!(
        text.contains("SQLITE_TMPDIR=/var/lib/latchkey"),
        "SQLite's temporary files go to the one writable path"
    );
}
