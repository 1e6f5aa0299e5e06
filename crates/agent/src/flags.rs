//! Command-line flags of `tepui agent`, named as Mesos names them, and their validation.
//!
//! What: `AgentFlags` is what clap fills (every flag also readable from `MESOS_<FLAG>`, as the Mesos
//! agent reads its environment); `Config` is the checked, typed form the rest of the crate uses.
//! Why two types: clap only knows strings and numbers, while bad values must come back as an
//! `AgentError` naming the flag (e.g. `--resources: ...`) so the binary can print it and exit.
//!
//! Mesos accepts `--work-dir` as well as `--work_dir`; so do we (an alias per flag).

use crate::AgentError;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Kill grace period when neither the task nor the kill call carries a `kill_policy`.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// Flags of `tepui agent` (Mesos 1.x names).
#[derive(clap::Args, Debug, Clone)]
pub struct AgentFlags {
    /// Master to register with: `host:port` (ZooKeeper URLs arrive with the HA work).
    #[arg(long = "master", env = "MESOS_MASTER")]
    pub master: String,

    /// IP address to bind the agent's HTTP server to, and to advertise unless --advertise_ip is set.
    /// Default (Mesos'): the first non-loopback IPv4 address the host name resolves to, else
    /// 127.0.0.1.
    #[arg(long = "ip", env = "MESOS_IP")]
    pub ip: Option<String>,

    /// Port to listen on (0 picks a free one).
    #[arg(long = "port", env = "MESOS_PORT", default_value_t = 5051)]
    pub port: u16,

    /// IP address advertised to the master and in `pid`.
    #[arg(
        long = "advertise_ip",
        alias = "advertise-ip",
        env = "MESOS_ADVERTISE_IP"
    )]
    pub advertise_ip: Option<String>,

    /// Port advertised to the master and in `pid`.
    #[arg(
        long = "advertise_port",
        alias = "advertise-port",
        env = "MESOS_ADVERTISE_PORT"
    )]
    pub advertise_port: Option<u16>,

    /// Hostname reported to the master (default: the advertised IP).
    #[arg(long = "hostname", env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,

    /// Directory for sandboxes and agent metadata.
    #[arg(long = "work_dir", alias = "work-dir", env = "MESOS_WORK_DIR")]
    pub work_dir: PathBuf,

    /// Total resources, e.g. `cpus:4;mem:1024;disk:2048;ports:[31000-32000]`; names not given are detected.
    #[arg(long = "resources", env = "MESOS_RESOURCES")]
    pub resources: Option<String>,

    /// Attributes, e.g. `rack:r1;zone:a`.
    #[arg(long = "attributes", env = "MESOS_ATTRIBUTES")]
    pub attributes: Option<String>,

    /// Upper bound of the first random registration delay; retries double it up to 1 minute.
    #[arg(
        long = "registration_backoff_factor",
        alias = "registration-backoff-factor",
        env = "MESOS_REGISTRATION_BACKOFF_FACTOR",
        default_value = "1secs"
    )]
    pub registration_backoff_factor: String,

    /// How long tasks get to exit when their framework or the agent shuts down.
    #[arg(
        long = "executor_shutdown_grace_period",
        alias = "executor-shutdown-grace-period",
        env = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        default_value = "5secs"
    )]
    pub executor_shutdown_grace_period: String,

    /// How long a custom executor may take to subscribe before it is killed and its tasks fail.
    #[arg(
        long = "executor_registration_timeout",
        alias = "executor-registration-timeout",
        env = "MESOS_EXECUTOR_REGISTRATION_TIMEOUT",
        default_value = "1mins"
    )]
    pub executor_registration_timeout: String,

    /// After an agent restart, how long a recovered custom executor may take to subscribe again
    /// before it is killed and its tasks are reported lost (replicated-log.md 8, step 3).
    #[arg(
        long = "executor_reregistration_timeout",
        alias = "executor-reregistration-timeout",
        env = "MESOS_EXECUTOR_REREGISTRATION_TIMEOUT",
        default_value = "2secs"
    )]
    pub executor_reregistration_timeout: String,

    /// Session timeout requested from ZooKeeper when `--master` is a `zk://` URL.
    #[arg(
        long = "zk_session_timeout",
        alias = "zk-session-timeout",
        env = "MESOS_ZK_SESSION_TIMEOUT",
        default_value = "10secs"
    )]
    pub zk_session_timeout: String,

    // ---- isolation and sandbox GC (crate::isolation, crate::gc) ----
    /// Isolators, comma-separated Mesos names: `posix/cpu,posix/mem` (memory enforced by polling
    /// /proc) or `cgroups/cpu,cgroups/mem` (kernel-enforced; falls back to posix with a warning
    /// when cgroups are not usable). Other Mesos isolator names are ignored with a warning.
    #[arg(long = "isolation", env = "MESOS_ISOLATION", default_value = crate::isolation::DEFAULT_ISOLATION)]
    pub isolation: String,

    /// Where cgroup hierarchies are mounted (default: read from /proc/self/mountinfo).
    #[arg(
        long = "cgroups_hierarchy",
        alias = "cgroups-hierarchy",
        env = "MESOS_CGROUPS_HIERARCHY"
    )]
    pub cgroups_hierarchy: Option<PathBuf>,

    /// Group under each cgroup hierarchy that holds the containers' groups.
    #[arg(
        long = "cgroups_root",
        alias = "cgroups-root",
        env = "MESOS_CGROUPS_ROOT",
        default_value = crate::isolation::DEFAULT_CGROUPS_ROOT
    )]
    pub cgroups_root: String,

    /// How long sandboxes of completed executors are kept (shortened as the disk fills, see
    /// --gc_disk_headroom).
    #[arg(long = "gc_delay", alias = "gc-delay", env = "MESOS_GC_DELAY", default_value = crate::gc::DEFAULT_GC_DELAY)]
    pub gc_delay: String,

    /// Fraction of the work directory's disk to keep free: sandboxes are kept
    /// gc_delay × max(0, 1 − headroom − disk usage).
    #[arg(
        long = "gc_disk_headroom",
        alias = "gc-disk-headroom",
        env = "MESOS_GC_DISK_HEADROOM",
        default_value_t = crate::gc::DEFAULT_GC_DISK_HEADROOM
    )]
    pub gc_disk_headroom: f64,
    // ---- end isolation and sandbox GC ----

    // ---- fetcher (crate::fetcher, crate::fetch_cache) ----
    /// Where URIs fetched with `cache: true` are kept (emptied when the agent starts); default
    /// `<work_dir>/fetch`.
    #[arg(long = "fetcher_cache_dir", env = "MESOS_FETCHER_CACHE_DIR")]
    pub fetcher_cache_dir: Option<PathBuf>,

    /// Most bytes the fetcher cache holds, e.g. `2GB`; least recently used entries make room.
    #[arg(
        long = "fetcher_cache_size",
        env = "MESOS_FETCHER_CACHE_SIZE",
        default_value = crate::fetch_cache::DEFAULT_CACHE_SIZE
    )]
    pub fetcher_cache_size: String,

    // ---- recovery (crate::recovery, crate::launcher_daemon) ----
    /// On start: `reconnect` finds the tasks of the previous run again (they outlive agent
    /// restarts); `cleanup` kills them and starts as a new agent.
    #[arg(long = "recover", env = "MESOS_RECOVER", default_value = "reconnect")]
    pub recover: String,

    /// Kill every task (and stop the launcher daemon) when the agent stops on a signal. Off by
    /// default: tasks keep running and a restarted agent re-attaches to them.
    #[arg(
        long = "kill_tasks_on_stop",
        alias = "kill-tasks-on-stop",
        env = "MESOS_KILL_TASKS_ON_STOP",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub kill_tasks_on_stop: bool,

    /// The `tepui` binary the agent runs as `<it> launcher --work_dir ...` (default: itself).
    #[arg(long = "launcher_program", env = "TEPUI_LAUNCHER_PROGRAM", hide = true)]
    pub launcher_program: Option<PathBuf>,
    // ---- end recovery ----
}

impl AgentFlags {
    /// Flags with every default applied, for embedding (`tepui dev`) and tests.
    pub fn new(master: impl Into<String>, work_dir: impl Into<PathBuf>) -> Self {
        AgentFlags {
            master: master.into(),
            ip: Some("127.0.0.1".to_string()),
            port: 5051,
            advertise_ip: None,
            advertise_port: None,
            hostname: None,
            work_dir: work_dir.into(),
            resources: None,
            attributes: None,
            registration_backoff_factor: "1secs".to_string(),
            executor_shutdown_grace_period: "5secs".to_string(),
            executor_registration_timeout: "1mins".to_string(),
            executor_reregistration_timeout: "2secs".to_string(),
            zk_session_timeout: "10secs".to_string(),
            // isolation and sandbox GC
            isolation: crate::isolation::DEFAULT_ISOLATION.to_string(),
            cgroups_hierarchy: None,
            cgroups_root: crate::isolation::DEFAULT_CGROUPS_ROOT.to_string(),
            gc_delay: crate::gc::DEFAULT_GC_DELAY.to_string(),
            gc_disk_headroom: crate::gc::DEFAULT_GC_DISK_HEADROOM,
            fetcher_cache_dir: None,
            fetcher_cache_size: crate::fetch_cache::DEFAULT_CACHE_SIZE.to_string(),
            // recovery
            recover: "reconnect".to_string(),
            kill_tasks_on_stop: false,
            launcher_program: None,
        }
    }

    /// The flags as `/flags` shows them: every value as a string, unset optional flags left out.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        // A zk:// URL (perhaps read from a file:// value) may hold credentials: show it as ZkUrl
        // prints it, without them.
        let master = match election::ZkUrl::parse(&self.master) {
            Ok(url) if election::is_zk(&self.master) => url.to_string(),
            _ => self.master.clone(),
        };
        map.insert("master".into(), master);
        if let Some(v) = &self.ip {
            map.insert("ip".into(), v.clone());
        }
        map.insert("port".into(), self.port.to_string());
        if let Some(v) = &self.advertise_ip {
            map.insert("advertise_ip".into(), v.clone());
        }
        if let Some(v) = self.advertise_port {
            map.insert("advertise_port".into(), v.to_string());
        }
        if let Some(v) = &self.hostname {
            map.insert("hostname".into(), v.clone());
        }
        map.insert("work_dir".into(), self.work_dir.display().to_string());
        if let Some(v) = &self.resources {
            map.insert("resources".into(), v.clone());
        }
        if let Some(v) = &self.attributes {
            map.insert("attributes".into(), v.clone());
        }
        map.insert(
            "registration_backoff_factor".into(),
            self.registration_backoff_factor.clone(),
        );
        map.insert(
            "executor_shutdown_grace_period".into(),
            self.executor_shutdown_grace_period.clone(),
        );
        map.insert(
            "executor_registration_timeout".into(),
            self.executor_registration_timeout.clone(),
        );
        map.insert(
            "executor_reregistration_timeout".into(),
            self.executor_reregistration_timeout.clone(),
        );
        map.insert("zk_session_timeout".into(), self.zk_session_timeout.clone());
        // isolation and sandbox GC
        map.insert("isolation".into(), self.isolation.clone());
        if let Some(v) = &self.cgroups_hierarchy {
            map.insert("cgroups_hierarchy".into(), v.display().to_string());
        }
        map.insert("cgroups_root".into(), self.cgroups_root.clone());
        map.insert("gc_delay".into(), self.gc_delay.clone());
        map.insert("gc_disk_headroom".into(), self.gc_disk_headroom.to_string());
        if let Some(v) = &self.fetcher_cache_dir {
            map.insert("fetcher_cache_dir".into(), v.display().to_string());
        }
        map.insert("fetcher_cache_size".into(), self.fetcher_cache_size.clone());
        // recovery
        map.insert("recover".into(), self.recover.clone());
        map.insert(
            "kill_tasks_on_stop".into(),
            self.kill_tasks_on_stop.to_string(),
        );
        map
    }

    /// The detector `--master` asks for: ZooKeeper for `zk://` and `file://` URLs (mesos-ha.md 2.1),
    /// else the fixed `host:port`. Must be called inside the async runtime (ZooKeeper runs a task).
    pub fn detector(&self) -> Result<std::sync::Arc<dyn election::Detector>, AgentError> {
        if election::is_zk(&self.master) {
            let url =
                election::ZkUrl::parse(&self.master).map_err(|e| bad("master", e.to_string()))?;
            let timeout = proto::parse_duration_secs(&self.zk_session_timeout)
                .map_err(|e| bad("zk_session_timeout", e))?;
            if timeout <= 0.0 {
                return Err(bad("zk_session_timeout", "must be greater than zero"));
            }
            let election =
                election::Election::zookeeper(url, Duration::from_secs_f64(timeout), None);
            Ok(std::sync::Arc::new(election))
        } else {
            let detector = election::StandaloneDetector::new(&self.master)
                .map_err(|e| bad("master", e.to_string()))?;
            Ok(std::sync::Arc::new(detector))
        }
    }
}

/// Checked flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind_ip: IpAddr,
    pub port: u16,
    pub advertise_ip: IpAddr,
    pub advertise_port: Option<u16>,
    pub hostname: String,
    pub work_dir: PathBuf,
    pub resources: Option<proto::ResourceBag>,
    pub attributes: Vec<proto::Attribute>,
    pub registration_backoff_factor: Duration,
    pub executor_shutdown_grace_period: Duration,
    /// `--executor_registration_timeout`, `--executor_reregistration_timeout`.
    pub executors: crate::core::ExecutorConfig,
    /// `--isolation`, `--cgroups_hierarchy`, `--cgroups_root`.
    pub isolation: crate::isolation::IsolationConfig,
    /// `--gc_delay`, `--gc_disk_headroom`.
    pub gc: crate::gc::GcPolicy,
    /// `--fetcher_cache_dir` (resolved) and `--fetcher_cache_size` in bytes.
    pub fetcher_cache_dir: PathBuf,
    pub fetcher_cache_size: u64,
    /// `--recover`.
    pub recover: crate::recovery::RecoverMode,
    pub kill_tasks_on_stop: bool,
    /// The binary that runs the launcher daemon.
    pub launcher_program: PathBuf,
}

fn bad(flag: &'static str, message: impl Into<String>) -> AgentError {
    AgentError::BadFlag {
        flag,
        message: message.into(),
    }
}

fn duration_flag(flag: &'static str, text: &str) -> Result<Duration, AgentError> {
    let secs = proto::parse_duration_secs(text).map_err(|e| bad(flag, e))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad(
            flag,
            format!("'{text}' must be a non-negative duration"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn ip_flag(flag: &'static str, text: &str) -> Result<IpAddr, AgentError> {
    text.trim()
        .parse()
        .map_err(|_| bad(flag, format!("'{text}' is not an IP address")))
}

impl Config {
    pub fn from_flags(flags: &AgentFlags) -> Result<Config, AgentError> {
        if flags.master.trim().is_empty() {
            return Err(bad("master", "must name the master as host:port"));
        }
        if election::is_zk(&flags.master) {
            election::ZkUrl::parse(&flags.master).map_err(|e| bad("master", e.to_string()))?;
        }
        let bind_ip = match &flags.ip {
            Some(text) => ip_flag("ip", text)?,
            None => config::host::HostFacts::of_this_host()
                .own_ipv4()
                .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4),
        };
        let advertise_ip = match &flags.advertise_ip {
            Some(text) => ip_flag("advertise_ip", text)?,
            None => bind_ip,
        };
        if advertise_ip.is_unspecified() {
            return Err(bad(
                "advertise_ip",
                format!("the agent would advertise {advertise_ip}; set --advertise_ip to a reachable address"),
            ));
        }
        if flags.advertise_port == Some(0) {
            return Err(bad("advertise_port", "must not be 0"));
        }
        let hostname = match &flags.hostname {
            Some(h) if h.trim().is_empty() => return Err(bad("hostname", "must not be empty")),
            Some(h) => h.trim().to_string(),
            None => advertise_ip.to_string(),
        };
        if flags.work_dir.as_os_str().is_empty() {
            return Err(bad("work_dir", "must not be empty"));
        }
        let resources = match &flags.resources {
            Some(text) => {
                Some(proto::ResourceBag::parse(text).map_err(|e| bad("resources", e.to_string()))?)
            }
            None => None,
        };
        let attributes = match &flags.attributes {
            Some(text) => {
                proto::parse_attributes(text).map_err(|e| bad("attributes", e.to_string()))?
            }
            None => Vec::new(),
        };
        // isolation and sandbox GC
        let isolation = crate::isolation::IsolationConfig::new(
            &flags.isolation,
            flags.cgroups_hierarchy.clone(),
            &flags.cgroups_root,
        )
        .map_err(|(flag, message)| bad(flag, message))?;
        if !(0.0..=1.0).contains(&flags.gc_disk_headroom) {
            return Err(bad(
                "gc_disk_headroom",
                format!("{} must be between 0.0 and 1.0", flags.gc_disk_headroom),
            ));
        }
        let gc = crate::gc::GcPolicy {
            delay: duration_flag("gc_delay", &flags.gc_delay)?,
            disk_headroom: flags.gc_disk_headroom,
        };
        let fetcher_cache_size = crate::fetch_cache::parse_bytes(&flags.fetcher_cache_size)
            .map_err(|e| bad("fetcher_cache_size", e))?;
        Ok(Config {
            isolation,
            gc,
            fetcher_cache_dir: flags
                .fetcher_cache_dir
                .clone()
                .unwrap_or_else(|| flags.work_dir.join("fetch")),
            fetcher_cache_size,
            bind_ip,
            port: flags.port,
            advertise_ip,
            advertise_port: flags.advertise_port,
            hostname,
            work_dir: flags.work_dir.clone(),
            resources,
            attributes,
            registration_backoff_factor: duration_flag(
                "registration_backoff_factor",
                &flags.registration_backoff_factor,
            )?,
            executor_shutdown_grace_period: duration_flag(
                "executor_shutdown_grace_period",
                &flags.executor_shutdown_grace_period,
            )?,
            executors: crate::core::ExecutorConfig {
                registration_timeout: duration_flag(
                    "executor_registration_timeout",
                    &flags.executor_registration_timeout,
                )?,
                reregistration_timeout: duration_flag(
                    "executor_reregistration_timeout",
                    &flags.executor_reregistration_timeout,
                )?,
            },
            // recovery
            recover: flags
                .recover
                .trim()
                .parse()
                .map_err(|e: String| bad("recover", e))?,
            kill_tasks_on_stop: flags.kill_tasks_on_stop,
            launcher_program: match &flags.launcher_program {
                Some(program) => program.clone(),
                None => std::env::current_exe().map_err(|e| {
                    bad(
                        "launcher_program",
                        format!("cannot tell which binary this is: {e}"),
                    )
                })?,
            },
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
        agent: AgentFlags,
    }

    #[test]
    fn mesos_flag_names_parse() {
        let cli = Cli::try_parse_from([
            "agent",
            "--master=10.0.0.11:5050",
            "--work_dir=/tmp/w",
            "--port=5052",
            "--advertise-ip=10.0.0.5",
            "--resources=cpus:2;mem:512",
            "--registration_backoff_factor=100ms",
        ])
        .unwrap();
        let config = Config::from_flags(&cli.agent).unwrap();
        assert_eq!(config.port, 5052);
        assert_eq!(config.advertise_ip.to_string(), "10.0.0.5");
        assert_eq!(config.hostname, "10.0.0.5");
        assert_eq!(
            config.registration_backoff_factor,
            Duration::from_millis(100)
        );
        assert_eq!(
            config.executor_shutdown_grace_period,
            Duration::from_secs(5)
        );
        assert_eq!(
            config.executors.registration_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(
            config.executors.reregistration_timeout,
            Duration::from_secs(2)
        );
        let timeouts = Cli::try_parse_from([
            "agent",
            "--master=m:5050",
            "--work_dir=/w",
            "--executor-registration-timeout=3secs",
            "--executor_reregistration_timeout=500ms",
        ])
        .unwrap();
        let executors = Config::from_flags(&timeouts.agent).unwrap().executors;
        assert_eq!(executors.registration_timeout, Duration::from_secs(3));
        assert_eq!(executors.reregistration_timeout, Duration::from_millis(500));
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.executor_registration_timeout = "soonish".into();
        assert!(matches!(
            Config::from_flags(&flags),
            Err(AgentError::BadFlag {
                flag: "executor_registration_timeout",
                ..
            })
        ));
        assert_eq!(config.resources.unwrap().scalar("cpus"), 2.0);
        assert_eq!(cli.agent.to_map()["registration_backoff_factor"], "100ms");
        // isolation and sandbox GC: Mesos defaults, and the flags as Mesos spells them.
        assert_eq!(config.isolation.selection.names(), "posix/cpu,posix/mem");
        assert_eq!(config.gc.delay, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.gc.disk_headroom, 0.1);
        assert_eq!(cli.agent.to_map()["isolation"], "posix/cpu,posix/mem");
        assert_eq!(cli.agent.to_map()["gc_delay"], "1weeks");
        let cli = Cli::try_parse_from([
            "agent",
            "--master=m:5050",
            "--work_dir=/tmp/w",
            "--isolation=cgroups/cpu,cgroups/mem",
            "--cgroups_hierarchy=/sys/fs/cgroup",
            "--gc_delay=1secs",
            "--gc_disk_headroom=0",
        ])
        .unwrap();
        let config = Config::from_flags(&cli.agent).unwrap();
        assert_eq!(
            config.isolation.selection.names(),
            "cgroups/cpu,cgroups/mem"
        );
        assert_eq!(
            config.isolation.cgroups_hierarchy,
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(config.gc.delay, Duration::from_secs(1));
        assert_eq!(config.gc.disk_headroom, 0.0);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.resources = Some("cpus:lots".into());
        let err = Config::from_flags(&flags).unwrap_err().to_string();
        assert!(err.starts_with("--resources: "), "{err}");

        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.registration_backoff_factor = "soon".into();
        let err = Config::from_flags(&flags).unwrap_err().to_string();
        assert!(err.starts_with("--registration_backoff_factor: "), "{err}");

        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.ip = Some("localhost-ish".into());
        let err = Config::from_flags(&flags).unwrap_err().to_string();
        assert!(err.starts_with("--ip: "), "{err}");

        let flags = AgentFlags::new("zk://z:2181/mesos", "/tmp/w");
        assert!(
            Config::from_flags(&flags).is_ok(),
            "zk:// URLs are accepted"
        );
        let flags = AgentFlags::new("zk://nohostport/mesos", "/tmp/w");
        assert!(matches!(
            Config::from_flags(&flags),
            Err(AgentError::BadFlag { flag: "master", .. })
        ));
        // isolation and sandbox GC
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.isolation = "cgroups/cpu,posix/bogus".into();
        let err = Config::from_flags(&flags).unwrap_err().to_string();
        assert!(
            err.starts_with("--isolation: unknown isolator 'posix/bogus'"),
            "{err}"
        );
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.cgroups_root = "../up".into();
        assert!(matches!(
            Config::from_flags(&flags),
            Err(AgentError::BadFlag {
                flag: "cgroups_root",
                ..
            })
        ));
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.gc_delay = "later".into();
        assert!(matches!(
            Config::from_flags(&flags),
            Err(AgentError::BadFlag {
                flag: "gc_delay",
                ..
            })
        ));
        let mut flags = AgentFlags::new("m:5050", "/tmp/w");
        flags.gc_disk_headroom = 1.5;
        assert!(matches!(
            Config::from_flags(&flags),
            Err(AgentError::BadFlag {
                flag: "gc_disk_headroom",
                ..
            })
        ));

        let mut flags = AgentFlags::new("zk://z:2181/mesos", "/tmp/w");
        flags.zk_session_timeout = "forever".into();
        assert!(matches!(
            flags.detector(),
            Err(AgentError::BadFlag {
                flag: "zk_session_timeout",
                ..
            })
        ));
    }

    #[test]
    fn flags_map_hides_zookeeper_credentials() {
        let flags = AgentFlags::new("zk://user:secret@z1:2181/mesos", "/tmp/w");
        assert_eq!(flags.to_map()["master"], "zk://<credentials>@z1:2181/mesos");
        assert_eq!(
            AgentFlags::new("m:5050", "/tmp/w").to_map()["master"],
            "m:5050"
        );
    }

    // recovery
    #[test]
    fn recovery_flags_parse() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["agent", "--master=m:5050", "--work_dir=/w"];
            args.extend_from_slice(extra);
            Config::from_flags(&Cli::try_parse_from(args).unwrap().agent)
        };
        let config = parse(&[]).unwrap();
        assert_eq!(config.recover, crate::recovery::RecoverMode::Reconnect);
        assert!(!config.kill_tasks_on_stop);
        let config = parse(&["--recover=cleanup", "--kill_tasks_on_stop"]).unwrap();
        assert_eq!(config.recover, crate::recovery::RecoverMode::Cleanup);
        assert!(config.kill_tasks_on_stop);
        assert!(
            !parse(&["--kill_tasks_on_stop=false"])
                .unwrap()
                .kill_tasks_on_stop
        );
        let err = parse(&["--recover=sometimes"]).unwrap_err().to_string();
        assert!(err.starts_with("--recover: "), "{err}");
    }
}
