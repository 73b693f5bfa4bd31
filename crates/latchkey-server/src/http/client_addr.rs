//! Who is asking: the client's address, taken from the configured forwarding header
//! (`X-Forwarded-For`, or `Forwarded` of RFC 7239: `[proxy] header`) only when the TCP peer is
//! a trusted proxy (`[proxy] trusted`), and the user agent. The sign-in throttle budgets per
//! address and the audit log records both. Only the configured header is read: a proxy passes
//! the other through unchanged, so it says whatever the client wrote.
//!
//! The header is read from the right: each hop a trusted proxy appended is skipped, and the
//! first address that is not a trusted proxy is the client. Anything the client itself wrote
//! into the header stays to the left of it and is never believed.

use crate::config::ForwardedHeader;
use crate::signin::Requester;
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

/// The longest user agent kept (audit entries stay small; the rest is cut).
const MAX_USER_AGENT: usize = 256;

/// Who sent the request: client address, user agent and the known-device cookie, if any.
pub fn requester(state: &AppState, req: &HttpRequest) -> Requester {
    let peer = req.peer_addr().map(|a| a.ip());
    let proxy = &state.config.proxy;
    let ip = client_ip(&proxy.trusted, proxy.header, peer, req.headers());
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT)
                .collect()
        })
        .unwrap_or_default();
    let device = req
        .cookie(super::cookies::device_cookie_name(state))
        .map(|c| c.value().to_owned());
    Requester {
        ip,
        user_agent,
        device,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn trusted_hop(trusted: &[IpNet], ip: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost
/// address in the forwarding header `which` that is not itself a trusted proxy. A header that
/// cannot be read leaves the last trusted hop as the client (never an address the client
/// chose).
pub fn client_ip(
    trusted: &[IpNet],
    which: ForwardedHeader,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> IpAddr {
    let Some(peer) = peer.map(canonical) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !trusted_hop(trusted, peer) {
        return peer;
    }
    let hops = match which {
        ForwardedHeader::Forwarded => forwarded_hops(headers),
        ForwardedHeader::XForwardedFor => x_forwarded_for_hops(headers),
    };
    let Some(hops) = hops else {
        return peer;
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else {
            // `unknown`, an obfuscated name or garbage: nothing further left can be trusted.
            return client;
        };
        client = canonical(*ip);
        if !trusted_hop(trusted, client) {
            return client;
        }
    }
    client
}

/// The `for=` addresses of every `Forwarded` element, in order; `None` when there is no such
/// header. An element without exactly one `for=`, or with a value that is not an address, is
/// `None`.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let elements = forwarded_elements(headers)?;
    Some(
        elements
            .iter()
            .map(|pairs| one_param(pairs, "for").and_then(parse_node))
            .collect(),
    )
}

/// The value of `name` in one `Forwarded` element, when it appears exactly once.
fn one_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = pairs.iter().filter(|(k, _)| k == name);
    let (_, v) = values.next()?;
    values.next().is_none().then_some(v.as_str())
}

/// Every `Forwarded` header line's elements, in order, each a list of (lower-case name,
/// value) pairs, quoted strings unquoted (RFC 7239 section 4: a `,` or `;` inside quotes
/// separates nothing). `None` when there is no such header.
fn forwarded_elements(headers: &HeaderMap) -> Option<Vec<Vec<(String, String)>>> {
    let lines: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut elements = Vec::new();
    for line in lines {
        let mut element = Vec::new();
        let (mut name, mut value) = (String::new(), String::new());
        let (mut in_value, mut quoted, mut escaped) = (false, false, false);
        let pair_done = |name: &mut String, value: &mut String, element: &mut Vec<_>| {
            if !name.trim().is_empty() {
                element.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            name.clear();
            value.clear();
        };
        for c in line.chars() {
            if quoted {
                match c {
                    _ if escaped => {
                        value.push(c);
                        escaped = false;
                    }
                    '\\' => escaped = true,
                    '"' => quoted = false,
                    _ => value.push(c),
                }
                continue;
            }
            match c {
                '"' if in_value => quoted = true,
                '=' if !in_value => in_value = true,
                ';' | ',' => {
                    pair_done(&mut name, &mut value, &mut element);
                    in_value = false;
                    if c == ',' {
                        elements.push(std::mem::take(&mut element));
                    }
                }
                _ if in_value => value.push(c),
                _ => name.push(c),
            }
        }
        pair_done(&mut name, &mut value, &mut element);
        elements.push(element);
    }
    Some(elements)
}

/// A `Forwarded` node (RFC 7239 section 6): `192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]"`
/// or `"[2001:db8::1]:80"`.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim_matches('"');
    // A bare address first: IPv6 without brackets (a proxy that writes `for=$remote_addr`)
    // would otherwise lose its last group as a "port".
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let host = match v.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => v,
    };
    host.parse().ok()
}

fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|h| {
                // An address, `[v6]`, or either with a port (some load balancers add it).
                let h = h.trim();
                h.parse()
                    .ok()
                    .or_else(|| h.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
                    .or_else(|| parse_node(h).filter(|_| h.starts_with('[')))
            })
            .collect(),
    )
}

/// True when the TCP peer is a trusted proxy that says the client reached it over HTTPS: the
/// `proto=` of the last `Forwarded` element (exactly one), or the last value of
/// `X-Forwarded-Proto` (the one the nearest proxy wrote), whichever goes with the configured
/// header. From anyone else, never.
pub fn proxied_https(
    trusted: &[IpNet],
    which: ForwardedHeader,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> bool {
    if !peer.is_some_and(|p| trusted_hop(trusted, canonical(p))) {
        return false;
    }
    let proto = match which {
        ForwardedHeader::Forwarded => forwarded_elements(headers)
            .and_then(|elements| elements.last().cloned())
            .and_then(|last| one_param(&last, "proto").map(str::to_owned)),
        ForwardedHeader::XForwardedFor => headers
            .get_all("x-forwarded-proto")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .map(|v| v.trim().to_owned()),
    };
    proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FWD: ForwardedHeader = ForwardedHeader::Forwarded;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        for which in [XFF, FWD] {
            assert_eq!(
                client_ip(&[], which, Some(ip("203.0.113.9")), &h),
                ip("203.0.113.9")
            );
            let trusted = nets(&["10.0.0.0/8"]);
            assert_eq!(
                client_ip(&trusted, which, Some(ip("203.0.113.9")), &h),
                ip("203.0.113.9")
            );
        }
    }

    #[test]
    fn only_the_configured_header_is_read_the_other_is_the_clients() {
        // nginx appends to X-Forwarded-For and passes the client's own Forwarded through.
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.5"),
            ("forwarded", "for=10.1.1.1"),
        ]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("127.0.0.1")), &h),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("127.0.0.1")), &h),
            ip("10.1.1.1")
        );
        // Without the configured header, the proxy itself is the client.
        let h = headers(&[("forwarded", "for=10.1.1.1")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("127.0.0.1")), &h),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn x_forwarded_for_entries_with_a_port_are_read() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("127.0.0.1")), &h),
            ip("198.51.100.7")
        );
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:5555")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("127.0.0.1")), &h),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_not_what_the_client_wrote() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client wrote 1.1.1.1 itself; its proxy appended the real address; a second
        // trusted proxy appended the first one.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("127.0.0.1")), &h),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("10.1.2.3")), &h),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_understands_ports_brackets_and_quotes() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=1.1.1.1, for=\"[2001:db8::1]:4711\";proto=https",
            ),
        ]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("2001:db8::1")
        );
        let h = headers(&[("forwarded", "for=\"2001:db8:8::1\"")]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("2001:db8:8::1"),
            "IPv6 without brackets keeps its last group"
        );
        let h = headers(&[("forwarded", "proto=https;For=\"192.0.2.60:8080\"")]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_one() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("forwarded", "for=1.1.1.1, for=unknown")]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("10.0.0.1")
        );
        let h = headers(&[("x-forwarded-for", "1.1.1.1, not-an-address")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("10.0.0.1")), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            client_ip(&trusted, XFF, Some(ip("::ffff:127.0.0.1")), &h),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn only_a_trusted_proxy_can_say_the_client_used_https() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-proto", "https"), ("forwarded", "proto=https")]);
        for which in [XFF, FWD] {
            assert!(proxied_https(&trusted, which, Some(ip("10.0.0.1")), &h));
            assert!(!proxied_https(&trusted, which, Some(ip("203.0.113.9")), &h));
            assert!(!proxied_https(&[], which, Some(ip("10.0.0.1")), &h));
        }
        // The nearest proxy's word counts, not what the client wrote before it.
        let h = headers(&[
            ("x-forwarded-proto", "https, http"),
            ("forwarded", "proto=https, for=1.2.3.4;proto=http"),
        ]);
        for which in [XFF, FWD] {
            assert!(!proxied_https(&trusted, which, Some(ip("10.0.0.1")), &h));
        }
        let h = headers(&[("forwarded", "for=1.2.3.4;proto=\"HTTPS\"")]);
        assert!(proxied_https(&trusted, FWD, Some(ip("10.0.0.1")), &h));
        assert!(!proxied_https(&trusted, XFF, Some(ip("10.0.0.1")), &h));
        // Separators inside quoted strings separate nothing; a repeated proto counts as none.
        for tricky in [
            r#"for=1.2.3.4;host="evil;proto=https";proto=http"#,
            r#"for="a,proto=https""#,
            "for=1.2.3.4;proto=https;proto=http",
            "for=1.2.3.4;proto=https;PROTO=https",
        ] {
            let h = headers(&[("forwarded", tricky)]);
            assert!(
                !proxied_https(&trusted, FWD, Some(ip("10.0.0.1")), &h),
                "{tricky}"
            );
        }
    }

    #[test]
    fn forwarded_quoted_strings_hide_their_separators() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client's quoted `for` holds a comma and an address: one hop, not two.
        let h = headers(&[(
            "forwarded",
            r#"for="1.1.1.1, for=9.9.9.9", for=198.51.100.7"#,
        )]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("198.51.100.7")
        );
        // Two `for` in one element: unreadable, so the last trusted hop is the client.
        let h = headers(&[("forwarded", "for=198.51.100.7;for=1.1.1.1")]);
        assert_eq!(
            client_ip(&trusted, FWD, Some(ip("10.0.0.1")), &h),
            ip("10.0.0.1")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn header_value() -> impl Strategy<Value = String> {
            "[ -~]{0,80}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// From a peer that is not a trusted proxy, no header changes the client's
            /// address or earns HSTS; from a trusted one, the answer is the peer or an
            /// address the header holds, never one made up; nothing panics.
            #[test]
            fn the_client_cannot_choose_its_address(
                xff in header_value(),
                fwd in header_value(),
                proto in header_value(),
                peer in any::<[u8; 4]>(),
            ) {
                let peer = IpAddr::from(peer);
                let h = headers(&[
                    ("x-forwarded-for", &xff),
                    ("forwarded", &fwd),
                    ("x-forwarded-proto", &proto),
                ]);
                let trusted = nets(&["10.0.0.0/8"]);
                let untrusted = !trusted_hop(&trusted, peer);
                for which in [XFF, FWD] {
                    let ip = client_ip(&trusted, which, Some(peer), &h);
                    if untrusted {
                        prop_assert_eq!(ip, peer);
                        prop_assert!(!proxied_https(&trusted, which, Some(peer), &h));
                    } else {
                        let s = ip.to_string();
                        prop_assert!(
                            ip == peer || xff.contains(&s) || fwd.contains(&s)
                                || xff.to_ascii_lowercase().contains(&s)
                                || fwd.to_ascii_lowercase().contains(&s)
                                || ip.is_ipv4() && (xff.contains("::ffff:") || fwd.contains("::ffff:")),
                            "{} from {:?} / {:?}", s, xff, fwd
                        );
                    }
                }
            }

            /// A list of real addresses behind a trusted proxy: the client is the rightmost
            /// one that is not a trusted proxy (or the leftmost, when all are), whatever the
            /// client wrote further left.
            #[test]
            fn the_rightmost_untrusted_hop_is_the_client(
                hops in proptest::collection::vec((any::<bool>(), any::<[u8; 3]>()), 1..6),
            ) {
                let ips: Vec<IpAddr> = hops
                    .iter()
                    .map(|(inside, b)| {
                        let first = if *inside { 10 } else { 198 };
                        IpAddr::from([first, b[0], b[1], b[2]])
                    })
                    .collect();
                let list = ips.iter().map(ToString::to_string).collect::<Vec<_>>();
                let trusted = nets(&["10.0.0.0/8"]);
                let want = ips
                    .iter()
                    .rev()
                    .find(|ip| !trusted_hop(&trusted, **ip))
                    .copied()
                    .unwrap_or(ips[0]);
                let xff = headers(&[("x-forwarded-for", &list.join(", "))]);
                let fwd_list = list.iter().map(|a| format!("for={a}")).collect::<Vec<_>>();
                let fwd = headers(&[("forwarded", &fwd_list.join(", "))]);
                let peer = Some(ip("10.0.0.1"));
                prop_assert_eq!(client_ip(&trusted, XFF, peer, &xff), want);
                prop_assert_eq!(client_ip(&trusted, FWD, peer, &fwd), want);
            }
        }
    }
}
