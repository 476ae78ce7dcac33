//! The address a request came from: the peer's, or, when the peer is a trusted reverse proxy, the
//! address that proxy reports in `X-Forwarded-For`. The header is never believed from anyone else:
//! a client could name any address and so escape every per-address limit.
//!
//! Addresses are canonical: on a dual-stack listener an IPv4 peer arrives as `::ffff:a.b.c.d`,
//! which is turned back into `a.b.c.d` before anything compares it. Limits key on a [`Source`]: an
//! IPv4 address, or the /64 an IPv6 address is in (one subscriber line gets a whole /64, so keying
//! on the full address would give an attacker unlimited buckets).

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
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

    /// One hop of `X-Forwarded-For`: an address, or an address with a port (`1.2.3.4:5678`,
    /// `[2001:db8::1]:443`), as some proxies write it.
    fn hop(text: &str) -> Option<IpAddr> {
        let text = text.trim();
        let ip = text.parse::<IpAddr>().ok().or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))?;
        Some(ip.to_canonical())
    }

    /// The client behind `peer`. Each proxy appends the address it heard from, so the header is
    /// read from the right, past the proxies we trust; the first address we do not trust is the
    /// client (an address further left could have been written by the client itself).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        let mut client = peer;
        for hop in hops.iter().rev().flat_map(|value| value.rsplit(',')) {
            match Self::hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// What per-address limits key on: an IPv4 address, or an IPv6 address's /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(prefix.into()))
            }
            v4 => Source(v4),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(prefix) => write!(f, "{prefix}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// The client's address as [`TrustedProxies::client`] finds it (canonical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// What limits on this client key on.
    pub fn source(self) -> Source {
        Source::of(self.0)
    }
}

/// Any state that knows the trusted proxies can tell a request's client (the server's is
/// `AppState`): this module needs nothing else of it.
impl<S> FromRequestParts<S> for ClientAddr
where
    Arc<TrustedProxies>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Ok(ClientAddr(Arc::<TrustedProxies>::from_ref(state).client(peer, &parts.headers)))
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

    #[test]
    fn an_ipv4_peer_on_a_dual_stack_listener_is_an_ipv4_address() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let mapped = ip("::ffff:10.0.0.5");
        assert_eq!(proxies.client(mapped, &headers(&["1.2.3.4"])), ip("1.2.3.4"), "the proxy is trusted");
        assert_eq!(TrustedProxies::default().client(ip("::ffff:203.0.113.9"), &headers(&[])), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("10.0.0.5"), &headers(&["::ffff:1.2.3.4"])), ip("1.2.3.4"), "hops too");
    }

    #[test]
    fn hops_with_ports_name_their_address() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(proxies.client(ip("10.0.0.5"), &headers(&["1.2.3.4:5678"])), ip("1.2.3.4"));
        assert_eq!(proxies.client(ip("10.0.0.5"), &headers(&["[2001:db8::7]:443"])), ip("2001:db8::7"));
        assert_eq!(proxies.client(ip("10.0.0.5"), &headers(&["6.6.6.6, 1.2.3.4:80, 10.1.1.1:9"])), ip("1.2.3.4"));
    }

    #[test]
    fn limits_key_on_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(Source::of(ip("2001:db8:1:2:aaaa::1")), Source::of(ip("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:3::1")));
        assert_ne!(Source::of(ip("192.0.2.1")), Source::of(ip("192.0.2.2")));
        assert_eq!(Source::of(ip("::ffff:192.0.2.1")), Source::of(ip("192.0.2.1")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
        assert_eq!(Source::of(ip("192.0.2.1")).to_string(), "192.0.2.1");
    }
}
