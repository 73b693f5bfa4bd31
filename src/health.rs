//! `latchkey health`: asks a running service whether it is ready (`GET /ready`), or only alive
//! (`--live`, `GET /health`), and exits 0 or 1. Container images without a shell or curl use it
//! as their health check (`deploy/Dockerfile`).

use latchkey_server::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The URL of this configuration's own listener: `bind`, with a wildcard address replaced by
/// loopback, over HTTPS when `tls.cert_file` is set.
pub fn own_url(config: &Config, live: bool) -> String {
    let ip = match config.bind.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    let addr = std::net::SocketAddr::new(ip, config.bind.port());
    let path = if live { "/health" } else { "/ready" };
    format!("{scheme}://{addr}{path}")
}

pub async fn check(config: &Config, url: Option<String>, live: bool) -> anyhow::Result<()> {
    let url = url.unwrap_or_else(|| own_url(config, live));
    let parsed = url::Url::parse(&url).map_err(|e| anyhow::anyhow!("--url `{url}`: {e}"))?;
    // The node's own certificate names its public host, not the loopback address the probe
    // uses: on loopback, the probe checks that the node answers, not who it is. Nothing secret
    // is sent.
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .danger_accept_invalid_certs(loopback)
        .build()?;
    let r = http
        .get(parsed)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} does not answer: {e}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status.is_success() {
        crate::stdout_line(&format!("{url}: {}", body.trim()))
    } else {
        anyhow::bail!("{url} answered {status}: {}", body.trim())
    }
}
