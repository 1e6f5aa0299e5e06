//! Merging the command line, the environment and a configuration directory into one value per
//! flag (the precedence of the crate docs), with `file://` values replaced by file contents. Pure:
//! the directory arrives already read (`dir`), and files named by `file://` are read through the
//! function the caller passes.

use crate::dir::{ConfigDir, EntryKind};
use crate::spec::{closest, find, FlagKind, FlagSpec};
use crate::{ConfigError, Role, CONFIG_DIR_FLAG};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a flag's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    /// The variable that set it (`MESOS_QUORUM`).
    Environment(String),
    /// The configuration file that set it (`/etc/mesos-master/quorum`, `/etc/mesos/zk`).
    ConfigFile(PathBuf),
}

impl Source {
    /// `the command line`, `MESOS_QUORUM`, `/etc/mesos-master/quorum`.
    pub fn describe(&self) -> String {
        match self {
            Source::CommandLine => "the command line".into(),
            Source::Environment(var) => var.clone(),
            Source::ConfigFile(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

/// The command line of one role, split into flags (by canonical name) and `--config_dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// Canonical name -> (the name as given, the value).
    pub values: BTreeMap<String, (String, String)>,
    pub config_dir: Option<String>,
}

/// What every source together sets, one value per flag (canonical names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub role: Role,
    pub values: BTreeMap<String, Setting>,
    pub config_dir: Option<PathBuf>,
}

impl Resolved {
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(|s| s.value.as_str())
    }

    /// ` (from /etc/mesos-master/quorum)` for values that did not come from the command line, so
    /// an error points at the file or variable to change.
    pub fn origin(&self, flag: &str) -> String {
        match self.values.get(flag).map(|s| &s.source) {
            Some(source @ (Source::Environment(_) | Source::ConfigFile(_))) => {
                format!(" (from {})", source.describe())
            }
            _ => String::new(),
        }
    }

    /// The command line clap parses: `--name=value` for every flag some source set.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(dir) = &self.config_dir {
            args.push(format!("--{CONFIG_DIR_FLAG}={}", dir.display()));
        }
        args.extend(
            self.values
                .iter()
                .map(|(name, setting)| format!("--{name}={}", setting.value)),
        );
        args
    }
}

/// Mesos' boolean spellings, normalized; an empty value means true (`--flag`, Marathon's empty
/// environment variable, an empty file).
fn boolean(flag: &str, value: &str) -> Result<String, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" => Ok("true".into()),
        "false" | "0" | "no" | "off" => Ok("false".into()),
        _ => Err(ConfigError::NotBoolean {
            flag: flag.to_string(),
            value: value.to_string(),
        }),
    }
}

fn unknown(role: Role, flags: &[FlagSpec], name: &str) -> ConfigError {
    ConfigError::UnknownFlag {
        flag: name.to_string(),
        role: role.command(),
        closest: closest(flags, name).map(str::to_string),
    }
}

/// Splits a role's command line (the words after `tepui <role>`). Unknown flags, missing values,
/// stray words and conflicting repetitions are errors naming the flag.
pub fn command_line(
    role: Role,
    flags: &[FlagSpec],
    args: &[String],
) -> Result<CommandLine, ConfigError> {
    let mut line = CommandLine::default();
    let mut words = args.iter().peekable();
    while let Some(word) = words.next() {
        let Some(body) = word.strip_prefix("--").filter(|b| !b.is_empty()) else {
            return Err(ConfigError::check(
                word.trim_start_matches('-'),
                format!(
                    "unexpected argument '{word}' for tepui {}; flags are written --name=value",
                    role.command()
                ),
            ));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == CONFIG_DIR_FLAG || name == "config-dir" {
            let value = match inline {
                Some(v) => v,
                None => words
                    .next()
                    .cloned()
                    .ok_or_else(|| ConfigError::MissingValue {
                        flag: CONFIG_DIR_FLAG.into(),
                    })?,
            };
            line.config_dir = Some(value);
            continue;
        }
        let (spec, value) = match find(flags, name) {
            Some(spec) => {
                let value = match (inline, spec.kind) {
                    (Some(v), FlagKind::Bool) => boolean(&spec.name, &v)?,
                    (Some(v), FlagKind::Value) => v,
                    (None, FlagKind::Bool) => match words.peek() {
                        Some(next) if matches!(next.as_str(), "true" | "false") => {
                            words.next().cloned().unwrap_or_default()
                        }
                        _ => "true".into(),
                    },
                    (None, FlagKind::Value) => match words.peek() {
                        Some(next) if !next.starts_with("--") => {
                            words.next().cloned().unwrap_or_default()
                        }
                        _ => {
                            return Err(ConfigError::MissingValue {
                                flag: name.to_string(),
                            })
                        }
                    },
                };
                (spec, value)
            }
            None => {
                // `--no-name` turns a boolean off (mesos-ha.md 4).
                let negated = name
                    .strip_prefix("no-")
                    .or_else(|| name.strip_prefix("no_"));
                match negated.and_then(|n| find(flags, n)) {
                    Some(spec) if spec.kind == FlagKind::Bool => {
                        if inline.is_some() {
                            return Err(ConfigError::check(
                                name,
                                format!("takes no value; write --{} or --{name}", spec.name),
                            ));
                        }
                        (spec, "false".into())
                    }
                    Some(spec) => {
                        return Err(ConfigError::check(
                            name,
                            format!(
                                "--{} is not a boolean, so it cannot be negated; give --{}=VALUE",
                                spec.name, spec.name
                            ),
                        ))
                    }
                    None => return Err(unknown(role, flags, name)),
                }
            }
        };
        match line.values.get(&spec.name) {
            None => {
                line.values
                    .insert(spec.name.clone(), (name.to_string(), value));
            }
            Some((first, _)) if first.replace('-', "_") != name.replace('-', "_") => {
                return Err(ConfigError::Conflict {
                    flag: name.to_string(),
                    what: format!("conflicts with --{first} (the same flag under another name)"),
                    fix: format!("give only --{}", spec.name),
                });
            }
            Some((_, earlier)) if *earlier != value => {
                return Err(ConfigError::Conflict {
                    flag: name.to_string(),
                    what: format!("given twice with different values ('{earlier}' and '{value}')"),
                    fix: "give it once".into(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(line)
}

/// The configuration directory: `--config_dir`, else `MESOS_CONFIG_DIR` / `MARATHON_CONFIG_DIR`.
pub fn config_dir(
    role: Role,
    line: &CommandLine,
    env: &BTreeMap<String, String>,
) -> Option<PathBuf> {
    let from_env = || {
        env.get(&format!("{}CONFIG_DIR", role.env_prefix()))
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    line.config_dir.clone().or_else(from_env).map(PathBuf::from)
}

/// The environment variables that set a flag: its own, and `<PREFIX><ALIAS>` for each alias.
fn env_names(role: Role, spec: &FlagSpec) -> Vec<String> {
    let mut names: Vec<String> = spec.env.iter().cloned().collect();
    for name in spec.names() {
        let var = format!(
            "{}{}",
            role.env_prefix(),
            name.replace('-', "_").to_ascii_uppercase()
        );
        if !names.contains(&var) {
            names.push(var);
        }
    }
    names
}

fn from_env(
    role: Role,
    spec: &FlagSpec,
    env: &BTreeMap<String, String>,
) -> Result<Option<Setting>, ConfigError> {
    let mut found: Option<Setting> = None;
    for var in env_names(role, spec) {
        let Some(raw) = env.get(&var) else { continue };
        let value = match spec.kind {
            FlagKind::Bool => boolean(&spec.name, raw)?,
            // An empty variable is a mistake clap would report as a parse error of ''.
            FlagKind::Value if raw.trim().is_empty() => {
                return Err(ConfigError::check(
                    &spec.name,
                    format!("{var} is set but empty; unset it or give it a value"),
                ))
            }
            FlagKind::Value => raw.clone(),
        };
        match &found {
            Some(first) if first.value != value => {
                return Err(ConfigError::Conflict {
                    flag: spec.name.clone(),
                    what: format!(
                        "{} and {var} are both set, to different values",
                        first.source.describe()
                    ),
                    fix: "unset one".into(),
                });
            }
            Some(_) => {}
            None => {
                found = Some(Setting {
                    value,
                    source: Source::Environment(var),
                })
            }
        }
    }
    Ok(found)
}

/// What a configuration directory sets, by canonical flag name.
fn from_dir(
    role: Role,
    flags: &[FlagSpec],
    dir: &ConfigDir,
) -> Result<BTreeMap<String, Setting>, ConfigError> {
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    for entry in &dir.entries {
        let bad = |message: String| ConfigError::BadFile {
            path: entry.path.clone(),
            message,
        };
        let (spec, value) = match &entry.kind {
            EntryKind::Dir(files) => {
                // mesos-ha.md 4.3: DIR/attributes/<key> and DIR/resources/<name> of the agent.
                let joined_flag = matches!(entry.name.as_str(), "attributes" | "resources")
                    && role == Role::Agent;
                let spec = find(flags, &entry.name).filter(|_| joined_flag).ok_or_else(|| {
                    bad("is a directory; only tepui agent reads attributes/ and resources/ directories; remove it".to_string())
                })?;
                if files.is_empty() {
                    continue;
                }
                let value = files
                    .iter()
                    .map(|(key, value, _)| format!("{key}:{value}"))
                    .collect::<Vec<_>>()
                    .join(";");
                (spec, value)
            }
            EntryKind::File(contents) => {
                if let Some(marker) = entry.name.strip_prefix('?') {
                    // mesos-ha.md 4.3: an empty `?flag` / `?no-flag` is the boolean `--flag` / `--no-flag`.
                    let (name, value) = match marker.strip_prefix("no-") {
                        Some(name) if find(flags, marker).is_none() => (name, "false"),
                        _ => (marker, "true"),
                    };
                    let spec = find(flags, name).ok_or_else(|| ConfigError::UnknownFile {
                        path: entry.path.clone(),
                        flag: name.to_string(),
                        role: role.command(),
                        closest: closest(flags, name).map(str::to_string),
                    })?;
                    if spec.kind != FlagKind::Bool {
                        return Err(bad(format!(
                            "marks a boolean, but --{} takes a value; write the value into {}",
                            spec.name,
                            dir.path.join(&spec.name).display()
                        )));
                    }
                    (spec, value.to_string())
                } else {
                    let spec =
                        find(flags, &entry.name).ok_or_else(|| ConfigError::UnknownFile {
                            path: entry.path.clone(),
                            flag: entry.name.clone(),
                            role: role.command(),
                            closest: closest(flags, &entry.name).map(str::to_string),
                        })?;
                    let value = match spec.kind {
                        FlagKind::Bool => boolean(&spec.name, contents).map_err(|_| {
                            bad(format!(
                                "'{contents}' is not a boolean for --{}; write true or false",
                                spec.name
                            ))
                        })?,
                        FlagKind::Value if contents.is_empty() => {
                            return Err(bad(format!(
                                "is empty; write the value of --{} into it or remove it",
                                spec.name
                            )))
                        }
                        FlagKind::Value => contents.clone(),
                    };
                    (spec, value)
                }
            }
        };
        if let Some(first) = settings.get(&spec.name) {
            return Err(ConfigError::Conflict {
                flag: spec.name.clone(),
                what: format!(
                    "set by both {} and {}",
                    first.source.describe(),
                    entry.path.display()
                ),
                fix: "remove one".into(),
            });
        }
        settings.insert(
            spec.name.clone(),
            Setting {
                value,
                source: Source::ConfigFile(entry.path.clone()),
            },
        );
    }
    Ok(settings)
}

/// Every flag's value by the precedence command line > environment > configuration directory
/// (then `DIR/../mesos/zk`), with `file://` values read through `read_file`.
pub fn resolve(
    role: Role,
    flags: &[FlagSpec],
    line: &CommandLine,
    env: &BTreeMap<String, String>,
    dir: Option<&ConfigDir>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Resolved, ConfigError> {
    let mut from_files = match dir {
        Some(dir) => from_dir(role, flags, dir)?,
        None => BTreeMap::new(),
    };
    let mut values = BTreeMap::new();
    for spec in flags {
        let setting = match line.values.get(&spec.name) {
            Some((_, value)) => Some(Setting {
                value: value.clone(),
                source: Source::CommandLine,
            }),
            None => match from_env(role, spec, env)? {
                Some(setting) => Some(setting),
                None => from_files.remove(&spec.name),
            },
        };
        if let Some(setting) = setting {
            values.insert(spec.name.clone(), setting);
        }
    }
    if let (Some(flag), Some((path, zk))) = (
        role.zk_sibling_flag(),
        dir.and_then(|d| d.zk_sibling.as_ref()),
    ) {
        if !values.contains_key(flag) && !zk.is_empty() {
            values.insert(
                flag.to_string(),
                Setting {
                    value: zk.clone(),
                    source: Source::ConfigFile(path.clone()),
                },
            );
        }
    }
    for (flag, setting) in values.iter_mut() {
        // Mesos' convention: `file:///path` stands for the file's contents.
        if let Some(path) = setting.value.strip_prefix("file://") {
            let contents = read_file(Path::new(path)).map_err(|e| ConfigError::FileUrl {
                flag: flag.clone(),
                url: format!("{} in {}", setting.value, setting.source.describe()),
                path: path.to_string(),
                message: e.to_string(),
            })?;
            setting.value = contents.trim().to_string();
        }
    }
    Ok(Resolved {
        role,
        values,
        config_dir: dir.map(|d| d.path.clone()),
    })
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
