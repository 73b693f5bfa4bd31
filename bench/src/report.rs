//! The Markdown report: one table of metrics against their targets, notes, the machine, and
//! the exact command that produced it.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub enum Verdict {
    None,
    Met,
    Missed,
}

impl Verdict {
    pub fn of(met: bool) -> Verdict {
        if met { Verdict::Met } else { Verdict::Missed }
    }
}

struct Row {
    metric: String,
    value: String,
    target: String,
    verdict: Verdict,
}

pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    argv: Vec<String>,
    latchkey_version: Option<String>,
}

impl Report {
    pub fn new(bin: &Path, argv: Vec<String>) -> Report {
        Report {
            rows: Vec::new(),
            notes: Vec::new(),
            argv,
            latchkey_version: output(bin, &["--version"]),
        }
    }

    pub fn row(&mut self, metric: &str, value: String, target: &str, verdict: Verdict) {
        self.rows.push(Row {
            metric: metric.to_owned(),
            value,
            target: target.to_owned(),
            verdict,
        });
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The command as typed, with a PostgreSQL password (if any) hidden.
    fn command(&self) -> String {
        let args: Vec<String> = self
            .argv
            .iter()
            .skip(1)
            .map(|a| shell_quote(&redact(a)))
            .collect();
        let bench = self
            .argv
            .first()
            .map(String::as_str)
            .unwrap_or("target/release/latchkey-bench");
        format!(
            "cargo build --release -p latchkey -p latchkey-bench && {} {}",
            shell_quote(bench),
            args.join(" ")
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## Latchkey benchmark\n")?;
        writeln!(f, "| metric | value | target | verdict |")?;
        writeln!(f, "| --- | --- | --- | --- |")?;
        for r in &self.rows {
            let verdict = match r.verdict {
                Verdict::None => "",
                Verdict::Met => "met",
                Verdict::Missed => "**missed**",
            };
            let target = if r.target.is_empty() {
                "—"
            } else {
                &r.target
            };
            writeln!(
                f,
                "| {} | {} | {} | {} |",
                cell(&r.metric),
                cell(&r.value),
                cell(target),
                verdict
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            for n in &self.notes {
                writeln!(f, "- {}", cell(n))?;
            }
        }
        writeln!(f, "\n### Machine\n")?;
        let nproc = output("nproc", &[]).unwrap_or_else(|| "?".into());
        writeln!(f, "- `nproc`: {nproc}")?;
        writeln!(f, "- CPU: {}", cpu_model().unwrap_or_else(|| "?".into()))?;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .ok()
            .or_else(|| output("uname", &["-r"]))
            .unwrap_or_else(|| "?".into());
        writeln!(f, "- kernel (`uname -r`): {kernel}")?;
        writeln!(
            f,
            "- rustc: {}",
            output("rustc", &["--version"]).unwrap_or_else(|| "?".into())
        )?;
        if let Some(v) = &self.latchkey_version {
            writeln!(f, "- server: {v}")?;
        }
        if let Some(commit) = output("git", &["rev-parse", "--short", "HEAD"]) {
            let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            let dirty = if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            };
            writeln!(f, "- commit: {commit}{dirty}")?;
        }
        writeln!(f, "\n### Command\n")?;
        writeln!(f, "```sh\n{}\n```", self.command())
    }
}

/// Escapes `|` so a value cannot break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn output(cmd: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Hides the password of a URL-looking argument.
pub fn redact(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Bytes as MB (10^6, the unit of the targets) with MiB alongside.
pub fn fmt_bytes(b: u64) -> String {
    format!(
        "{:.1} MB ({:.1} MiB)",
        b as f64 / 1e6,
        b as f64 / (1024.0 * 1024.0)
    )
}

/// A rate with thousands separators: 15234.6 -> "15,235".
pub fn fmt_rate(r: f64) -> String {
    let n = r.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(15234.6), "15,235");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_rate(1_000_000.0), "1,000,000");
        assert_eq!(fmt_ms(Duration::from_micros(45_300)), "45.3 ms");
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(shell_quote("--duration"), "--duration");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
