//! What the start-up checks need to know about this host: its name, what that name resolves to,
//! and a resolver for the names in `--zk` / `--master`. Gathered once by the binary; tests pass
//! made-up facts so the checks stay pure.

use std::net::{IpAddr, ToSocketAddrs};

pub struct HostFacts<'a> {
    /// What `hostname` prints.
    pub hostname: String,
    /// The addresses `hostname` resolves to (often only 127.0.1.1 on a fresh Debian install).
    pub hostname_addresses: Vec<IpAddr>,
    /// Resolves a name from a flag; an empty answer means "unknown", never "loopback".
    pub resolve: &'a dyn Fn(&str) -> Vec<IpAddr>,
}

impl HostFacts<'static> {
    /// The facts of the machine this process runs on.
    pub fn of_this_host() -> HostFacts<'static> {
        let hostname = own_hostname().unwrap_or_default();
        let hostname_addresses = if hostname.is_empty() {
            Vec::new()
        } else {
            resolve(&hostname)
        };
        HostFacts {
            hostname,
            hostname_addresses,
            resolve: &resolve,
        }
    }
}

/// The system resolver (`/etc/hosts`, DNS).
pub fn resolve(name: &str) -> Vec<IpAddr> {
    match (name, 0).to_socket_addrs() {
        Ok(addresses) => addresses.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

fn own_hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    std::str::from_utf8(&buffer[..end]).ok().map(str::to_string)
}

impl HostFacts<'_> {
    /// The first non-loopback IPv4 address the host name resolves to: what a master binds and
    /// publishes without `--ip` (Mesos' default), and what the start-up checks predict.
    pub fn own_ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.hostname_addresses.iter().find_map(|a| match a {
            IpAddr::V4(v4) if !v4.is_loopback() => Some(*v4),
            _ => None,
        })
    }

    /// Whether `host` (a name or an address) is known to be another machine: a non-loopback
    /// address, or a name that resolves to one. `localhost` and unresolvable names are not.
    pub fn is_remote(&self, host: &str) -> bool {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
            return false;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => !ip.is_loopback() && !ip.is_unspecified(),
            Err(_) => (self.resolve)(host)
                .iter()
                .any(|ip| !ip.is_loopback() && !ip.is_unspecified()),
        }
    }

    /// Whether `host` names this machine's loopback interface only (`localhost`, `127.0.0.1`, a
    /// name that resolves only to loopback addresses).
    pub fn is_loopback(&self, host: &str) -> bool {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => {
                let addresses = (self.resolve)(host);
                !addresses.is_empty() && addresses.iter().all(IpAddr::is_loopback)
            }
        }
    }
}
