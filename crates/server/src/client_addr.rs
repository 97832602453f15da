//! Who is calling, for the per-address login limit: the TCP peer, or, when the peer is one of the
//! operator's trusted proxies (the load balancers in front of provisio), the address those
//! proxies report in `X-Forwarded-For`. Without trusted proxies every login behind a load balancer
//! would come from the balancer's address and share one bucket.
//!
//! The header is read from the right: each proxy appends the address it was called from, so the
//! right-most entries are the ones the operator's own proxies wrote. The first entry that is not a
//! trusted proxy is the client; anything left of it was written by the client and is ignored.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// `trusted_proxies` in `[rate_limits]`: addresses (`10.0.0.7`) and networks (`10.0.0.0/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "trusted_proxies: {entry:?} is neither an address nor a network \
                             (10.0.0.7, 10.0.0.0/8, fd00::/8)"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The calling client's address: `peer` itself unless it is a trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Several header lines are one list, in order; walked from the right.
        let lines: Vec<_> = headers.get_all(FORWARDED_FOR).iter().collect();
        for line in lines.into_iter().rev() {
            let Ok(line) = line.to_str() else { return client };
            for hop in line.rsplit(',') {
                // An entry that is no address ends the walk: the last trusted hop is as far as
                // the chain can be believed.
                let Some(ip) = parse_hop(hop) else { return client };
                client = ip;
                if !self.trusts(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`203.0.113.7:4711`,
/// `[2001:db8::1]:443`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The key a per-address limit counts under: an IPv4 address, or an IPv6 address's /64, which
/// one subscriber usually holds whole (counting single IPv6 addresses would let one client take
/// a fresh bucket per request).
pub fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::{HeaderMap, HeaderValue};

    use super::{TrustedProxies, limit_key};

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::try_from(entries.iter().map(|e| (*e).to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_bytes(line).unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&[b"198.51.100.1"]);
        assert_eq!(trusted.client(ip("203.0.113.9"), &headers), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.10"]);
        let peer = ip("10.1.2.3");
        // One balancer: it appended the client.
        assert_eq!(trusted.client(peer, &forwarded(&[b"198.51.100.7"])), ip("198.51.100.7"));
        // Entries the client wrote itself, left of the real one, are ignored.
        let spoofed = forwarded(&[b"1.1.1.1, 2.2.2.2, 198.51.100.7"]);
        assert_eq!(trusted.client(peer, &spoofed), ip("198.51.100.7"));
        // Two trusted hops (a CDN edge, then the balancer), on two header lines.
        let chain = forwarded(&[b"6.6.6.6, 198.51.100.7", b"192.0.2.10"]);
        assert_eq!(trusted.client(peer, &chain), ip("198.51.100.7"));
        // No header: the proxy itself (a health check).
        assert_eq!(trusted.client(peer, &HeaderMap::new()), peer);
        // Only trusted hops: the left-most.
        assert_eq!(trusted.client(peer, &forwarded(&[b"10.9.9.9, 192.0.2.10"])), ip("10.9.9.9"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("::ffff:10.0.0.1");
        for (hop, client) in [
            (&b"203.0.113.7:4711"[..], "203.0.113.7"),
            (b"[2001:db8::1]:443", "2001:db8::1"),
            (b"[2001:db8::2]", "2001:db8::2"),
            (b" 2001:db8::3 ", "2001:db8::3"),
            (b"::ffff:198.51.100.2", "198.51.100.2"),
        ] {
            assert_eq!(trusted.client(peer, &forwarded(&[hop])), ip(client), "{hop:?}");
        }
        assert_eq!(trusted.client(ip("fd00::5"), &forwarded(&[b"2001:db8::9"])), ip("2001:db8::9"));
    }

    #[test]
    fn an_entry_that_is_no_address_stops_at_the_last_trusted_hop() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        assert_eq!(trusted.client(peer, &forwarded(&[b"unknown"])), peer);
        assert_eq!(
            trusted.client(peer, &forwarded(&[b"198.51.100.7, junk, 10.0.0.2"])),
            ip("10.0.0.2")
        );
        assert_eq!(trusted.client(peer, &forwarded(&[b"198.51.100.7", b"\xff"])), peer);
        assert_eq!(trusted.client(peer, &forwarded(&[b""])), peer);
    }

    #[test]
    fn the_config_takes_addresses_and_networks_and_names_a_bad_entry() {
        assert_eq!(proxies(&["10.0.0.7", "10.1.2.3/8"]), proxies(&["10.0.0.7/32", "10.0.0.0/8"]));
        let bad = TrustedProxies::try_from(vec!["10.0.0.0/33".to_string()]).unwrap_err();
        assert!(bad.contains("\"10.0.0.0/33\" is neither an address nor a network"), "{bad}");
        assert!(TrustedProxies::try_from(vec!["lb.internal".to_string()]).is_err());
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(limit_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::9")), limit_key(ip("2001:db8:1:2::")));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), limit_key(ip("2001:db8:1:2::1")));
    }
}
