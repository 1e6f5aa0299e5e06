//! Start-up checks: flag combinations that would be ignored silently, and the classic
//! misconfigurations of a new cluster, each refused with the fix in one line. `check` is pure (the
//! host's facts come in as `HostFacts`); `check_work_dir` touches the disk.

use crate::host::HostFacts;
use crate::{ConfigError, Resolved, Role};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// A place operators recognise for `--work_dir` (the packages' default).
pub const WORK_DIR_EXAMPLE: &str = "/var/lib/mesos";

/// Checks what the sources set for `resolved.role`.
pub fn check(resolved: &Resolved, host: &HostFacts) -> Result<(), ConfigError> {
    match resolved.role {
        Role::Master => master(resolved, host),
        Role::Agent => agent(resolved, host),
        Role::Marathon => marathon(resolved, host),
    }
}

/// The ZooKeeper servers of a `zk://[user:pass@]host:port,.../path` URL, as `host:port`.
pub fn zk_servers(url: &str) -> Vec<String> {
    let Some(rest) = url.trim().strip_prefix("zk://") else {
        return Vec::new();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    hosts
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn host_of(server: &str) -> &str {
    server.rsplit_once(':').map_or(server, |(host, _)| host)
}

/// The first ZooKeeper server of `url` that is another machine.
fn remote_zk_server(url: &str, host: &HostFacts) -> Option<String> {
    zk_servers(url)
        .into_iter()
        .find(|s| host.is_remote(host_of(s)))
}

/// How a process reaches others: "to other hosts through ZooKeeper at 10.0.0.5:2181" or "to the
/// master at 10.0.0.11:5050".
fn remote_peer(master_or_zk: &str, host: &HostFacts) -> Option<String> {
    if master_or_zk.trim().starts_with("zk://") {
        remote_zk_server(master_or_zk, host)
            .map(|s| format!("to other hosts through ZooKeeper at {s}"))
    } else if host.is_remote(host_of(master_or_zk.trim())) {
        Some(format!("to the master at {}", master_or_zk.trim()))
    } else {
        None
    }
}

fn ip(value: Option<&str>) -> Option<IpAddr> {
    value.and_then(|v| v.trim().parse().ok())
}

/// The address the master publishes, as `MasterFlags::validate` picks it, and why.
fn master_advertised(r: &Resolved, host: &HostFacts) -> (IpAddr, &'static str, String) {
    if let Some(address) = ip(r.get("advertise_ip")) {
        return (address, "advertise_ip", String::new());
    }
    match ip(r.get("ip")) {
        Some(address) if address.is_unspecified() => (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "ip",
            format!(" (--ip={address} publishes the loopback address)"),
        ),
        Some(address) => (address, "ip", String::new()),
        None => {
            let (address, why) = default_ip(host);
            (
                address,
                "ip",
                why.map(|w| format!(" ({w})")).unwrap_or_default(),
            )
        }
    }
}

/// The address a master or agent binds and publishes without `--ip` (Mesos' default: the first
/// non-loopback IPv4 address the host name resolves to, else 127.0.0.1), and why it is loopback.
fn default_ip(host: &HostFacts) -> (IpAddr, Option<String>) {
    if let Some(address) = host.own_ipv4() {
        return (IpAddr::V4(address), None);
    }
    let resolved: Vec<String> = host
        .hostname_addresses
        .iter()
        .map(IpAddr::to_string)
        .collect();
    let why = if resolved.is_empty() {
        format!("`{}` does not resolve", host.hostname)
    } else {
        format!(
            "`{}` resolves only to {}",
            host.hostname,
            resolved.join(", ")
        )
    };
    (IpAddr::V4(Ipv4Addr::LOCALHOST), Some(why))
}

fn master(r: &Resolved, host: &HostFacts) -> Result<(), ConfigError> {
    let zk = r.get("zk").filter(|z| !z.trim().is_empty());
    let registry = r.get("registry").unwrap_or(if zk.is_some() {
        "replicated_log"
    } else {
        "in_memory"
    });
    if let Some(quorum) = r.get("quorum") {
        let origin = r.origin("quorum");
        if quorum.trim() == "0" {
            return Err(ConfigError::check(
                "quorum",
                format!("0{origin} is not a majority of any number of masters; set --quorum=1 for one master, 2 for three, 3 for five"),
            ));
        }
        if zk.is_none() {
            return Err(ConfigError::check(
                "quorum",
                format!("--quorum={quorum}{origin} has no effect without --zk (a standalone master is its own majority); drop --quorum, or set --zk=zk://host:2181/mesos to run masters as a group"),
            ));
        }
        if registry == "in_memory" {
            return Err(ConfigError::check(
                "quorum",
                format!("--quorum={quorum}{origin} has no effect with --registry=in_memory{}; drop --quorum, or use --registry=replicated_log", r.origin("registry")),
            ));
        }
    }
    if registry == "in_memory" && r.get("log_auto_initialize").is_some() {
        return Err(ConfigError::check(
            "log_auto_initialize",
            format!("has no effect with --registry=in_memory{} (there is no log to initialize); drop it, or use --registry=replicated_log", r.origin("registry")),
        ));
    }
    if registry == "replicated_log" && r.get("work_dir").is_none() {
        return Err(ConfigError::check(
            "work_dir",
            format!("is required with --registry=replicated_log (the log lives in <work_dir>/replicated_log); set --work_dir={WORK_DIR_EXAMPLE}"),
        ));
    }
    let Some(zk) = zk else { return Ok(()) };
    let Some(server) = remote_zk_server(zk, host) else {
        return Ok(());
    };
    let (advertised, flag, why) = master_advertised(r, host);
    if advertised.is_loopback() {
        return Err(ConfigError::check(
            flag,
            format!("this master would advertise {advertised}{why} to other hosts through ZooKeeper at {server}; set --ip (or --advertise_ip) to this host's address"),
        ));
    }
    if let Some(name) = r.get("hostname").filter(|h| host.is_loopback(h)) {
        return Err(ConfigError::check(
            "hostname",
            format!("this master would publish the loopback name '{name}'{} to other hosts through ZooKeeper at {server}; set --hostname to this host's name or address", r.origin("hostname")),
        ));
    }
    Ok(())
}

fn agent(r: &Resolved, host: &HostFacts) -> Result<(), ConfigError> {
    let Some(master) = r.get("master").filter(|m| !m.trim().is_empty()) else {
        return Err(ConfigError::check(
            "master",
            "is required; set --master=zk://host:2181/mesos (or host:5050), or write the URL into /etc/mesos/zk beside the --config_dir",
        ));
    };
    if r.get("work_dir").is_none_or(|w| w.trim().is_empty()) {
        return Err(ConfigError::check(
            "work_dir",
            format!("is required (sandboxes and checkpoints live there); set --work_dir={WORK_DIR_EXAMPLE}"),
        ));
    }
    let Some(peer) = remote_peer(master, host) else {
        return Ok(());
    };
    // The agent binds and advertises --ip, as `agent::Config::from_flags` picks it.
    let (flag, advertised, how) = match ip(r.get("advertise_ip")) {
        Some(address) => ("advertise_ip", Some(address), String::new()),
        None if r.get("ip").is_some() => ("ip", ip(r.get("ip")), String::new()),
        None => {
            let (address, why) = default_ip(host);
            let why = why.map(|w| format!("; {w}")).unwrap_or_default();
            ("ip", Some(address), format!(" (the default --ip{why})"))
        }
    };
    if let Some(address) = advertised.filter(IpAddr::is_loopback) {
        return Err(ConfigError::check(
            flag,
            format!("this agent would advertise {address}{how}{} {peer}; set --ip (or --advertise_ip) to this host's address", r.origin(flag)),
        ));
    }
    if let Some(name) = r.get("hostname").filter(|h| host.is_loopback(h)) {
        return Err(ConfigError::check(
            "hostname",
            format!("this agent would report the loopback name '{name}'{} {peer}; set --hostname to this host's name or address", r.origin("hostname")),
        ));
    }
    Ok(())
}

fn marathon(r: &Resolved, host: &HostFacts) -> Result<(), ConfigError> {
    let Some(master) = r.get("master").filter(|m| !m.trim().is_empty()) else {
        return Err(ConfigError::check(
            "master",
            "is required; set --master=zk://host:2181/mesos or host:5050",
        ));
    };
    // Marathon's --zk defaults to zk://localhost:2181/marathon (marathon-api.md 8.4).
    let peer = r
        .get("zk")
        .and_then(|zk| remote_zk_server(zk, host))
        .map(|s| format!("to other hosts through ZooKeeper at {s}"));
    let Some(peer) = peer.or_else(|| remote_peer(master, host)) else {
        return Ok(());
    };
    // As MarathonFlags::check picks it: --hostname, else --http_address unless 0.0.0.0, else 127.0.0.1.
    let advertised = match (r.get("hostname"), ip(r.get("http_address"))) {
        (Some(name), _) => name.trim().to_string(),
        (None, Some(address)) if !address.is_unspecified() => address.to_string(),
        (None, _) => "127.0.0.1".to_string(),
    };
    if host.is_loopback(&advertised) {
        let how = if r.get("hostname").is_some() {
            r.origin("hostname")
        } else {
            " (the default without --hostname)".to_string()
        };
        return Err(ConfigError::check(
            "hostname",
            format!("this Marathon would advertise {advertised}{how} {peer}; set --hostname to this host's address"),
        ));
    }
    Ok(())
}

/// A missing or unwritable `--work_dir` is found now, not at the first checkpoint or log write.
/// The master needs it only with the replicated log.
pub fn check_work_dir(r: &Resolved) -> Result<(), ConfigError> {
    let needed = match r.role {
        Role::Agent => true,
        Role::Master => {
            r.get("registry").unwrap_or(if r.get("zk").is_some() {
                "replicated_log"
            } else {
                "in_memory"
            }) == "replicated_log"
        }
        Role::Marathon => false,
    };
    let Some(dir) = r.get("work_dir").filter(|_| needed) else {
        return Ok(());
    };
    let origin = r.origin("work_dir");
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).map_err(|e| {
        ConfigError::check("work_dir", format!("cannot create {}{origin} ({e}); create it, or set --work_dir to a writable directory", dir.display()))
    })?;
    let probe = dir.join(format!(".tepui-write-probe-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    written.map(|_| ()).map_err(|e| {
        ConfigError::check("work_dir", format!("{}{origin} is not writable by this user ({e}); fix its owner, or set --work_dir to a writable directory", dir.display()))
    })
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
