//! Dialling a server an agent talks to over its own protocol (imap_folder, jabber):
//! the name is resolved once, internal addresses are refused unless the operator
//! allows them, and the very addresses checked are dialled, each in turn.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::delivery::guard::{TargetRefused, check_addrs};

/// How long connecting (name lookup included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why no connection to the server was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} has no addresses")]
    NoAddresses(String),
    /// The target guard refused an address the name resolved to.
    #[error(transparent)]
    Refused(#[from] TargetRefused),
    /// Every address refused the connection; the last one's error.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {host}:{port} timed out")]
    Timeout { host: String, port: u16 },
}

/// Resolves `host`, refuses internal addresses unless allowed, and dials the checked
/// addresses in turn.
pub async fn connect(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<tokio::net::TcpStream, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let dial = async {
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|source| ConnectError::Resolve {
                    host: host.to_string(),
                    source,
                })?
                .collect(),
        };
        if !allow_private {
            check_addrs(host, &addrs)?;
        }
        let mut last = ConnectError::NoAddresses(host.to_string());
        for a in &addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(source) => last = ConnectError::Connect { addr: *a, source },
            }
        }
        Err(last)
    };
    actix_rt::time::timeout(CONNECT_TIMEOUT, dial)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout {
                host: host.to_string(),
                port,
            })
        })
}
