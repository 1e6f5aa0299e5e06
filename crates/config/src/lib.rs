//! Where the flags of `tepui master`, `tepui agent` and `tepui marathon` come from, and the start-up
//! checks that catch classic misconfigurations before a process joins a cluster.
//!
//! # Configuration sources
//!
//! Every flag of a role can be set in four places; the first that sets it wins:
//!
//! 1. the command line: `--name=value`, `--name value`; booleans also as `--name` (true),
//!    `--no-name` (false) or `--name=true|false` (mesos-ha.md 4). `-` and `_` are interchangeable
//!    in names (`--work-dir`), and old names are aliases (`--slave_ping_timeout`);
//! 2. the environment: `MESOS_<NAME>` for master and agent, `MARATHON_<NAME>` for Marathon (upper
//!    case; an alias works too: `MESOS_SLAVE_PING_TIMEOUT`). An empty value sets a boolean to true
//!    (marathon-api.md 8.4);
//! 3. a configuration directory, `--config_dir=DIR` (or `MESOS_CONFIG_DIR` / `MARATHON_CONFIG_DIR`),
//!    laid out as the Mesos and Marathon packages lay out `/etc` (mesos-ha.md 4.3):
//!    - each regular file `DIR/<name>` gives `--<name>=<its contents, trimmed>`
//!      (`/etc/mesos-master/quorum` containing `2`);
//!    - an empty file `DIR/?<name>` gives `--<name>=true`, `DIR/?no-<name>` gives `--<name>=false`;
//!      an empty file named after a boolean flag also gives true (Marathon's convention);
//!    - for the agent, the files of `DIR/attributes/<key>` and `DIR/resources/<name>` are joined as
//!      `key:value;...` into `--attributes` and `--resources`;
//!    - for master and agent, when no source sets `--zk` (master) or `--master` (agent), the file
//!      `DIR/../mesos/zk` (i.e. `/etc/mesos/zk`) does, as `mesos-init-wrapper` does;
//!    - files are read in sorted order; dot-files and editor or package backups (`*~`, `*.dpkg-*`,
//!      `*.rpmnew`, `*.rpmsave`) are skipped; a file that names no flag of the role, or cannot be
//!      read, is an error naming the file and the flag;
//! 4. the flag's default.
//!
//! Any value of the form `file:///path`, from any source, is replaced by the contents of that file,
//! trimmed (Mesos' convention, mesos-ha.md 2.1 and 4): `--zk=file:///etc/mesos/zk`.
//!
//! The result is handed to clap as a normalized command line (`Resolved::to_args`), one
//! `--name=value` per flag set by any source, so clap's own `env` handling never sees a value this
//! crate did not choose and the precedence above is the only one.
//!
//! # Errors and checks
//!
//! Every error prints as one line, `--flag: what is wrong; how to fix it` (or `<file>: ...` for a
//! configuration file), and the binary exits with code 2:
//!
//! - unknown flags, on the command line or as a file name (with the closest flag, `did you mean
//!   --quorum?`); unreadable files; an unreadable `file://` path;
//! - conflicts: a flag given twice with different values; a flag and its alias both given (on the
//!   command line, in the environment or as two files); `--quorum` without `--zk` or with
//!   `--registry=in_memory`; `--log_auto_initialize` with `--registry=in_memory` (each would be
//!   ignored silently);
//! - start-up checks (`checks`): a loopback address (`--ip`, `--advertise_ip`, the address the
//!   hostname resolves to, or the agent's default `127.0.0.1`; Marathon's `--hostname`) advertised
//!   while `--zk` / `--master` names another machine (all-loopback setups pass); `--quorum=0`; a
//!   missing `--work_dir` (master with the replicated log, agent always) or one that cannot be
//!   created or written; a missing `--master` (agent, Marathon).
//!
//! Once connected, a master also refuses a `--quorum` that is not a majority of the masters
//! registered in ZooKeeper (`crates/master/src/server.rs`, exit 2), which no static check can see.

pub mod checks;
pub mod dir;
pub mod host;
pub mod sources;
pub mod spec;

pub use checks::check;
pub use dir::{read_config_dir, ConfigDir, DirEntry};
pub use host::HostFacts;
pub use sources::{command_line, config_dir, resolve, CommandLine, Resolved, Setting, Source};
pub use spec::{FlagKind, FlagSpec};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Every source of `role`'s flags together: splits `args` (the words after `tepui <role>`), reads
/// the configuration directory and `file://` values, and runs the start-up checks (`check`,
/// `check_work_dir`). `env` is the process environment.
pub fn gather(
    role: Role,
    flags: &[FlagSpec],
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Resolved, ConfigError> {
    let line = command_line(role, flags, args)?;
    let dir = match config_dir(role, &line, env) {
        Some(path) => Some(read_config_dir(&path)?),
        None => None,
    };
    let resolved = resolve(role, flags, &line, env, dir.as_ref(), &|path| {
        std::fs::read_to_string(path)
    })?;
    check(&resolved, &HostFacts::of_this_host())?;
    checks::check_work_dir(&resolved)?;
    Ok(resolved)
}

/// The roles whose flags this crate assembles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Agent,
    Marathon,
}

impl Role {
    /// The subcommand word (`tepui master`).
    pub fn command(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Agent => "agent",
            Role::Marathon => "marathon",
        }
    }

    pub fn from_command(word: &str) -> Option<Role> {
        match word {
            "master" => Some(Role::Master),
            "agent" => Some(Role::Agent),
            "marathon" => Some(Role::Marathon),
            _ => None,
        }
    }

    /// Prefix of the role's environment variables.
    pub fn env_prefix(self) -> &'static str {
        match self {
            Role::Master | Role::Agent => "MESOS_",
            Role::Marathon => "MARATHON_",
        }
    }

    /// The flag that `DIR/../mesos/zk` fills when nothing else sets it (mesos-ha.md 4.3).
    pub fn zk_sibling_flag(self) -> Option<&'static str> {
        match self {
            Role::Master => Some("zk"),
            Role::Agent => Some("master"),
            Role::Marathon => None,
        }
    }
}

/// The flag that names the configuration directory; consumed here, shown by clap's help.
pub const CONFIG_DIR_FLAG: &str = "config_dir";

/// Everything that keeps a role from starting, each printed as one line with its fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag}: unknown flag for tepui {role}{}", suggestion(.closest))]
    UnknownFlag {
        flag: String,
        role: &'static str,
        closest: Option<String>,
    },
    #[error("{}: unknown flag --{flag} for tepui {role}{}", .path.display(), suggestion(.closest))]
    UnknownFile {
        path: PathBuf,
        flag: String,
        role: &'static str,
        closest: Option<String>,
    },
    #[error("{}: cannot read it ({message}); fix its permissions or remove it", .path.display())]
    UnreadableFile { path: PathBuf, message: String },
    #[error("{}: {message}", .path.display())]
    BadFile { path: PathBuf, message: String },
    #[error("--{flag}: needs a value (--{flag}=VALUE)")]
    MissingValue { flag: String },
    #[error("--{flag}: '{value}' is not a boolean; use true or false")]
    NotBoolean { flag: String, value: String },
    #[error("--{flag}: {what}; {fix}")]
    Conflict {
        flag: String,
        what: String,
        fix: String,
    },
    #[error("--{flag}: cannot read {path} (from {url}): {message}; fix the path or give the value itself")]
    FileUrl {
        flag: String,
        url: String,
        path: String,
        message: String,
    },
    /// A start-up check failed (`checks`).
    #[error("--{flag}: {message}")]
    Check { flag: String, message: String },
}

fn suggestion(closest: &Option<String>) -> String {
    match closest {
        Some(name) => format!("; did you mean --{name}?"),
        None => String::new(),
    }
}

impl ConfigError {
    pub(crate) fn check(flag: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Check {
            flag: flag.to_string(),
            message: message.into(),
        }
    }
}
