//! The lean load generator for `/token`, `/userinfo` and `/introspect`: hyper 1's low-level HTTP/1.1 client, one keep-alive
//! connection per task, requests sent one after another on each connection (closed loop). It
//! runs on the caller's current-thread runtime, so the generator uses at most one core and the
//! rest of the machine is left to the server.

use crate::stats::Latencies;
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What each request asks for.
pub enum Grant {
    /// `grant_type=client_credentials`: stateless, every request is the same.
    ClientCredentials,
    /// `grant_type=refresh_token`: one refresh-token chain per connection, each response's new
    /// token used for the next request.
    Refresh(Vec<String>),
    /// `GET /userinfo` with `Authorization: Bearer`: one access token per connection, sent
    /// again and again (a resource server asking about the token it was given).
    UserInfo(Vec<String>),
    /// `POST /introspect` (`token=`, the client's Basic authentication): one access token per
    /// connection, sent again and again.
    Introspect(Vec<String>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClientCredentials,
    Refresh,
    UserInfo,
    Introspect,
}

pub struct LoadRun {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Connections that stopped early (transport error, or a broken refresh chain).
    pub dead_connections: usize,
}

impl LoadRun {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// HTTP Basic client authentication (RFC 6749 section 2.3.1: both parts form-urlencoded).
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
    )
}

/// Opens `connections` connections, then runs `grant` requests on all of them for `duration`.
pub async fn run(
    addr: SocketAddr,
    auth: &str,
    connections: usize,
    duration: Duration,
    grant: Grant,
) -> Result<LoadRun> {
    let (kind, mut tokens) = match grant {
        Grant::ClientCredentials => (Kind::ClientCredentials, Vec::new()),
        Grant::Refresh(t) => (Kind::Refresh, t),
        Grant::UserInfo(t) => (Kind::UserInfo, t),
        Grant::Introspect(t) => (Kind::Introspect, t),
    };
    anyhow::ensure!(
        kind == Kind::ClientCredentials || tokens.len() >= connections,
        "{} tokens for {connections} connections",
        tokens.len()
    );
    // Connect everything first, so that connection set-up is not part of the measurement.
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await?);
    }
    let common = Common {
        host: HeaderValue::from_str(&addr.to_string())?,
        auth: HeaderValue::from_str(auth)?,
        form: HeaderValue::from_static("application/x-www-form-urlencoded"),
    };
    let started = Instant::now();
    let deadline = started + duration;
    let mut set = tokio::task::JoinSet::new();
    for sender in senders {
        let token = tokens.pop();
        let common = common.clone();
        set.spawn(connection(sender, common, kind, token, deadline));
    }
    let mut total = LoadRun {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Latencies::new()?,
        dead_connections: 0,
    };
    while let Some(joined) = set.join_next().await {
        let c = joined.context("load task panicked")??;
        total.ok += c.ok;
        total.errors += c.errors;
        total.first_error = total.first_error.or(c.first_error);
        total.latencies.add(&c.latencies)?;
        total.dead_connections += usize::from(c.died);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[derive(Clone)]
struct Common {
    host: HeaderValue,
    auth: HeaderValue,
    form: HeaderValue,
}

struct ConnRun {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Latencies,
    died: bool,
}

/// One keep-alive HTTP/1.1 connection to `addr`, driven by a task on the current runtime.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    // Drives the connection; ends when the sender is dropped or the server closes it.
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection(
    mut sender: SendRequest<Full<Bytes>>,
    common: Common,
    kind: Kind,
    mut token: Option<String>,
    deadline: Instant,
) -> Result<ConnRun> {
    const CLIENT_CREDENTIALS: &[u8] = b"grant_type=client_credentials";
    let mut run = ConnRun {
        ok: 0,
        errors: 0,
        first_error: None,
        latencies: Latencies::new()?,
        died: false,
    };
    let fail = |run: &mut ConnRun, why: String| {
        run.errors += 1;
        if run.first_error.is_none() {
            run.first_error = Some(why);
        }
    };
    while Instant::now() < deadline {
        let enc = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
        let t = token.as_deref().unwrap_or("");
        let mut req = match kind {
            Kind::ClientCredentials => {
                Request::post("/token").body(Full::new(Bytes::from_static(CLIENT_CREDENTIALS)))?
            }
            Kind::Refresh => Request::post("/token").body(Full::new(Bytes::from(format!(
                "grant_type=refresh_token&refresh_token={}",
                enc(t)
            ))))?,
            Kind::Introspect => Request::post("/introspect")
                .body(Full::new(Bytes::from(format!("token={}", enc(t)))))?,
            Kind::UserInfo => Request::get("/userinfo").body(Full::new(Bytes::new()))?,
        };
        let h = req.headers_mut();
        h.insert(HOST, common.host.clone());
        if kind == Kind::UserInfo {
            h.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}"))?,
            );
        } else {
            h.insert(AUTHORIZATION, common.auth.clone());
            h.insert(CONTENT_TYPE, common.form.clone());
        }

        let t0 = Instant::now();
        let answer = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        let elapsed = t0.elapsed();
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                fail(&mut run, format!("transport: {e:#}"));
                run.died = true;
                break;
            }
        };
        if status != 200 {
            fail(
                &mut run,
                format!("{status}: {}", String::from_utf8_lossy(&body)),
            );
            if kind == Kind::Refresh {
                // The chain is broken (the token may or may not have rotated): stop here.
                run.died = true;
                break;
            }
            continue;
        }
        match kind {
            Kind::Refresh => {
                let next = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("refresh_token")?.as_str().map(str::to_owned));
                match next {
                    Some(t) => token = Some(t),
                    None => {
                        fail(
                            &mut run,
                            format!(
                                "200 without a refresh_token: {}",
                                String::from_utf8_lossy(&body)
                            ),
                        );
                        run.died = true;
                        break;
                    }
                }
            }
            // A read path answers 200 for an inactive token too: count only real answers.
            Kind::UserInfo | Kind::Introspect => {
                // A substring test, not a JSON parse: the generator must stay cheap.
                let needle: &[u8] = match kind {
                    Kind::UserInfo => b"\"sub\":",
                    _ => b"\"active\":true",
                };
                let real = body.windows(needle.len()).any(|w| w == needle);
                if !real {
                    fail(
                        &mut run,
                        format!("200 but {}", String::from_utf8_lossy(&body)),
                    );
                    continue;
                }
            }
            Kind::ClientCredentials => {}
        }
        run.ok += 1;
        run.latencies.record(elapsed);
    }
    Ok(run)
}

/// Checks the server answers a grant at all before a timed run (clear error instead of a
/// table full of failures).
pub async fn probe(addr: SocketAddr, auth: &str) -> Result<()> {
    let run = run(
        addr,
        auth,
        1,
        Duration::from_millis(100),
        Grant::ClientCredentials,
    )
    .await?;
    if run.ok == 0 {
        return Err(anyhow!(
            "client_credentials grant fails: {}",
            run.first_error.unwrap_or_else(|| "no answer".into())
        ));
    }
    Ok(())
}
