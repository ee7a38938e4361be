//! The target guard: outgoing requests must not reach the hub's own network
//! (loopback, private, link-local, cloud metadata, ...), including the IPv4 addresses
//! hidden in IPv4-mapped, NAT64 and 6to4 IPv6 forms. Names are resolved here and the
//! connection goes to the very addresses that were checked (no second lookup a DNS
//! rebinding could change). `delivery.allow_private_targets = true` lifts it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_tls::connect::Resolve;
use futures_util::future::LocalBoxFuture;

/// Why an address may not be a delivery target, or `None` when it may.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else if o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || ip.is_documentation()
    {
        Some("reserved")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_reason(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    // 6to4 (2002::/16) carries one in bits 16..48.
    if s[0] == 0x2002 {
        return v4_reason(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    // IPv4-compatible (::/96, deprecated) still routes to its IPv4 address on some hosts.
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return Some("reserved (IPv4-compatible)");
    }
    // NAT64 local use (64:ff9b:1::/48) and Teredo (2001::/32) reach IPv4 networks this
    // host's operator chose; site-local (fec0::/10) is deprecated but still private.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("reserved (local NAT64)");
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some("reserved (Teredo)");
    }
    if (s[0] & 0xffc0) == 0xfec0 {
        return Some("private (site-local)");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud metadata");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("private (unique local)");
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Some("link-local");
    }
    if (s[0] & 0xff00) == 0xff00 {
        return Some("multicast");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("reserved (documentation)");
    }
    None
}

/// A target the guard refuses: one of the addresses its name resolves to is private.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused: target {host} resolves to {ip} ({reason}); set delivery.allow_private_targets = true to allow private targets"
)]
pub struct TargetRefused {
    pub host: String,
    pub ip: IpAddr,
    /// Which kind of address it is (`loopback`, `private`, `cloud metadata`, ...).
    pub reason: &'static str,
}

/// Checks every address a name resolved to: one bad address refuses the target.
pub fn check_addrs(host: &str, addrs: &[SocketAddr]) -> Result<(), TargetRefused> {
    for a in addrs {
        if let Some(reason) = blocked_reason(a.ip()) {
            return Err(TargetRefused {
                host: host.to_string(),
                ip: a.ip(),
                reason,
            });
        }
    }
    Ok(())
}

/// How long a save waits for a target's name to resolve; past it, the send-time check
/// is left to decide.
const SAVE_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The save-time check of a URL the hub will fetch or post to, with the same rule as
/// the send-time one (`allow_private` is `delivery.allow_private_targets`): `Err` says
/// why the target would be refused. A templated URL (`{{` or `{%`) is only known when
/// it is rendered, and a name that does not resolve now may later; both are left to
/// the send-time check, which runs at every send anyway (DNS can change).
pub async fn check_target_url(url: &str, allow_private: bool) -> Result<(), TargetRefused> {
    if allow_private || url.contains("{{") || url.contains("{%") {
        return Ok(());
    }
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => vec![SocketAddr::new(IpAddr::V4(v4), port)],
        Some(url::Host::Ipv6(v6)) => vec![SocketAddr::new(IpAddr::V6(v6), port)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match actix_rt::time::timeout(SAVE_LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.collect(),
                _ => return Ok(()),
            }
        }
        None => return Ok(()),
    };
    let host = parsed.host_str().unwrap_or_default();
    check_addrs(host, &addrs)
}

/// The resolver awc uses: resolves, checks, and hands back only checked addresses.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<SocketAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
                vec![SocketAddr::new(ip, port)]
            } else {
                tokio::net::lookup_host((bare, port)).await?.collect()
            };
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            if !self.allow_private {
                check_addrs(host, &addrs)?;
            }
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Option<&'static str> {
        blocked_reason(s.parse().unwrap())
    }

    #[test]
    fn blocks_internal_addresses_in_every_form() {
        assert_eq!(r("127.0.0.1"), Some("loopback"));
        assert_eq!(r("10.1.2.3"), Some("private"));
        assert_eq!(r("192.168.0.1"), Some("private"));
        assert_eq!(r("172.16.5.4"), Some("private"));
        assert_eq!(r("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(r("169.254.1.1"), Some("link-local"));
        assert_eq!(r("0.0.0.0"), Some("unspecified"));
        assert_eq!(r("100.64.0.1"), Some("shared (carrier-grade NAT)"));
        assert_eq!(r("::1"), Some("loopback"));
        assert_eq!(r("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(r("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(r("::127.0.0.1"), Some("reserved (IPv4-compatible)"));
        assert_eq!(r("64:ff9b:1::a00:1"), Some("reserved (local NAT64)"));
        assert_eq!(r("2001:0:4136:e378::1"), Some("reserved (Teredo)"));
        assert_eq!(r("fec0::1"), Some("private (site-local)"));
        assert_eq!(r("64:ff9b::a9fe:a9fe"), Some("cloud metadata"));
        assert_eq!(r("2002:7f00:0001::"), Some("loopback"));
        assert_eq!(r("fd00:ec2::254"), Some("cloud metadata"));
        assert_eq!(r("fe80::1"), Some("link-local"));
        assert_eq!(r("fc00::1"), Some("private (unique local)"));
    }

    #[test]
    fn allows_public_addresses() {
        assert_eq!(r("93.184.216.34"), None);
        assert_eq!(r("2606:4700::1111"), None);
        assert_eq!(r("64:ff9b::5db8:d822"), None);
    }
}
