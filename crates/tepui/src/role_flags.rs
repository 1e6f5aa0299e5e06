//! The command line of `tepui master|agent|marathon`, assembled from every configuration source
//! before clap parses it: the command line, `MESOS_*` / `MARATHON_*` variables, `--config_dir`
//! and `file://` values, in the precedence `crates/config` documents. clap then sees one
//! `--name=value` per flag, so its own `env` fallback never overrides that precedence. Other
//! subcommands, `--help` and `--version` go to clap untouched.

use clap::Arg;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Exit code of every configuration error (as clap uses for usage errors).
const EXIT_USAGE: u8 = 2;

/// Parses the process's arguments into `T`; on a configuration error prints it as one line and
/// returns the exit code.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    let command = with_config_dir(T::command());
    let args: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(arg) => {
            eprintln!("error: argument {arg:?} is not UTF-8; flags and their values must be");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let args = match assemble(&command, args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let matches = command
        .try_get_matches_from(args)
        .unwrap_or_else(|e| e.exit());
    T::from_arg_matches(&matches).map_err(|e| e.exit())
}

/// Adds `--config_dir` to the roles that read one, so `--help` shows it and clap accepts it.
fn with_config_dir(command: clap::Command) -> clap::Command {
    ["master", "agent", "marathon"].into_iter().fold(command, |command, role| {
        command.mut_subcommand(role, |sub| {
            sub.arg(
                Arg::new(config::CONFIG_DIR_FLAG)
                    .long(config::CONFIG_DIR_FLAG)
                    .value_name("DIR")
                    .help("Directory with one file per flag, as /etc/mesos-master or /etc/marathon/conf (also MESOS_CONFIG_DIR / MARATHON_CONFIG_DIR)"),
            )
        })
    })
}

/// `tepui <role> <flags>` rewritten with every source's value; other command lines unchanged.
fn assemble(
    command: &clap::Command,
    args: Vec<String>,
) -> Result<Vec<String>, config::ConfigError> {
    let Some(role) = args
        .get(1)
        .and_then(|word| config::Role::from_command(word))
    else {
        return Ok(args);
    };
    let role_args = &args[2..];
    if role_args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"))
    {
        return Ok(args);
    }
    let Some(sub) = command.find_subcommand(role.command()) else {
        return Ok(args);
    };
    let flags = config::FlagSpec::from_clap(sub);
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(role.env_prefix()) || k.starts_with("TEPUI_"))
        .collect();
    let resolved = config::gather(role, &flags, role_args, &env)?;
    let mut assembled = vec![args[0].clone(), args[1].clone()];
    assembled.extend(resolved.to_args());
    Ok(assembled)
}
