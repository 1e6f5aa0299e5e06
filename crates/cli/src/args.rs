//! The verbs and their options (clap). `GlobalArgs` is defined once and flattened into every
//! verb, so `--master`, `--marathon` and `--json` go anywhere after the verb.

use crate::EXIT_CODES_HELP;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The master when neither `--master`, `TEPUI_MASTER` nor `MESOS_MASTER` names one.
pub const MASTER_DEFAULT: &str = "127.0.0.1:5050";

#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// The masters: zk://host:port[,host:port...]/path (the leader is found in ZooKeeper), or
    /// host:port / http://host:port (redirects are followed to the leader). Default: env
    /// TEPUI_MASTER, then MESOS_MASTER, then 127.0.0.1:5050.
    #[arg(long, env = "TEPUI_MASTER", value_name = "ADDR")]
    pub master: Option<String>,
    /// Marathon's address, e.g. http://host:8080 (any instance: standbys proxy to the leader).
    /// Default: with --master zk://hosts/path, the Marathon leader in zk://hosts/marathon;
    /// otherwise http://<master host>:8080.
    #[arg(long, env = "TEPUI_MARATHON", value_name = "URL")]
    pub marathon: Option<String>,
    /// Machine-readable output: the JSON documents, one per line.
    #[arg(long)]
    pub json: bool,
}

impl GlobalArgs {
    /// `--master`, else `TEPUI_MASTER` (read by clap), else `MESOS_MASTER`, else the default.
    pub fn master_address(&self) -> String {
        self.master
            .clone()
            .or_else(|| {
                std::env::var("MESOS_MASTER")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
            })
            .unwrap_or_else(|| MASTER_DEFAULT.to_string())
    }
}

/// The client verbs, flattened into `tepui`'s top-level commands.
#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// Show the cluster: leading master, standbys, quorum, agents, resources, Marathon leader.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(GlobalArgs),
    /// List agents: id, address, active, cpus/mem/disk used/total.
    #[command(after_help = EXIT_CODES_HELP)]
    Agents(GlobalArgs),
    /// List frameworks: id, name, active, tasks, cpus/mem used.
    #[command(after_help = EXIT_CODES_HELP)]
    Frameworks(GlobalArgs),
    /// List tasks known to the leading master (running, staging, unreachable).
    #[command(after_help = EXIT_CODES_HELP)]
    Tasks(TasksArgs),
    /// Marathon apps: add, list, show, scale, restart, remove.
    #[command(subcommand)]
    App(AppCommand),
    /// Marathon deployments: list, watch.
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Tasks' sandboxes: logs.
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Args, Debug, Clone)]
pub struct TasksArgs {
    /// Also list completed tasks (finished, failed, killed...).
    #[arg(long)]
    pub completed: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options of a verb that starts a deployment.
#[derive(Args, Debug, Clone, Default)]
pub struct DeployArgs {
    /// Cancel deployments that hold the app instead of being refused (409).
    #[arg(long)]
    pub force: bool,
    /// Return once the deployment started, without following it.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AppCommand {
    /// Create an app from a JSON definition (FILE or - for stdin) and follow its deployment.
    #[command(after_help = EXIT_CODES_HELP)]
    Add {
        /// The app definition (Marathon's JSON), or - to read stdin.
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
        /// Return once the deployment started, without following it.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// List apps: instances running/wanted, healthy, cpus, mem, deployments.
    #[command(after_help = EXIT_CODES_HELP)]
    List(GlobalArgs),
    /// Show one app and its tasks.
    #[command(after_help = EXIT_CODES_HELP)]
    Show {
        /// The app id, e.g. /hello or hello.
        id: String,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Change the number of instances and follow the deployment.
    #[command(after_help = EXIT_CODES_HELP)]
    Scale {
        id: String,
        /// The number of instances wanted.
        instances: u32,
        #[command(flatten)]
        deploy: DeployArgs,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Replace every instance (rolling restart) and follow the deployment.
    #[command(after_help = EXIT_CODES_HELP)]
    Restart {
        id: String,
        #[command(flatten)]
        deploy: DeployArgs,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Stop every instance, delete the app and follow the deployment.
    #[command(after_help = EXIT_CODES_HELP)]
    Remove {
        id: String,
        #[command(flatten)]
        deploy: DeployArgs,
        #[command(flatten)]
        global: GlobalArgs,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum DeploymentCommand {
    /// List running deployments.
    #[command(after_help = EXIT_CODES_HELP)]
    List(GlobalArgs),
    /// Follow one deployment until it ends.
    #[command(after_help = EXIT_CODES_HELP)]
    Watch {
        /// The deployment id.
        id: String,
        #[command(flatten)]
        global: GlobalArgs,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum TaskCommand {
    /// Print a task's sandbox stdout (or stderr), read through the leading master.
    #[command(after_help = EXIT_CODES_HELP)]
    Logs {
        /// The task id, or a prefix of it that only one task has.
        id: String,
        /// Keep printing new output until the task ends (or Ctrl-C).
        #[arg(long)]
        follow: bool,
        /// Read stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// How many of the last lines to print first.
        #[arg(long, default_value_t = 100, value_name = "N")]
        lines: usize,
        #[command(flatten)]
        global: GlobalArgs,
    },
}
