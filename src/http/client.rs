//! Who the client is: the socket's peer, or, when that peer is a trusted
//! proxy, the address it names in `X-Forwarded-For`.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

/// The client's address. Untrusted peers are the client, whatever they
/// send. A trusted proxy's `X-Forwarded-For` is read from the right (each
/// proxy appends the address it saw): the first address that is not a
/// trusted proxy itself is the client. A header that is missing or holds
/// only proxies leaves the peer's own address.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let h = xff("198.51.100.1, 10.0.0.7");
        assert_eq!(
            client_ip(&h, proxy, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(&h, stranger, &trusted),
            stranger,
            "a stranger's header is ignored"
        );
        // A client cannot pass as another by prepending: the rightmost
        // untrusted address counts.
        let spoofed = xff("1.2.3.4, 198.51.100.1");
        assert_eq!(
            client_ip(&spoofed, proxy, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(&HeaderMap::new(), proxy, &trusted), proxy);
        assert_eq!(client_ip(&xff("garbage"), proxy, &trusted), proxy);
        assert_eq!(client_ip(&h, proxy, &[]), proxy, "no trusted proxies");
    }
}
