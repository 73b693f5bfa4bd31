//! `latchkey-bench`: starts the real `latchkey` binary and measures start-up, memory, password
//! logins, and the throughput of the token endpoint, UserInfo and introspection, then prints a
//! Markdown report (see docs/benchmarks.md).
//!
//! ```sh
//! cargo build --release -p latchkey -p latchkey-bench && \
//!   target/release/latchkey-bench --bin target/release/latchkey \
//!   [--postgres postgres://postgres@127.0.0.1:5432/test] [--duration SECS]
//! ```
//!
//! Progress goes to standard error, the report to standard output.

mod argon;
mod attack;
mod backup;
mod load;
mod login;
mod report;
mod server;
mod stats;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use load::Grant;
use login::{Target, Until};
use report::{Report, Verdict, fmt_bytes, fmt_ms, fmt_rate};
use server::{Instance, Running};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Targets the report checks against.
const TARGET_CLIENT_CREDENTIALS: f64 = 15_000.0;
const TARGET_REFRESH_SQLITE: f64 = 4_000.0;
const TARGET_LOGIN_SHARE: f64 = 0.80;
const TARGET_IDLE_RSS: u64 = 25_000_000;
const TARGET_READY: Duration = Duration::from_millis(200);
/// Under a password-guessing flood: the known-device user's login p99 within this factor of
/// its idle p99, and the attack's 429 answers within this.
const TARGET_ATTACK_SLOWDOWN: f64 = 2.0;
const TARGET_THROTTLED_P99_MS: f64 = 10.0;
/// Issue 15: the read paths (userinfo, introspection) of a valid access token each at this
/// share of the `client_credentials` rate, and rotating refresh at these shares.
const TARGET_READ_SHARE: f64 = 0.50;
const TARGET_REFRESH_SHARE_SQLITE: f64 = 0.25;
const TARGET_REFRESH_SHARE_POSTGRES: f64 = 0.15;

#[derive(Parser)]
#[command(
    name = "latchkey-bench",
    about = "Load benchmark for Latchkey: start-up, memory, logins, token grants and token checks"
)]
struct Args {
    /// The `latchkey` binary to benchmark (build it with --release).
    #[arg(long)]
    bin: PathBuf,
    /// PostgreSQL server to repeat the token benchmarks on, e.g.
    /// postgres://postgres@127.0.0.1:5432/test. A fresh database is created and dropped.
    #[arg(long)]
    postgres: Option<String>,
    /// Seconds each timed load phase (logins, client_credentials, refresh) runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent login workers.
    #[arg(long, default_value_t = 4)]
    logins: usize,
    /// Concurrent keep-alive connections for the token-endpoint phases.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Restarts timed after the first start.
    #[arg(long, default_value_t = 3)]
    restarts: usize,
    /// Wrong-password requests kept in flight by the attack phase (SQLite); 0 skips it.
    #[arg(long, default_value_t = 64)]
    attack_in_flight: usize,
    /// Run only start-up, provisioning and the password-guessing phase (SQLite).
    #[arg(long)]
    attack_only: bool,
    /// Also benchmark `latchkey backup` on a generated service of this many users (needs
    /// --postgres: the generator writes there).
    #[arg(long, value_name = "USERS")]
    backup_users: Option<u64>,
    /// Run only the backup benchmark.
    #[arg(long, requires = "backup_users")]
    backup_only: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Report> {
    anyhow::ensure!(args.duration > 0, "--duration must be at least 1 second");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.logins > 0, "--logins must be at least 1");
    let bin = std::fs::canonicalize(&args.bin)
        .with_context(|| format!("--bin {}", args.bin.display()))?;
    // One thread: the load generator gets at most one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut report = Report::new(&bin, std::env::args().collect());
    if !args.backup_only {
        sqlite(args, &bin, &rt, &mut report)?;
        if let Some(admin) = args.postgres.as_ref().filter(|_| !args.attack_only) {
            postgres(args, &bin, &rt, &mut report, admin)?;
        }
    }
    if let Some(users) = args.backup_users {
        let Some(admin) = &args.postgres else {
            anyhow::bail!("--backup-users needs --postgres: the generator writes there");
        };
        backup::run(&bin, &rt, &mut report, admin, users)?;
    }
    Ok(report)
}

fn phase(what: &str) {
    eprintln!("latchkey-bench: {what}");
}

fn sqlite(
    args: &Args,
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
) -> Result<()> {
    let duration = Duration::from_secs(args.duration);
    let dir = tempfile::Builder::new()
        .prefix("latchkey-bench-")
        .tempdir()?;
    let inst = Instance::new(bin, dir.path(), None)?;

    // 1. Start-to-ready: first start (creates the KEK and the signing keys), then restarts.
    phase("start-to-ready");
    let (mut server, first) = inst.start()?;
    let mut restarts = Vec::new();
    for _ in 0..args.restarts {
        server.stop()?;
        let (s, t) = inst.start()?;
        server = s;
        restarts.push(t);
    }
    report.row(
        "Start to ready, first start (creates keys)",
        fmt_ms(first),
        "",
        Verdict::None,
    );
    if !restarts.is_empty() {
        let mut sorted = restarts.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        let all: Vec<String> = restarts.iter().map(|d| fmt_ms(*d)).collect();
        report.row(
            &format!("Start to ready, restart (median of {})", restarts.len()),
            format!("{} ({})", fmt_ms(median), all.join(", ")),
            &format!("≤ {}", fmt_ms(TARGET_READY)),
            Verdict::of(median <= TARGET_READY),
        );
    }

    // 2. Provision with the CLI, against the running server's database.
    phase("provisioning with the CLI");
    let target = provision(&inst)?;

    // 3. Idle RSS.
    std::thread::sleep(Duration::from_secs(1));
    let idle = server.status_bytes("VmRSS")?;
    report.row(
        "Idle RSS (VmRSS, 1 s after ready)",
        fmt_bytes(idle),
        "≤ 25 MB",
        Verdict::of(idle <= TARGET_IDLE_RSS),
    );

    if args.attack_only {
        anyhow::ensure!(
            args.attack_in_flight > 0,
            "--attack-only needs --attack-in-flight > 0"
        );
        attack_phase(args, rt, &target, report)?;
        server.stop()?;
        return Ok(());
    }

    // 4. The Argon2id ceiling, measured while the server idles.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let argon_time = duration.clamp(Duration::from_secs(2), Duration::from_secs(5));
    phase(&format!(
        "raw Argon2id on {cores} threads for {}s",
        argon_time.as_secs()
    ));
    let argon_rate = argon::rate(cores, argon_time)?;
    report.row(
        &format!(
            "Raw Argon2id rate (m={} KiB, t={}, p={}; {cores} threads)",
            argon::MEMORY_KIB,
            argon::ITERATIONS,
            argon::PARALLELISM
        ),
        format!("{:.1} hashes/s", argon_rate),
        "",
        Verdict::None,
    );

    // 5. Complete password logins.
    phase(&format!(
        "password logins: {} workers for {}s",
        args.logins, args.duration
    ));
    let logins = rt.block_on(login::run(&target, args.logins, Until::Elapsed(duration)))?;
    anyhow::ensure!(
        logins.logins > 0,
        "no login succeeded: {}",
        logins.first_error.as_deref().unwrap_or("no error recorded")
    );
    let share = logins.per_sec() / argon_rate;
    report.row(
        &format!("Password logins ({} workers)", args.logins),
        format!(
            "{:.1} logins/s = {:.0} % of the Argon2id rate",
            logins.per_sec(),
            share * 100.0
        ),
        &format!("≥ {:.0} % of the Argon2id rate", TARGET_LOGIN_SHARE * 100.0),
        Verdict::of(share >= TARGET_LOGIN_SHARE),
    );
    report.row(
        "Login latency p50 / p99 (whole flow)",
        format!(
            "{} / {} ({} logins, {} errors)",
            fmt_ms_f(logins.latencies.ms(0.5)),
            fmt_ms_f(logins.latencies.ms(0.99)),
            logins.latencies.count(),
            logins.errors
        ),
        "",
        Verdict::None,
    );
    if let Some(e) = &logins.first_error {
        report.note(format!("First login error: {e}"));
    }
    let mut tokens = logins.tokens;
    top_up_tokens(rt, &target, args, &mut tokens)?;
    let mut memory = MemoryTrace::default();
    memory.after(&server, "logins")?;

    // 6 to 8. The token endpoint, UserInfo and introspection.
    let auth = load::basic_auth(&target.client_id, &target.client_secret);
    token_endpoint(
        &Phase {
            args,
            rt,
            server: &server,
            inst: &inst,
            auth: &auth,
            db: "SQLite",
        },
        report,
        &mut memory,
        tokens,
        Targets {
            refresh: Some(TARGET_REFRESH_SQLITE),
            refresh_share: TARGET_REFRESH_SHARE_SQLITE,
        },
    )?;

    // 9. Peak RSS.
    memory.report(report, &server, "SQLite")?;

    // 10. Password guessing: a known-device user's logins, idle and under a flood.
    if args.attack_in_flight > 0 {
        attack_phase(args, rt, &target, report)?;
    }
    server.stop()?;
    Ok(())
}

fn attack_phase(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    target: &Target,
    report: &mut Report,
) -> Result<()> {
    let n = args.attack_in_flight;
    phase(&format!(
        "password guessing: a known device's logins, idle then with {n} wrong passwords in flight from {} addresses, {}s each",
        attack::SOURCES,
        args.duration
    ));
    let run = rt.block_on(attack::run(target, n, Duration::from_secs(args.duration)))?;
    anyhow::ensure!(
        run.idle.count() > 0 && run.under_attack.count() > 0,
        "the known device never signed in: {}",
        run.first_user_error
            .as_deref()
            .unwrap_or("no error recorded")
    );
    let (idle99, attack99) = (run.idle.ms(0.99), run.under_attack.ms(0.99));
    report.row(
        "Known-device login p50 / p99, idle (whole flow, prompt=login)",
        format!(
            "{} / {} ({} logins)",
            fmt_ms_f(run.idle.ms(0.5)),
            fmt_ms_f(idle99),
            run.idle.count()
        ),
        "",
        Verdict::None,
    );
    report.row(
        &format!(
            "Known-device login p50 / p99, {n} wrong passwords in flight from {} addresses",
            attack::SOURCES
        ),
        format!(
            "{} / {} ({} logins, {} errors) = {:.2}× idle p99",
            fmt_ms_f(run.under_attack.ms(0.5)),
            fmt_ms_f(attack99),
            run.under_attack.count(),
            run.user_errors,
            attack99 / idle99.max(f64::EPSILON)
        ),
        &format!("≤ {TARGET_ATTACK_SLOWDOWN}× idle p99"),
        Verdict::of(attack99 <= TARGET_ATTACK_SLOWDOWN * idle99),
    );
    if let Some(e) = &run.first_user_error {
        report.note(format!("First known-device login error: {e}"));
    }
    let answers: Vec<String> = run
        .answers
        .iter()
        .map(|(status, lat)| {
            format!(
                "{status}: {} (p50 {} / p99 {})",
                lat.count(),
                fmt_ms_f(lat.ms(0.5)),
                fmt_ms_f(lat.ms(0.99))
            )
        })
        .collect();
    report.row(
        "Attack answers by status (count, latency)",
        format!("{}; {} errors", answers.join(", "), run.attack_errors),
        "",
        Verdict::None,
    );
    let throttled = run.answers.get(&429);
    let p99 = throttled.map_or(f64::INFINITY, |l| l.ms(0.99));
    report.row(
        "Attack answered 429 (throttled) p99",
        fmt_ms_f(p99),
        &format!("≤ {TARGET_THROTTLED_P99_MS} ms"),
        Verdict::of(p99 <= TARGET_THROTTLED_P99_MS),
    );
    Ok(())
}

/// The server's resident memory after each phase, and its peak.
#[derive(Default)]
struct MemoryTrace(Vec<String>);

impl MemoryTrace {
    fn after(&mut self, server: &Running, what: &str) -> Result<()> {
        let rss = server.status_bytes("VmRSS")?;
        eprintln!(
            "latchkey-bench:   server RSS after {what}: {}",
            fmt_bytes(rss)
        );
        self.0.push(format!("{what} {:.1} MB", rss as f64 / 1e6));
        Ok(())
    }

    fn report(&self, report: &mut Report, server: &Running, db: &str) -> Result<()> {
        let peak = server.status_bytes("VmHWM")?;
        report.row(
            &format!("Peak RSS after all load (VmHWM, {db})"),
            fmt_bytes(peak),
            "",
            Verdict::None,
        );
        report.row(
            &format!("RSS after each phase (VmRSS, {db})"),
            self.0.join(", "),
            "",
            Verdict::None,
        );
        Ok(())
    }
}

/// What a token-endpoint phase runs against.
struct Phase<'a> {
    args: &'a Args,
    rt: &'a tokio::runtime::Runtime,
    server: &'a Running,
    inst: &'a Instance,
    auth: &'a str,
    db: &'a str,
}

/// Runs enough extra logins (untimed) that every connection gets its own refresh chain and
/// access token.
fn top_up_tokens(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    args: &Args,
    tokens: &mut Vec<login::Tokens>,
) -> Result<()> {
    if tokens.len() >= args.connections {
        return Ok(());
    }
    let missing = args.connections - tokens.len();
    phase(&format!("{missing} more logins for refresh tokens"));
    let more = rt.block_on(login::run(target, args.logins, Until::Count(missing)))?;
    tokens.extend(more.tokens);
    anyhow::ensure!(
        tokens.len() >= args.connections,
        "only {} refresh tokens for {} connections: {}",
        tokens.len(),
        args.connections,
        more.first_error.as_deref().unwrap_or("")
    );
    Ok(())
}

/// The targets of a database's token-endpoint phases.
struct Targets {
    /// Refresh grants per second (SQLite only).
    refresh: Option<f64>,
    /// Refresh at this share of the `client_credentials` rate.
    refresh_share: f64,
}

/// Phases 6 and 7: `client_credentials`, the read paths of an access token (userinfo,
/// introspection) and rotating refresh, each reported with its share of `client_credentials`.
fn token_endpoint(
    p: &Phase<'_>,
    report: &mut Report,
    memory: &mut MemoryTrace,
    tokens: Vec<login::Tokens>,
    targets: Targets,
) -> Result<()> {
    let Phase {
        rt, inst, auth, db, ..
    } = *p;
    rt.block_on(load::probe(inst.addr, auth))?;
    let c = p.args.connections;
    // The freshest tokens: access tokens live 5 minutes by default.
    let fresh: Vec<login::Tokens> = tokens.iter().rev().take(c).cloned().collect();
    let access = || fresh.iter().map(|t| t.access.clone()).collect::<Vec<_>>();

    let cc = load_phase(p, memory, "client_credentials", Grant::ClientCredentials)?;
    let cc_rate = cc.per_sec();
    report.row(
        &format!("client_credentials grants ({db}, {c} connections)"),
        format!("{}/s", fmt_rate(cc_rate)),
        &format!("≥ {}/s", fmt_rate(TARGET_CLIENT_CREDENTIALS)),
        Verdict::of(cc_rate >= TARGET_CLIENT_CREDENTIALS),
    );
    cc.details(report, db, "client_credentials");

    let share = |rate: f64| rate / cc_rate.max(f64::EPSILON);
    for (name, grant) in [
        ("userinfo", Grant::UserInfo(access())),
        ("introspection", Grant::Introspect(access())),
    ] {
        let r = load_phase(p, memory, name, grant)?;
        report.row(
            &format!("{name} of a valid access token ({db}, {c} connections, one token each)"),
            format!(
                "{}/s = {:.0} % of client_credentials",
                fmt_rate(r.per_sec()),
                share(r.per_sec()) * 100.0
            ),
            &format!("≥ {:.0} % of client_credentials", TARGET_READ_SHARE * 100.0),
            Verdict::of(share(r.per_sec()) >= TARGET_READ_SHARE),
        );
        r.details(report, db, name);
    }

    let refresh = fresh.iter().map(|t| t.refresh.clone()).collect();
    let rf = load_phase(p, memory, "refresh", Grant::Refresh(refresh))?;
    if let Some(t) = targets.refresh {
        report.row(
            &format!("Refresh grants ({db}, {c} connections)"),
            format!("{}/s", fmt_rate(rf.per_sec())),
            &format!("≥ {}/s", fmt_rate(t)),
            Verdict::of(rf.per_sec() >= t),
        );
    }
    report.row(
        &format!("Refresh grants, share of client_credentials ({db}, {c} connections)"),
        format!(
            "{}/s = {:.1} % of client_credentials",
            fmt_rate(rf.per_sec()),
            share(rf.per_sec()) * 100.0
        ),
        &format!("≥ {:.0} %", targets.refresh_share * 100.0),
        Verdict::of(share(rf.per_sec()) >= targets.refresh_share),
    );
    rf.details(report, db, "refresh");
    if rf.dead_connections > 0 {
        report.note(format!(
            "{} of {c} refresh chains stopped early ({db})",
            rf.dead_connections
        ));
    }
    Ok(())
}

/// A measured load phase and the CPU both sides used during it.
struct Measured {
    run: load::LoadRun,
    cpu: String,
}

impl std::ops::Deref for Measured {
    type Target = load::LoadRun;
    fn deref(&self) -> &load::LoadRun {
        &self.run
    }
}

impl Measured {
    /// The latency, error and CPU rows under a phase's rate row.
    fn details(&self, report: &mut Report, db: &str, name: &str) {
        report.row(
            &format!("{name} latency p50 / p99, errors ({db})"),
            format!(
                "{} / {}, {} errors",
                fmt_ms_f(self.latencies.ms(0.5)),
                fmt_ms_f(self.latencies.ms(0.99)),
                self.errors
            ),
            "",
            Verdict::None,
        );
        report.row(
            &format!("CPU during {name} ({db})"),
            self.cpu.clone(),
            "",
            Verdict::None,
        );
        if let Some(e) = &self.first_error {
            report.note(format!("First {name} error ({db}): {e}"));
        }
    }
}

fn load_phase(
    p: &Phase<'_>,
    memory: &mut MemoryTrace,
    name: &str,
    grant: Grant,
) -> Result<Measured> {
    let c = p.args.connections;
    phase(&format!(
        "{name} ({}): {c} connections for {}s",
        p.db, p.args.duration
    ));
    let cpu = CpuMeter::start(p.server)?;
    let run = p.rt.block_on(load::run(
        p.inst.addr,
        p.auth,
        c,
        Duration::from_secs(p.args.duration),
        grant,
    ))?;
    let cpu = cpu.stop(p.server, run.elapsed)?;
    memory.after(p.server, name)?;
    Ok(Measured { run, cpu })
}

/// CPU the server and this process used over a load phase, in cores.
struct CpuMeter {
    server: Duration,
    me: Duration,
}

impl CpuMeter {
    fn start(server: &Running) -> Result<CpuMeter> {
        Ok(CpuMeter {
            server: server.cpu_time()?,
            me: server::cpu_time("/proc/self/stat")?,
        })
    }

    fn stop(self, server: &Running, wall: Duration) -> Result<String> {
        let s = server.cpu_time()?.saturating_sub(self.server);
        let m = server::cpu_time("/proc/self/stat")?.saturating_sub(self.me);
        let w = wall.as_secs_f64().max(f64::EPSILON);
        Ok(format!(
            "server {:.2} cores, load generator {:.2} cores",
            s.as_secs_f64() / w,
            m.as_secs_f64() / w
        ))
    }
}

fn fmt_ms_f(ms: f64) -> String {
    if !ms.is_finite() {
        return "none".into();
    }
    report::fmt_ms(Duration::from_secs_f64(ms / 1000.0))
}

/// Creates the lab, the user and the client with the `latchkey` CLI.
fn provision(inst: &Instance) -> Result<Target> {
    inst.cli(&["lab", "create", "--name", "Bench"], None)?;
    inst.cli(
        &[
            "user",
            "create",
            "--lab",
            "Bench",
            "--email",
            login::EMAIL,
            "--password-stdin",
        ],
        Some(&format!("{}\n", login::PASSWORD)),
    )?;
    let client = inst.cli(
        &[
            "client",
            "create",
            "--name",
            "Bench",
            "--redirect-uri",
            login::REDIRECT_URI,
            "--grant-types",
            "authorization_code,refresh_token,client_credentials",
            "--skip-consent",
            "--lab",
            "Bench",
        ],
        None,
    )?;
    let field = |k: &str| {
        client
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("`latchkey client create --json` printed no {k}"))
    };
    Ok(Target {
        base: inst.base_url(),
        client_id: field("client_id")?,
        client_secret: field("client_secret")?,
    })
}

fn postgres(
    args: &Args,
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
    admin: &str,
) -> Result<()> {
    let name = fresh_db_name()?;
    let mut url = url::Url::parse(admin).context("--postgres is not a URL")?;
    url.set_path(&name);
    phase(&format!("PostgreSQL: creating database {name}"));
    rt.block_on(pg_admin(admin, &format!("CREATE DATABASE {name}")))?;
    let result = postgres_runs(args, bin, rt, report, url.to_string());
    phase(&format!("PostgreSQL: dropping database {name}"));
    let dropped = rt.block_on(pg_admin(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    ));
    result?;
    dropped
}

/// A new database name, `lk_bench_<16 hex digits>`.
fn fresh_db_name() -> Result<String> {
    Ok(format!(
        "lk_bench_{}",
        login::random_bytes(8)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

fn postgres_runs(
    args: &Args,
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
    url: String,
) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("latchkey-bench-pg-")
        .tempdir()?;
    let inst = Instance::new(bin, dir.path(), Some(url))?;
    phase("PostgreSQL: starting the server");
    let (server, first) = inst.start()?;
    report.row(
        "Start to ready, first start (PostgreSQL, creates keys)",
        fmt_ms(first),
        "",
        Verdict::None,
    );
    let target = provision(&inst)?;
    let mut tokens = Vec::new();
    top_up_tokens(rt, &target, args, &mut tokens)?;
    let mut memory = MemoryTrace::default();
    memory.after(&server, "logins")?;
    let auth = load::basic_auth(&target.client_id, &target.client_secret);
    token_endpoint(
        &Phase {
            args,
            rt,
            server: &server,
            inst: &inst,
            auth: &auth,
            db: "PostgreSQL",
        },
        report,
        &mut memory,
        tokens,
        Targets {
            refresh: None,
            refresh_share: TARGET_REFRESH_SHARE_POSTGRES,
        },
    )?;
    memory.report(report, &server, "PostgreSQL")?;
    server.stop()
}

async fn pg_admin(url: &str, sql: &str) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", report::redact(url)))?;
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.context(sql.to_owned())?;
    drop(client);
    let _ = task.await;
    Ok(())
}
