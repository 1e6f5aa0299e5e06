//! The verbs: `cluster` (status, agents, frameworks, tasks), `apps`, `deployments` (list, watch,
//! and following the deployment a change started), `logs` (a task's sandbox output).
//!
//! `Context` carries what every verb needs: the HTTP client, the global options and the parsed
//! `--master`; leaders are looked up only by the verbs that need them.

mod apps;
mod cluster;
mod deployments;
mod live_line;
mod logs;

use crate::args::{AppCommand, ClientCommand, DeploymentCommand, GlobalArgs, TaskCommand};
use crate::discovery::{self, MasterAddress, Masters};
use crate::http::Http;
use crate::output::json_line;
use crate::CliError;
use serde_json::Value;
use std::io::Write;

pub struct Context {
    pub http: Http,
    pub global: GlobalArgs,
    pub master: MasterAddress,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Context, CliError> {
        let master = discovery::parse_master(&global.master_address())?;
        if let Some(marathon) = &global.marathon {
            discovery::parse_marathon(marathon)?;
        }
        Ok(Context {
            http: Http::new()?,
            global,
            master,
        })
    }

    /// The leading master (and the standbys, with zk://).
    pub async fn masters(&self) -> Result<Masters, CliError> {
        discovery::find_masters(&self.http, &self.master).await
    }

    /// Marathon's base URL.
    pub async fn marathon(&self) -> Result<String, CliError> {
        discovery::find_marathon(&self.global, &self.master).await
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    /// Prints a document as one JSON line.
    pub fn print_json(&self, value: &Value) {
        emit(&format!("{}\n", json_line(value)));
    }
}

/// Writes to stdout and flushes; a closed pipe (`| head`) is not an error worth a panic.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// An app id as a URL path: without surrounding `/`, each byte outside the id alphabet
/// percent-encoded so that no id can add a query or fragment.
pub fn app_path(id: &str) -> Result<String, CliError> {
    let id = id.trim().trim_matches('/');
    if id.is_empty() {
        return Err(CliError::Usage("the app id is empty".into()));
    }
    Ok(id
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect())
}

pub async fn run(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Status(global) => cluster::status(&Context::new(global)?).await,
        ClientCommand::Agents(global) => cluster::agents(&Context::new(global)?).await,
        ClientCommand::Frameworks(global) => cluster::frameworks(&Context::new(global)?).await,
        ClientCommand::Tasks(args) => {
            cluster::tasks(&Context::new(args.global)?, args.completed).await
        }
        ClientCommand::App(command) => match command {
            AppCommand::Add {
                file,
                no_wait,
                global,
            } => apps::add(&Context::new(global)?, &file, no_wait).await,
            AppCommand::List(global) => apps::list(&Context::new(global)?).await,
            AppCommand::Show { id, global } => apps::show(&Context::new(global)?, &id).await,
            AppCommand::Scale {
                id,
                instances,
                deploy,
                global,
            } => apps::scale(&Context::new(global)?, &id, instances, &deploy).await,
            AppCommand::Restart { id, deploy, global } => {
                apps::restart(&Context::new(global)?, &id, &deploy).await
            }
            AppCommand::Remove { id, deploy, global } => {
                apps::remove(&Context::new(global)?, &id, &deploy).await
            }
        },
        ClientCommand::Deployment(command) => match command {
            DeploymentCommand::List(global) => deployments::list(&Context::new(global)?).await,
            DeploymentCommand::Watch { id, global } => {
                deployments::watch(&Context::new(global)?, &id).await
            }
        },
        ClientCommand::Task(TaskCommand::Logs {
            id,
            follow,
            stderr,
            lines,
            global,
        }) => {
            let options = logs::LogOptions {
                follow,
                stderr,
                lines,
            };
            logs::logs(&Context::new(global)?, &id, options).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_cannot_escape_the_path() {
        assert_eq!(app_path("/prod/web/").unwrap(), "prod/web");
        assert_eq!(app_path("x?force=true#y").unwrap(), "x%3Fforce%3Dtrue%23y");
        assert_eq!(app_path(" / ").unwrap_err().exit_code(), crate::EXIT_USAGE);
    }
}
