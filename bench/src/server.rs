//! Running the real `latchkey` binary: start it on a free loopback port and a data directory,
//! time how long it takes until `/health` answers, stop it with SIGTERM, read its memory and
//! CPU counters from `/proc`, and provision it with its own CLI.

use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before the benchmark gives up.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stop (SIGTERM, graceful shutdown) may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// One server installation: a binary, a data directory, a port and optionally a database URL.
/// Every start and every CLI call gets exactly the same environment.
pub struct Instance {
    bin: PathBuf,
    data_dir: PathBuf,
    pub addr: SocketAddr,
    database_url: Option<String>,
}

/// A running `latchkey serve`; killed (SIGKILL) on drop unless stopped before.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Instance {
    pub fn new(bin: &Path, data_dir: &Path, database_url: Option<String>) -> Result<Instance> {
        Ok(Instance {
            bin: bin.to_owned(),
            data_dir: data_dir.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            database_url,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        // Only the variables below configure the server: nothing leaks in from the caller.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LATCHKEY_") || k == "DATABASE_URL" {
                cmd.env_remove(k.as_ref());
            }
        }
        cmd.env("LATCHKEY_BIND", self.addr.to_string())
            .env("LATCHKEY_DATA_DIR", &self.data_dir)
            .env("LATCHKEY_LOG", "warn")
            // The attack phase stands for many clients behind a proxy on the loopback.
            .env("LATCHKEY_PROXY__TRUSTED", "[\"127.0.0.1/32\"]");
        if let Some(url) = &self.database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd
    }

    /// Spawns `latchkey serve` and polls `GET /health` every millisecond; returns the running
    /// server and the wall time from spawn to the first 200.
    pub fn start(&self) -> Result<(Running, Duration)> {
        let log = self.data_dir.join("serve.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = self.command();
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {} serve", self.bin.display()))?;
        let mut running = Running { child, log };
        loop {
            if health_ok(self.addr) {
                return Ok((running, started.elapsed()));
            }
            if let Some(status) = running.child.try_wait()? {
                bail!(
                    "latchkey serve exited with {status} before it was ready:\n{}",
                    running.log_tail()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "latchkey serve was not ready after {START_TIMEOUT:?}:\n{}",
                    running.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Runs a `latchkey` CLI command with `--json`, feeding `stdin`, and parses its output.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<serde_json::Value> {
        let mut cmd = self.command();
        cmd.args(args)
            .arg("--json")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning latchkey {}", args.join(" ")))?;
        // Dropping the pipe closes the child's standard input.
        if let Some(mut pipe) = child.stdin.take()
            && let Some(input) = stdin
        {
            pipe.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "latchkey {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "latchkey {} printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it has not exited within `STOP_TIMEOUT`.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !sent {
            self.child.kill()?;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("latchkey serve did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A `VmRSS`-style field of `/proc/<pid>/status`, in bytes.
    pub fn status_bytes(&self, field: &str) -> Result<u64> {
        proc_status_bytes(self.pid(), field)
    }

    /// User plus system CPU time the server has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time(&format!("/proc/{}/stat", self.pid()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port that was free a moment ago (the kernel picks it; the listener is closed again).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr()?.port())
}

/// One `GET /health` on a fresh connection; true on a 200.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")
}

/// Reads a `kB` field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status`, in bytes.
pub fn proc_status_bytes(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let prefix = format!("{field}:");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .ok_or_else(|| anyhow!("{path} has no {field}"))?;
    let kib: u64 = line[prefix.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing {line:?}"))?;
    Ok(kib * 1024)
}

/// User plus system CPU time of a process from its `/proc/.../stat`.
pub fn cpu_time(stat_path: &str) -> Result<Duration> {
    let text =
        std::fs::read_to_string(stat_path).with_context(|| format!("reading {stat_path}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected {stat_path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("{stat_path} is too short"))?
            .parse::<u64>()
            .with_context(|| format!("parsing {stat_path}"))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// `sysconf(_SC_CLK_TCK)` without unsafe code: `getconf`, or the Linux default of 100.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}
