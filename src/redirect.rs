//! HTTP redirect balancing: every request is answered with a redirect to one member
//! of the pool its Host maps to, chosen by the pool's policy from the same
//! snapshot, health and client as DNS answers.
//!
//! The client is the TCP peer, or the `X-Forwarded-For` address when the peer is a
//! trusted proxy (the rightmost address not itself a trusted proxy).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::config::{RedirectSettings, RedirectTarget};
use crate::metrics::{Metrics, RedirectLabels};
use crate::net;
use crate::policy::Scratch;
use crate::snapshot::{Selection, Snapshot};

#[derive(Clone)]
pub struct RedirectState {
    pub settings: Arc<ArcSwap<RedirectSettings>>,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: Metrics,
}

pub fn router(state: RedirectState) -> Router {
    Router::new().fallback(redirect).with_state(state)
}

/// The client address: the peer, or what trusted proxies say it is. Every
/// `X-Forwarded-For` line is part of one list (RFC 9110 5.3: several lines equal
/// one comma-joined line), walked from the right: the first address that is not a
/// trusted proxy is the client, so nothing a client writes before the proxy's
/// entries counts.
pub fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = net::canonical(peer);
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(&net::canonical(*a)));
    if !is_trusted(&peer) {
        return peer;
    }
    let lines: Vec<&str> = headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
    let mut client = peer;
    for part in lines.iter().rev().flat_map(|line| line.split(',').rev()) {
        match part.trim().parse::<IpAddr>() {
            Ok(a) if is_trusted(&a) => client = a,
            Ok(a) => return net::canonical(a),
            Err(_) => return client,
        }
    }
    client
}

async fn redirect(
    State(st): State<RedirectState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let settings = st.settings.load();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| strip_port(h).trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default();
    let Some(target) = settings.hosts.get(&host) else {
        return plain(StatusCode::NOT_FOUND, format!("no pool for host {host:?}\n"));
    };
    let client = client_of(peer.ip(), &headers, &settings.trusted_proxies);
    let (status, resp) = answer(&st, target, client, &uri);
    st.metrics
        .redirects
        .get_or_create(&RedirectLabels { pool: target.pool.to_ascii(), status: status.as_u16().to_string() })
        .inc();
    resp
}

fn answer(st: &RedirectState, target: &RedirectTarget, client: IpAddr, uri: &Uri) -> (StatusCode, Response) {
    let snap = st.snapshot.load();
    let Some(pool) = snap.pools.iter().find(|p| p.def.name == target.pool) else {
        return (StatusCode::NOT_FOUND, plain(StatusCode::NOT_FOUND, format!("no pool {}\n", target.pool)));
    };
    // The client's own family when the pool has members of it, else the other.
    let want = usize::from(client.is_ipv6());
    let f = if pool.family[want].all.is_empty() { 1 - want } else { want };
    let mut scratch = Scratch::new(fastrand::u64(..));
    let mut order = Vec::new();
    // A redirect names one address: order only the first member.
    let (selection, _, _) = pool.select(f, client, snap.geoip.as_deref(), 1, &mut scratch, &mut order);
    let chosen = match selection {
        Selection::Members => order.first().and_then(|&i| pool.members.get(i as usize)).map(|m| m.address),
        Selection::Fallback => pool.family[f].fallback_addrs.first().copied(),
        Selection::NoData | Selection::ServFail => None,
    };
    let Some(addr) = chosen else {
        let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, format!("no server of {} is available\n", target.pool));
        let retry = pool.def.ttl.max(1).to_string();
        if let Ok(v) = header::HeaderValue::from_str(&retry) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return (StatusCode::SERVICE_UNAVAILABLE, r);
    };
    let host = match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let port = target.port.map(|p| format!(":{p}")).unwrap_or_default();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // `*` (asterisk-form, meant for OPTIONS) or anything else not starting with a
    // slash would be glued to the host of the Location.
    if !path.starts_with('/') {
        return (StatusCode::BAD_REQUEST, plain(StatusCode::BAD_REQUEST, format!("bad request target {path:?}\n")));
    }
    let location = format!("{}://{host}{port}{path}", target.scheme);
    let status = StatusCode::from_u16(target.status).unwrap_or(StatusCode::FOUND);
    let Ok(loc) = header::HeaderValue::from_str(&location) else {
        return (StatusCode::BAD_REQUEST, plain(StatusCode::BAD_REQUEST, "bad request path\n".into()));
    };
    let mut r = plain(status, format!("{} {location}\n", status.canonical_reason().unwrap_or("Redirect")));
    r.headers_mut().insert(header::LOCATION, loc);
    (status, r)
}

fn plain(status: StatusCode, body: String) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store"), (header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
        .into_response()
}

/// "host:port" or "[v6]:port" -> host.
fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') => host,
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let peer_trusted: IpAddr = "10.0.0.1".parse().unwrap();
        let peer_other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_of(peer_trusted, &h, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_of(peer_other, &h, &trusted), peer_other);
        assert_eq!(client_of(peer_trusted, &HeaderMap::new(), &trusted), peer_trusted);
    }

    #[test]
    fn forwarded_for_lines_are_one_list_walked_from_the_right() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        // The client's own line first, then the proxy's.
        h.append("x-forwarded-for", "203.0.113.66".parse().unwrap());
        h.append("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_of(peer, &h, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn host_without_port() {
        assert_eq!(strip_port("www.example.test:8080"), "www.example.test");
        assert_eq!(strip_port("www.example.test"), "www.example.test");
        assert_eq!(strip_port("[2001:db8::1]:80"), "2001:db8::1");
    }
}
