//! Flags of `tepui marathon`, named as Marathon names them (marathon-api.md §8.4).
//!
//! What: `MarathonFlags` is what clap fills; every flag is also read from `MARATHON_<FLAG>` (upper
//! case), as Marathon reads its environment, and accepts its dashed spelling. Times are in
//! milliseconds where Marathon's are (`--task_launch_timeout 300000`), seconds for
//! `--failover_timeout`. `MarathonFlags::check` turns them into a `Config` or an error naming the
//! flag.

use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct MarathonFlags {
    /// The Mesos master: `zk://host:2181,.../mesos` or `host:5050`.
    #[arg(long = "master", env = "MARATHON_MASTER")]
    pub master: String,
    /// State and election root: `zk://host:2181,.../marathon`.
    #[arg(
        long = "zk",
        env = "MARATHON_ZK",
        default_value = "zk://localhost:2181/marathon"
    )]
    pub zk: String,
    /// Advertised host (leader id, framework hostname). Default: --http_address, else 127.0.0.1.
    #[arg(long = "hostname", env = "MARATHON_HOSTNAME")]
    pub hostname: Option<String>,
    /// Address to listen on.
    #[arg(
        long = "http_address",
        alias = "http-address",
        env = "MARATHON_HTTP_ADDRESS",
        default_value = "0.0.0.0"
    )]
    pub http_address: String,
    #[arg(
        long = "http_port",
        alias = "http-port",
        env = "MARATHON_HTTP_PORT",
        default_value_t = 8080
    )]
    pub http_port: u16,
    #[arg(
        long = "framework_name",
        alias = "framework-name",
        env = "MARATHON_FRAMEWORK_NAME",
        default_value = "marathon"
    )]
    pub framework_name: String,
    /// Mesos framework failover timeout, seconds.
    #[arg(
        long = "failover_timeout",
        alias = "failover-timeout",
        env = "MARATHON_FAILOVER_TIMEOUT",
        default_value_t = 604800
    )]
    pub failover_timeout: u64,
    /// Milliseconds a task may take to reach TASK_RUNNING before it is killed and replaced.
    #[arg(
        long = "task_launch_timeout",
        alias = "task-launch-timeout",
        env = "MARATHON_TASK_LAUNCH_TIMEOUT",
        default_value_t = 300000
    )]
    pub task_launch_timeout: u64,
    #[arg(
        long = "reconciliation_initial_delay",
        alias = "reconciliation-initial-delay",
        env = "MARATHON_RECONCILIATION_INITIAL_DELAY",
        default_value_t = 15000
    )]
    pub reconciliation_initial_delay: u64,
    #[arg(
        long = "reconciliation_interval",
        alias = "reconciliation-interval",
        env = "MARATHON_RECONCILIATION_INTERVAL",
        default_value_t = 600000
    )]
    pub reconciliation_interval: u64,
    #[arg(
        long = "scale_apps_initial_delay",
        alias = "scale-apps-initial-delay",
        env = "MARATHON_SCALE_APPS_INITIAL_DELAY",
        default_value_t = 15000
    )]
    pub scale_apps_initial_delay: u64,
    #[arg(
        long = "scale_apps_interval",
        alias = "scale-apps-interval",
        env = "MARATHON_SCALE_APPS_INTERVAL",
        default_value_t = 300000
    )]
    pub scale_apps_interval: u64,
    /// ZooKeeper session timeout, milliseconds.
    #[arg(
        long = "zk_session_timeout",
        alias = "zk-session-timeout",
        env = "MARATHON_ZK_SESSION_TIMEOUT",
        default_value_t = 10000
    )]
    pub zk_session_timeout: u64,
    /// ZooKeeper operation timeout, milliseconds.
    #[arg(
        long = "zk_timeout",
        alias = "zk-timeout",
        env = "MARATHON_ZK_TIMEOUT",
        default_value_t = 10000
    )]
    pub zk_timeout: u64,
    #[arg(
        long = "zk_max_versions",
        alias = "zk-max-versions",
        env = "MARATHON_ZK_MAX_VERSIONS",
        default_value_t = 50
    )]
    pub zk_max_versions: u32,
    #[arg(
        long = "mesos_role",
        alias = "mesos-role",
        env = "MARATHON_MESOS_ROLE",
        default_value = "*"
    )]
    pub mesos_role: String,
    /// Default: the user tepui runs as.
    #[arg(long = "mesos_user", alias = "mesos-user", env = "MARATHON_MESOS_USER")]
    pub mesos_user: Option<String>,
    #[arg(
        long = "local_port_min",
        alias = "local-port-min",
        env = "MARATHON_LOCAL_PORT_MIN",
        default_value_t = 10000
    )]
    pub local_port_min: u32,
    #[arg(
        long = "local_port_max",
        alias = "local-port-max",
        env = "MARATHON_LOCAL_PORT_MAX",
        default_value_t = 20000
    )]
    pub local_port_max: u32,
    #[arg(
        long = "max_instances_per_offer",
        alias = "max-instances-per-offer",
        env = "MARATHON_MAX_INSTANCES_PER_OFFER",
        default_value_t = 5
    )]
    pub max_instances_per_offer: u32,
    #[arg(
        long = "max_running_deployments",
        alias = "max-running-deployments",
        env = "MARATHON_MAX_RUNNING_DEPLOYMENTS",
        default_value_t = 100
    )]
    pub max_running_deployments: u32,
    /// Milliseconds offers that fit nothing are declined for.
    #[arg(
        long = "decline_offer_duration",
        alias = "decline-offer-duration",
        env = "MARATHON_DECLINE_OFFER_DURATION",
        default_value_t = 120000
    )]
    pub decline_offer_duration: u64,
    #[arg(
        long = "leader_proxy_connection_timeout",
        alias = "leader-proxy-connection-timeout",
        env = "MARATHON_LEADER_PROXY_CONNECTION_TIMEOUT",
        default_value_t = 5000
    )]
    pub leader_proxy_connection_timeout: u64,
    #[arg(
        long = "leader_proxy_read_timeout",
        alias = "leader-proxy-read-timeout",
        env = "MARATHON_LEADER_PROXY_READ_TIMEOUT",
        default_value_t = 10000
    )]
    pub leader_proxy_read_timeout: u64,
    /// Single instance: no election (state still in ZooKeeper unless --zk is empty... see README).
    #[arg(
        long = "disable_ha",
        alias = "disable-ha",
        env = "MARATHON_DISABLE_HA",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub disable_ha: bool,
}

/// Checked flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub master: String,
    pub zk: election::ZkUrl,
    pub hostname: String,
    pub http_address: std::net::IpAddr,
    pub http_port: u16,
    pub framework_name: String,
    pub failover_timeout: Duration,
    pub task_launch_timeout: Duration,
    pub reconciliation_initial_delay: Duration,
    pub reconciliation_interval: Duration,
    pub scale_apps_initial_delay: Duration,
    pub scale_apps_interval: Duration,
    pub zk_session_timeout: Duration,
    pub zk_timeout: Duration,
    pub zk_max_versions: u32,
    pub mesos_role: String,
    pub mesos_user: String,
    pub local_port_min: u32,
    pub local_port_max: u32,
    pub max_instances_per_offer: u32,
    pub max_running_deployments: u32,
    pub decline_offer_duration: Duration,
    pub leader_proxy_connection_timeout: Duration,
    pub leader_proxy_read_timeout: Duration,
    pub disable_ha: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct FlagError {
    pub flag: &'static str,
    pub message: String,
}

fn flag_error(flag: &'static str, message: impl Into<String>) -> FlagError {
    FlagError {
        flag,
        message: message.into(),
    }
}

impl MarathonFlags {
    pub fn check(&self) -> Result<Config, FlagError> {
        if self.master.trim().is_empty() {
            return Err(flag_error(
                "master",
                "is required: zk://host:2181/mesos or host:5050",
            ));
        }
        if !election::is_zk(&self.master) && !self.master.contains(':') {
            return Err(flag_error(
                "master",
                format!("'{}' is neither zk://... nor host:port", self.master),
            ));
        }
        let zk = election::ZkUrl::parse(&self.zk).map_err(|e| flag_error("zk", e.to_string()))?;
        let http_address: std::net::IpAddr = self.http_address.parse().map_err(|_| {
            flag_error(
                "http_address",
                format!("'{}' is not an IP address", self.http_address),
            )
        })?;
        if self.local_port_min > self.local_port_max || self.local_port_max > 65535 {
            return Err(flag_error(
                "local_port_max",
                format!(
                    "the range {}..{} is empty or beyond 65535",
                    self.local_port_min, self.local_port_max
                ),
            ));
        }
        if self.max_instances_per_offer == 0 {
            return Err(flag_error("max_instances_per_offer", "must be at least 1"));
        }
        if self.zk_max_versions == 0 {
            return Err(flag_error("zk_max_versions", "must be at least 1"));
        }
        let hostname = match &self.hostname {
            Some(h) if !h.trim().is_empty() => h.trim().to_string(),
            Some(_) => return Err(flag_error("hostname", "is empty")),
            None if http_address.is_unspecified() => "127.0.0.1".to_string(),
            None => http_address.to_string(),
        };
        let ms = Duration::from_millis;
        Ok(Config {
            master: self.master.clone(),
            zk,
            hostname,
            http_address,
            http_port: self.http_port,
            framework_name: self.framework_name.clone(),
            failover_timeout: Duration::from_secs(self.failover_timeout),
            task_launch_timeout: ms(self.task_launch_timeout),
            reconciliation_initial_delay: ms(self.reconciliation_initial_delay),
            reconciliation_interval: ms(self.reconciliation_interval),
            scale_apps_initial_delay: ms(self.scale_apps_initial_delay),
            scale_apps_interval: ms(self.scale_apps_interval),
            zk_session_timeout: ms(self.zk_session_timeout),
            zk_timeout: ms(self.zk_timeout),
            zk_max_versions: self.zk_max_versions,
            mesos_role: self.mesos_role.clone(),
            mesos_user: self.mesos_user.clone().unwrap_or_else(current_user),
            local_port_min: self.local_port_min,
            local_port_max: self.local_port_max,
            max_instances_per_offer: self.max_instances_per_offer,
            max_running_deployments: self.max_running_deployments,
            decline_offer_duration: ms(self.decline_offer_duration),
            leader_proxy_connection_timeout: ms(self.leader_proxy_connection_timeout),
            leader_proxy_read_timeout: ms(self.leader_proxy_read_timeout),
            disable_ha: self.disable_ha,
        })
    }
}

/// The user this process runs as (`$USER`, else `root` for uid 0, else the uid).
fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        flags: MarathonFlags,
    }

    fn parse(args: &[&str]) -> Result<Config, FlagError> {
        let mut argv = vec!["marathon"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("clap accepts")
            .flags
            .check()
    }

    #[test]
    fn defaults_are_marathons() {
        let config = parse(&[
            "--master",
            "zk://127.0.0.1:2181/mesos",
            "--zk",
            "zk://127.0.0.1:2181/marathon",
        ])
        .unwrap();
        assert_eq!(config.http_port, 8080);
        assert_eq!(config.framework_name, "marathon");
        assert_eq!(config.failover_timeout, Duration::from_secs(604800));
        assert_eq!(config.task_launch_timeout, Duration::from_millis(300000));
        assert_eq!(config.zk_max_versions, 50);
        assert_eq!(config.mesos_role, "*");
        assert_eq!(
            (config.local_port_min, config.local_port_max),
            (10000, 20000)
        );
        assert_eq!(config.hostname, "127.0.0.1");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = parse(&["--master", "nonsense"]).unwrap_err();
        assert_eq!(err.flag, "master");
        let err = parse(&["--master", "h:5050", "--zk", "http://x"]).unwrap_err();
        assert_eq!(err.flag, "zk");
        let err = parse(&[
            "--master",
            "h:5050",
            "--local_port_min",
            "30000",
            "--local_port_max",
            "20000",
        ])
        .unwrap_err();
        assert_eq!(err.flag, "local_port_max");
        let err = parse(&["--master", "h:5050", "--http_address", "not-an-ip"]).unwrap_err();
        assert_eq!(err.flag, "http_address");
    }
}
