//! The `tepui` client verbs: what an operator of a Mesos/Marathon cluster runs instead of curl.
//!
//! `tepui status | agents | frameworks | tasks`, `tepui app add|list|show|scale|restart|remove`,
//! `tepui deployment list|watch` and `tepui task logs`. Each verb finds the leading master (in
//! ZooKeeper for `--master zk://...`, else by following the master's `/redirect`) and Marathon
//! (`--marathon`, else its leader latch in ZooKeeper, else `http://<master host>:8080`), asks the
//! public HTTP APIs only, and prints an aligned table, or the JSON documents with `--json`.
//!
//! Layout: `args` (clap: the verbs and the global options), `discovery` (leaders in ZooKeeper or
//! over HTTP), `http` (requests, and API answers turned into `CliError`s), `output/` (pure
//! formatting: tables, views of `/state` and Marathon documents, deployment progress),
//! `commands/` (one module per area: cluster, apps, deployments, logs).
//!
//! Exit codes scripts can rely on (`EXIT_*`, also in `tepui --help`):
//! 0 success; 1 the request was refused or the operation failed (4xx/5xx from an API, a
//! deployment failed or was cancelled); 2 usage error (bad flags, an unreadable or invalid
//! FILE.json); 3 the cluster cannot be reached or has no leader; 4 not found (app, task,
//! deployment).

mod args;
mod commands;
mod discovery;
mod error;
mod http;
pub mod output;

pub use args::{AppCommand, ClientCommand, DeploymentCommand, GlobalArgs, TaskCommand};
pub use error::CliError;

use std::process::ExitCode;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The request was refused or the operation failed: a 4xx/5xx answer, a deployment that failed
/// or was cancelled.
pub const EXIT_FAILED: u8 = 1;
/// Usage error: bad flags (clap's code), an unreadable or invalid FILE.json, an ambiguous id.
pub const EXIT_USAGE: u8 = 2;
/// The cluster cannot be reached or has no leader.
pub const EXIT_UNREACHABLE: u8 = 3;
/// The app, task or deployment does not exist.
pub const EXIT_NOT_FOUND: u8 = 4;

/// The exit codes as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes of the client verbs (status, agents, frameworks, tasks, app, deployment, task):
  0  success
  1  the request was refused or the operation failed (API error, deployment failed or cancelled)
  2  usage error (bad flags, unreadable or invalid FILE.json)
  3  the cluster cannot be reached or has no leader
  4  not found (app, task, deployment)";

/// Runs one client verb and returns its exit code; errors are printed on stderr.
pub async fn run(command: ClientCommand) -> ExitCode {
    match commands::run(command).await {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
