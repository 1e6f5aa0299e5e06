//! The `tepui local-cluster` command line: `[up] [--masters 3] [--agents 3] [--ip_prefix 127.0.1]
//! [--dir DIR] [--marathon true|false] [--zk_session_timeout 4secs]`, and the `status`,
//! `kill-leader [--marathon]` and `stop` verbs. Values are checked while parsing, so a bad one is a
//! usage error naming its flag.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Most masters (and so ZooKeeper nodes): addresses `<prefix>.1-7` and `<prefix>.11-17`.
pub const MASTERS_MAX: u32 = 7;
/// Most agents: addresses `<prefix>.101-199`.
pub const AGENTS_MAX: u32 = 99;

#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalClusterArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Flags of `up` (the default verb).
    #[command(flatten)]
    pub up: UpFlags,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Start the cluster and supervise it in the foreground (the default; Ctrl-C stops it).
    Up(UpFlags),
    /// Print the servers of the running cluster, alive or dead, and who leads.
    Status(DirFlag),
    /// SIGKILL the leading master (or Marathon leader) to watch a failover.
    KillLeader(KillLeaderFlags),
    /// Stop the running cluster (SIGTERM to its supervisor) and wait until it has gone.
    Stop(DirFlag),
}

#[derive(clap::Args, Debug, Clone)]
#[command(rename_all = "snake_case")]
pub struct UpFlags {
    /// How many masters, each with a ZooKeeper node and a Marathon; odd so a majority is defined.
    #[arg(long, default_value_t = 3, value_parser = parse_masters)]
    pub masters: u32,
    /// How many agents.
    #[arg(long, default_value_t = 3, value_parser = parse_agents)]
    pub agents: u32,
    /// First three octets of the servers' addresses (a Linux loopback takes any 127.x.y.z).
    #[arg(long, default_value = "127.0.1", value_parser = parse_ip_prefix)]
    pub ip_prefix: IpPrefix,
    /// Where logs, work directories and cluster.json go (default: $XDG_RUNTIME_DIR/tepui-local-cluster
    /// or /tmp/tepui-local-cluster-<uid>).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run a Marathon beside each master.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub marathon: bool,
    /// ZooKeeper session timeout of masters, agents and Marathons (Mesos duration).
    #[arg(long, default_value = "4secs", value_parser = parse_session_timeout)]
    pub zk_session_timeout: SessionTimeout,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DirFlag {
    /// The cluster's directory (default as for `up`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct KillLeaderFlags {
    /// Kill the Marathon leader instead of the leading master.
    #[arg(long)]
    pub marathon: bool,
    #[command(flatten)]
    pub dir: DirFlag,
}

impl DirFlag {
    pub fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_dir)
    }
}

impl UpFlags {
    pub fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_dir)
    }
}

/// `$XDG_RUNTIME_DIR/tepui-local-cluster`, else `/tmp/tepui-local-cluster-<uid>`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(runtime) if !runtime.is_empty() => PathBuf::from(runtime).join("tepui-local-cluster"),
        _ => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            PathBuf::from(format!("/tmp/tepui-local-cluster-{uid}"))
        }
    }
}

/// Three octets `a.b.c`; server addresses are `a.b.c.<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix(pub [u8; 3]);

impl IpPrefix {
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        let [a, b, c] = self.0;
        Ipv4Addr::new(a, b, c, last)
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}")
    }
}

/// The session timeout as given (passed on to masters and agents) and in milliseconds (Marathon).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTimeout {
    pub text: String,
    pub millis: u64,
}

fn parse_masters(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))?;
    if n & 1 == 0 {
        return Err(format!(
            "must be odd (1, 3, 5, 7), not {n}: the masters' quorum is masters/2+1, and an even count \
             tolerates no more failures than the odd count below it"
        ));
    }
    if n > MASTERS_MAX {
        return Err(format!(
            "at most {MASTERS_MAX} masters fit the address plan, not {n}"
        ));
    }
    Ok(n)
}

fn parse_agents(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))?;
    if n == 0 || n > AGENTS_MAX {
        return Err(format!("must be between 1 and {AGENTS_MAX}, not {n}"));
    }
    Ok(n)
}

fn parse_ip_prefix(text: &str) -> Result<IpPrefix, String> {
    let parts: Vec<&str> = text.split('.').collect();
    let bad = || {
        format!("'{text}' is not three octets such as 127.0.1 (servers get <prefix>.1, <prefix>.11, ...)")
    };
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut octets = [0u8; 3];
    for (slot, part) in octets.iter_mut().zip(&parts) {
        *slot = part.parse().map_err(|_| bad())?;
    }
    Ok(IpPrefix(octets))
}

fn parse_session_timeout(text: &str) -> Result<SessionTimeout, String> {
    let secs = proto::parse_duration_secs(text)?;
    if !(0.1..=600.0).contains(&secs) {
        return Err(format!("'{text}' must be between 100ms and 10mins"));
    }
    Ok(SessionTimeout {
        text: text.trim().to_string(),
        millis: (secs * 1000.0).round() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LocalClusterArgs,
    }

    fn parse(args: &[&str]) -> Result<LocalClusterArgs, String> {
        let argv = std::iter::once("local-cluster").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_the_tutorial() {
        let args = parse(&[]).unwrap();
        assert!(args.action.is_none());
        assert_eq!((args.up.masters, args.up.agents), (3, 3));
        assert_eq!(args.up.ip_prefix.ip(1).to_string(), "127.0.1.1");
        assert!(args.up.marathon);
        assert_eq!(args.up.zk_session_timeout.millis, 4000);
    }

    #[test]
    fn up_takes_flags_before_or_after_the_verb() {
        let bare = parse(&[
            "--masters",
            "5",
            "--ip_prefix",
            "127.0.42",
            "--marathon",
            "false",
        ])
        .unwrap();
        assert_eq!(bare.up.masters, 5);
        assert!(!bare.up.marathon);
        let verb = parse(&["up", "--agents", "2", "--dir", "/tmp/x"]).unwrap();
        match verb.action {
            Some(Action::Up(flags)) => {
                assert_eq!(flags.agents, 2);
                assert_eq!(flags.dir(), PathBuf::from("/tmp/x"));
            }
            other => panic!("expected up, got {other:?}"),
        }
    }

    #[test]
    fn even_masters_is_an_error_naming_the_flag_and_why() {
        let err = parse(&["--masters", "2"]).unwrap_err();
        assert!(err.contains("--masters"), "{err}");
        assert!(err.contains("must be odd"), "{err}");
        assert!(parse(&["--masters", "9"])
            .unwrap_err()
            .contains("at most 7"));
    }

    #[test]
    fn bad_prefix_and_timeout_name_their_flags() {
        let err = parse(&["--ip_prefix", "127.0.1.5"]).unwrap_err();
        assert!(
            err.contains("--ip_prefix") && err.contains("three octets"),
            "{err}"
        );
        let err = parse(&["--zk_session_timeout", "soon"]).unwrap_err();
        assert!(err.contains("--zk_session_timeout"), "{err}");
    }

    #[test]
    fn verbs_parse() {
        match parse(&["kill-leader", "--marathon", "--dir", "/d"])
            .unwrap()
            .action
        {
            Some(Action::KillLeader(k)) => {
                assert!(k.marathon);
                assert_eq!(k.dir.dir(), PathBuf::from("/d"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["status"]).unwrap().action,
            Some(Action::Status(_))
        ));
        assert!(matches!(
            parse(&["stop", "--dir", "/d"]).unwrap().action,
            Some(Action::Stop(_))
        ));
    }
}
