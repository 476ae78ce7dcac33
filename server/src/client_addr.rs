//! The address a request came from: the peer's, or, when the peer is a trusted reverse proxy, the
//! address that proxy reports in `X-Forwarded-For`. The header is never believed from anyone else:
//! a client could name any address and so escape every per-address limit.

use crate::AppState;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

/// The reverse proxies whose `X-Forwarded-For` is believed (`LIVEDASH_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.7`) and ranges (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let net = |entry: &String| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{entry:?} is neither an address nor a CIDR range"))
        };
        list.iter().map(net).collect::<Result<_, _>>().map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`. Each proxy appends the address it heard from, so the header is
    /// read from the right, past the proxies we trust; the first address we do not trust is the
    /// client (an address further left could have been written by the client itself).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        let mut client = peer;
        for hop in hops.iter().rev().flat_map(|value| value.rsplit(',')) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// The client's address as [`TrustedProxies::client`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Ok(ClientAddr(state.proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("203.0.113.9"), &headers(&["1.2.3.4"])), ip("203.0.113.9"));
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        assert_eq!(proxies.client(ip("198.51.100.1"), &headers(&["1.2.3.4"])), ip("198.51.100.1"), "not a proxy");
        assert_eq!(proxies.client(ip("10.1.2.3"), &headers(&["1.2.3.4"])), ip("1.2.3.4"));
        assert_eq!(proxies.client(ip("10.1.2.3"), &headers(&[])), ip("10.1.2.3"), "no header: the proxy itself");
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let forged = headers(&["6.6.6.6, 1.2.3.4, 192.0.2.1"]);
        assert_eq!(proxies.client(ip("10.0.0.5"), &forged), ip("1.2.3.4"), "what the client wrote is ignored");
        let split = headers(&["6.6.6.6", "1.2.3.4, 10.9.9.9"]);
        assert_eq!(proxies.client(ip("10.0.0.5"), &split), ip("1.2.3.4"), "several header lines are one list");
        let junk = headers(&["bogus, 10.9.9.9"]);
        assert_eq!(proxies.client(ip("10.0.0.5"), &junk), ip("10.9.9.9"), "stops at what it cannot read");
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["fd00::/8".into(), "::1".into()]).is_ok());
    }
}
