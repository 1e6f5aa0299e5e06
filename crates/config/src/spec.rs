//! What a role's flags are: names, aliases, environment variables and whether a flag is boolean.
//!
//! The flag structs of `master`, `agent` and `marathon` stay the one definition of each role's
//! flags; `FlagSpec::from_clap` reads them from clap's command so this crate never keeps a second
//! list that could drift.

/// Whether a flag takes a value or is a boolean (`--flag`, `--no-flag`, `--flag=true|false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    Value,
    Bool,
}

/// One flag of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSpec {
    /// The canonical name, as `/flags` shows it (`agent_ping_timeout`).
    pub name: String,
    /// Other names for the same flag (`slave_ping_timeout`, `work-dir`).
    pub aliases: Vec<String>,
    /// The environment variable clap reads (`MESOS_AGENT_PING_TIMEOUT`).
    pub env: Option<String>,
    pub kind: FlagKind,
}

impl FlagSpec {
    pub fn value(name: &str) -> FlagSpec {
        FlagSpec {
            name: name.to_string(),
            aliases: Vec::new(),
            env: None,
            kind: FlagKind::Value,
        }
    }

    pub fn boolean(name: &str) -> FlagSpec {
        FlagSpec {
            kind: FlagKind::Bool,
            ..FlagSpec::value(name)
        }
    }

    pub fn with_alias(mut self, alias: &str) -> FlagSpec {
        self.aliases.push(alias.to_string());
        self
    }

    pub fn with_env(mut self, env: &str) -> FlagSpec {
        self.env = Some(env.to_string());
        self
    }

    /// Every name the flag answers to, canonical first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The flags of one clap (sub)command, without `help` and `version`.
    pub fn from_clap(command: &clap::Command) -> Vec<FlagSpec> {
        command
            .get_arguments()
            .filter_map(|arg| {
                let name = arg.get_long()?;
                if name == "help" || name == "version" || name == crate::CONFIG_DIR_FLAG {
                    return None;
                }
                let takes_values = arg.get_action().takes_values();
                let possible: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect();
                let is_bool = !takes_values
                    || (possible.len() == 2
                        && possible.iter().all(|v| v == "true" || v == "false"));
                Some(FlagSpec {
                    name: name.to_string(),
                    aliases: arg
                        .get_all_aliases()
                        .unwrap_or_default()
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    env: arg.get_env().and_then(|e| e.to_str()).map(str::to_string),
                    kind: if is_bool {
                        FlagKind::Bool
                    } else {
                        FlagKind::Value
                    },
                })
            })
            .collect()
    }
}

/// Looks a flag up by any of its names; `-` and `_` are interchangeable, as in Mesos.
pub fn find<'a>(flags: &'a [FlagSpec], name: &str) -> Option<&'a FlagSpec> {
    let wanted = name.replace('-', "_");
    flags
        .iter()
        .find(|f| f.names().any(|n| n == name))
        .or_else(|| {
            flags
                .iter()
                .find(|f| f.names().any(|n| n.replace('-', "_") == wanted))
        })
}

/// The flag whose name is closest to `name`, if any is close enough to be a likely typo.
pub fn closest<'a>(flags: &'a [FlagSpec], name: &str) -> Option<&'a str> {
    let name = name.replace('-', "_");
    let name = name.as_str();
    let limit = 2.max(name.len() / 4);
    flags
        .iter()
        .flat_map(|f| {
            f.names()
                .map(move |n| (f.name.as_str(), edit_distance(name, &n.replace('-', "_"))))
        })
        .filter(|(_, d)| *d <= limit)
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_alias_and_dashes() {
        let flags = vec![
            FlagSpec::value("agent_ping_timeout").with_alias("slave_ping_timeout"),
            FlagSpec::value("work_dir"),
        ];
        assert_eq!(
            find(&flags, "slave_ping_timeout").unwrap().name,
            "agent_ping_timeout"
        );
        assert_eq!(find(&flags, "work-dir").unwrap().name, "work_dir");
        assert!(find(&flags, "quorum").is_none());
        assert_eq!(closest(&flags, "work_dri"), Some("work_dir"));
        assert_eq!(
            closest(&flags, "slave_ping_timout"),
            Some("agent_ping_timeout")
        );
        assert_eq!(closest(&flags, "zookeeper"), None);
    }

    #[test]
    fn reads_clap_flags() {
        let command = clap::Command::new("x")
            .arg(clap::Arg::new("zk").long("zk").env("MESOS_ZK"))
            .arg(
                clap::Arg::new("t")
                    .long("agent_ping_timeout")
                    .alias("slave_ping_timeout"),
            )
            .arg(
                clap::Arg::new("b")
                    .long("disable_ha")
                    .action(clap::ArgAction::SetTrue),
            )
            .arg(
                clap::Arg::new("l")
                    .long("log_auto_initialize")
                    .value_parser(clap::value_parser!(bool)),
            );
        let flags = FlagSpec::from_clap(&command);
        assert_eq!(flags[0], FlagSpec::value("zk").with_env("MESOS_ZK"));
        assert_eq!(flags[1].aliases, vec!["slave_ping_timeout".to_string()]);
        assert_eq!(flags[2].kind, FlagKind::Bool);
        assert_eq!(flags[3].kind, FlagKind::Bool);
    }
}
