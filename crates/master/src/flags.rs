//! `tepui master` flags, with Mesos' names and defaults (mesos-ha.md section 4.1). Every flag can also
//! come from the environment as `MESOS_<FLAG>` or from a `--config_dir` (crates/config decides the
//! precedence: command line, then environment, then the directory).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
#[command(rename_all = "snake_case")]
pub struct MasterFlags {
    /// IP address to listen on (default: the address the hostname resolves to, else 127.0.0.1).
    #[arg(long, env = "MESOS_IP")]
    pub ip: Option<Ipv4Addr>,
    /// Port to listen on.
    #[arg(long, env = "MESOS_PORT", default_value_t = 5050)]
    pub port: u16,
    /// Hostname published in MasterInfo and used by redirects (default: the advertised IP).
    #[arg(long, env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,
    /// IP address published to others instead of --ip (not bound).
    #[arg(long, env = "MESOS_ADVERTISE_IP")]
    pub advertise_ip: Option<Ipv4Addr>,
    /// Port published to others instead of --port (not bound).
    #[arg(long, env = "MESOS_ADVERTISE_PORT")]
    pub advertise_port: Option<u16>,
    /// Directory for the master's durable state (needed by --registry=replicated_log).
    #[arg(long, env = "MESOS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Display name of the cluster (`cluster` in /state).
    #[arg(long, env = "MESOS_CLUSTER")]
    pub cluster: Option<String>,
    /// ZooKeeper URL to contend for leadership in (`zk://host:port,.../mesos`, `zk://user:pass@...`,
    /// or `file:///path`); without it the master is standalone and elects itself.
    #[arg(long, env = "MESOS_ZK")]
    pub zk: Option<String>,
    /// Size of a majority of masters (2 of 3, 3 of 5); required with --zk.
    #[arg(long, env = "MESOS_QUORUM")]
    pub quorum: Option<usize>,
    /// Session timeout requested from ZooKeeper.
    #[arg(long, env = "MESOS_ZK_SESSION_TIMEOUT", default_value = "10secs")]
    pub zk_session_timeout: String,
    /// Where the registry lives: `replicated_log` (durable on a quorum of masters; the default with
    /// --zk) or `in_memory` (lost on restart; the default without --zk).
    #[arg(long, env = "MESOS_REGISTRY")]
    pub registry: Option<String>,
    /// Initialize an all-empty replicated log automatically (replicated-log.md 6).
    #[arg(long, env = "MESOS_LOG_AUTO_INITIALIZE", default_value_t = true, action = clap::ArgAction::Set)]
    pub log_auto_initialize: bool,
    /// How long a new leader may take to read the registry before it aborts.
    #[arg(long, env = "MESOS_REGISTRY_FETCH_TIMEOUT", default_value = "1mins")]
    pub registry_fetch_timeout: String,
    /// How long one registry write may take before the leader aborts.
    #[arg(long, env = "MESOS_REGISTRY_STORE_TIMEOUT", default_value = "20secs")]
    pub registry_store_timeout: String,
    /// Rescind offers not used within this duration (e.g. `30secs`); default: offers never expire.
    #[arg(long, env = "MESOS_OFFER_TIMEOUT")]
    pub offer_timeout: Option<String>,
    /// Period of batch allocation.
    #[arg(long, env = "MESOS_ALLOCATION_INTERVAL", default_value = "1secs")]
    pub allocation_interval: String,
    /// How long each ping to an agent waits for its pong (alias --slave_ping_timeout).
    #[arg(
        long,
        alias = "slave_ping_timeout",
        env = "MESOS_AGENT_PING_TIMEOUT",
        default_value = "15secs"
    )]
    pub agent_ping_timeout: String,
    /// Pings missed in a row before an agent is marked unreachable (alias --max_slave_ping_timeouts).
    #[arg(
        long,
        alias = "max_slave_ping_timeouts",
        env = "MESOS_MAX_AGENT_PING_TIMEOUTS",
        default_value_t = 5
    )]
    pub max_agent_ping_timeouts: u32,
    /// How long agents of the registry have to re-register after a failover (alias
    /// --slave_reregister_timeout). Mesos enforces a 10mins minimum; tepui allows less for tests.
    #[arg(
        long,
        alias = "slave_reregister_timeout",
        env = "MESOS_AGENT_REREGISTER_TIMEOUT",
        default_value = "10mins"
    )]
    pub agent_reregister_timeout: String,
    /// Completed frameworks kept in memory.
    #[arg(long, env = "MESOS_MAX_COMPLETED_FRAMEWORKS", default_value_t = 50)]
    pub max_completed_frameworks: usize,
    /// Completed tasks kept in memory per framework.
    #[arg(
        long,
        env = "MESOS_MAX_COMPLETED_TASKS_PER_FRAMEWORK",
        default_value_t = 1000
    )]
    pub max_completed_tasks_per_framework: usize,
}

/// A flag value that does not make sense, naming the flag.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct FlagError {
    pub flag: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    InMemory,
    ReplicatedLog,
}

/// Flags after validation, in the units the master uses.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub bind_ip: Ipv4Addr,
    pub port: u16,
    pub advertise_ip: Ipv4Addr,
    pub advertise_port: u16,
    pub hostname: String,
    pub cluster: Option<String>,
    pub offer_timeout_secs: Option<f64>,
    pub allocation_interval_secs: f64,
    pub max_completed_frameworks: usize,
    pub max_completed_tasks_per_framework: usize,
    /// ZooKeeper to contend in; `None` for a standalone master.
    pub zk: Option<election::ZkUrl>,
    pub quorum: Option<usize>,
    pub zk_session_timeout_secs: f64,
    pub registry: RegistryKind,
    pub agent_ping_timeout_secs: f64,
    pub max_agent_ping_timeouts: u32,
    pub agent_reregister_timeout_secs: f64,
    pub work_dir: Option<PathBuf>,
    pub log_auto_initialize: bool,
    pub registry_fetch_timeout_secs: f64,
    pub registry_store_timeout_secs: f64,
    /// Every flag as text, for `/flags`.
    pub flags: BTreeMap<String, String>,
}

/// The IPv4 address `hostname` resolves to, if it is not a loopback address.
pub fn resolve_own_ip() -> Option<Ipv4Addr> {
    config::host::HostFacts::of_this_host().own_ipv4()
}

impl MasterFlags {
    pub fn validate(&self) -> Result<MasterConfig, FlagError> {
        let duration = |flag: &'static str, text: &str| {
            proto::parse_duration_secs(text).map_err(|message| FlagError { flag, message })
        };
        let registry = match self.registry.as_deref() {
            Some("in_memory") => RegistryKind::InMemory,
            Some("replicated_log") => RegistryKind::ReplicatedLog,
            Some(other) => {
                return Err(FlagError {
                    flag: "registry",
                    message: format!("'{other}' is not one of replicated_log, in_memory"),
                })
            }
            None if self.zk.is_some() => RegistryKind::ReplicatedLog,
            None => RegistryKind::InMemory,
        };
        if registry == RegistryKind::ReplicatedLog && self.work_dir.is_none() {
            return Err(FlagError {
                flag: "work_dir",
                message: "is required with --registry=replicated_log (the log lives in <work_dir>/replicated_log); set --work_dir=/var/lib/mesos".into(),
            });
        }
        let registry_fetch_timeout_secs =
            duration("registry_fetch_timeout", &self.registry_fetch_timeout)?;
        let registry_store_timeout_secs =
            duration("registry_store_timeout", &self.registry_store_timeout)?;
        let offer_timeout_secs = match &self.offer_timeout {
            Some(text) => Some(duration("offer_timeout", text)?),
            None => None,
        };
        let allocation_interval_secs = duration("allocation_interval", &self.allocation_interval)?;
        let zk_session_timeout_secs = duration("zk_session_timeout", &self.zk_session_timeout)?;
        let agent_ping_timeout_secs = duration("agent_ping_timeout", &self.agent_ping_timeout)?;
        // mesos-ha.md 3.4: allowed 1secs..15mins.
        if !(1.0..=900.0).contains(&agent_ping_timeout_secs) {
            return Err(FlagError {
                flag: "agent_ping_timeout",
                message: "must be between 1secs and 15mins".into(),
            });
        }
        if self.max_agent_ping_timeouts == 0 {
            return Err(FlagError {
                flag: "max_agent_ping_timeouts",
                message: "must be at least 1".into(),
            });
        }
        let agent_reregister_timeout_secs =
            duration("agent_reregister_timeout", &self.agent_reregister_timeout)?;
        if zk_session_timeout_secs <= 0.0 {
            return Err(FlagError {
                flag: "zk_session_timeout",
                message: "must be greater than zero".into(),
            });
        }
        let zk = match &self.zk {
            Some(text) => Some(election::ZkUrl::parse(text).map_err(|e| FlagError {
                flag: "zk",
                message: e.to_string(),
            })?),
            None => None,
        };
        // mesos-ha.md 4.1: --quorum sizes the replicated log's majority; an in-memory registry has none.
        if zk.is_some() && registry == RegistryKind::ReplicatedLog && self.quorum.is_none() {
            return Err(FlagError {
                flag: "quorum",
                message: "is required with --zk and --registry=replicated_log; set it to a majority of the masters (--quorum=2 for 3 masters, 3 for 5)".into(),
            });
        }
        if self.quorum == Some(0) {
            return Err(FlagError { flag: "quorum", message: "0 is not a majority of any number of masters; set --quorum=1 for one master, 2 for three, 3 for five".into() });
        }
        if allocation_interval_secs <= 0.0 {
            return Err(FlagError {
                flag: "allocation_interval",
                message: "must be greater than zero".into(),
            });
        }
        if self.port == 0 {
            return Err(FlagError {
                flag: "port",
                message: "must not be 0".into(),
            });
        }
        let bind_ip = self
            .ip
            .or_else(resolve_own_ip)
            .unwrap_or(Ipv4Addr::LOCALHOST);
        let advertise_ip = self.advertise_ip.unwrap_or(if bind_ip.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else {
            bind_ip
        });
        let advertise_port = self.advertise_port.unwrap_or(self.port);
        let hostname = self
            .hostname
            .clone()
            .unwrap_or_else(|| advertise_ip.to_string());
        let mut flags = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            flags.insert(k.to_string(), v);
        };
        put("ip", bind_ip.to_string());
        put("port", self.port.to_string());
        put("hostname", hostname.clone());
        if let Some(ip) = self.advertise_ip {
            put("advertise_ip", ip.to_string());
        }
        if let Some(port) = self.advertise_port {
            put("advertise_port", port.to_string());
        }
        if let Some(dir) = &self.work_dir {
            put("work_dir", dir.display().to_string());
        }
        if let Some(cluster) = &self.cluster {
            put("cluster", cluster.clone());
        }
        put(
            "registry",
            if registry == RegistryKind::ReplicatedLog {
                "replicated_log"
            } else {
                "in_memory"
            }
            .to_string(),
        );
        put("log_auto_initialize", self.log_auto_initialize.to_string());
        put(
            "registry_fetch_timeout",
            self.registry_fetch_timeout.clone(),
        );
        put(
            "registry_store_timeout",
            self.registry_store_timeout.clone(),
        );
        if let Some(url) = &zk {
            // Printed without credentials.
            put("zk", url.to_string());
        }
        if let Some(q) = self.quorum {
            put("quorum", q.to_string());
        }
        put("zk_session_timeout", self.zk_session_timeout.clone());
        if let Some(t) = &self.offer_timeout {
            put("offer_timeout", t.clone());
        }
        put("allocation_interval", self.allocation_interval.clone());
        put("agent_ping_timeout", self.agent_ping_timeout.clone());
        put(
            "max_agent_ping_timeouts",
            self.max_agent_ping_timeouts.to_string(),
        );
        put(
            "agent_reregister_timeout",
            self.agent_reregister_timeout.clone(),
        );
        put(
            "max_completed_frameworks",
            self.max_completed_frameworks.to_string(),
        );
        put(
            "max_completed_tasks_per_framework",
            self.max_completed_tasks_per_framework.to_string(),
        );
        Ok(MasterConfig {
            bind_ip,
            port: self.port,
            advertise_ip,
            advertise_port,
            hostname,
            cluster: self.cluster.clone(),
            offer_timeout_secs,
            allocation_interval_secs,
            max_completed_frameworks: self.max_completed_frameworks,
            max_completed_tasks_per_framework: self.max_completed_tasks_per_framework,
            zk,
            quorum: self.quorum,
            zk_session_timeout_secs,
            registry,
            agent_ping_timeout_secs,
            max_agent_ping_timeouts: self.max_agent_ping_timeouts,
            agent_reregister_timeout_secs,
            work_dir: self.work_dir.clone(),
            log_auto_initialize: self.log_auto_initialize,
            registry_fetch_timeout_secs,
            registry_store_timeout_secs,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        flags: MasterFlags,
    }

    fn validate(args: &[&str]) -> Result<MasterConfig, FlagError> {
        let mut argv = vec!["master"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("clap accepts")
            .flags
            .validate()
    }

    #[test]
    fn quorum_is_required_only_for_the_replicated_log() {
        let err = validate(&["--zk=zk://127.0.0.1:2181/mesos", "--work_dir=/w"]).unwrap_err();
        assert_eq!(err.flag, "quorum");
        assert!(
            err.message.contains("--quorum=2 for 3 masters"),
            "{}",
            err.message
        );
        let config = validate(&["--zk=zk://127.0.0.1:2181/mesos", "--registry=in_memory"]).unwrap();
        assert_eq!(
            (config.registry, config.quorum),
            (RegistryKind::InMemory, None)
        );
        let err = validate(&[
            "--zk=zk://127.0.0.1:2181/mesos",
            "--quorum=0",
            "--work_dir=/w",
        ])
        .unwrap_err();
        assert!(
            err.message.starts_with("0 is not a majority"),
            "{}",
            err.message
        );
        let err = validate(&["--zk=zk://127.0.0.1:2181/mesos", "--quorum=1"]).unwrap_err();
        assert_eq!(err.flag, "work_dir");
        assert!(
            err.message.ends_with("set --work_dir=/var/lib/mesos"),
            "{}",
            err.message
        );
    }
}
