//! Network vocabulary shared by the inbound and outbound sides and the config: IP
//! addresses and ranges (allowlists, trusted proxies) and how HTTP header names are
//! written when a request or response is copied into an event. A leaf.

use std::net::IpAddr;

use ipnet::IpNet;

/// Text that names no address or range; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range")]
pub struct NotANet(pub String);

/// Parses one address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
pub fn parse_net(s: &str) -> Result<IpNet, NotANet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| NotANet(s.to_string()))
}

/// How copied request header names are written in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    Capitalized,
    Downcased,
    Snakecased,
    Raw,
}

impl HeaderStyle {
    pub fn apply(self, name: &str) -> String {
        match self {
            HeaderStyle::Capitalized => name
                .split(['-', '_'])
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f
                            .to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<String>>()
                .join("-"),
            HeaderStyle::Downcased => name.to_lowercase().replace('_', "-"),
            HeaderStyle::Snakecased => name.to_lowercase().replace('-', "_"),
            HeaderStyle::Raw => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_ranges() {
        assert_eq!(
            parse_net(" 10.1.2.3/8 ").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_net("192.0.2.7").map(|n| n.to_string()),
            Ok("192.0.2.7/32".into())
        );
        assert!(parse_net("nope").is_err());
    }

    #[test]
    fn header_styles() {
        assert_eq!(
            HeaderStyle::Capitalized.apply("x-request_id"),
            "X-Request-Id"
        );
        assert_eq!(
            HeaderStyle::Snakecased.apply("X-Request-Id"),
            "x_request_id"
        );
    }
}
