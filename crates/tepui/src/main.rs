//! The `tepui` binary: one artifact for every role. `tepui master`, `tepui agent`, and `tepui dev`
//! (a master and an agent in one process for a laptop), and `tepui marathon` (the Marathon-compatible
//! service scheduler). Flags follow Mesos' (Marathon's) names; each can also be set as
//! `MESOS_<FLAG>` (`MARATHON_<FLAG>`) in the environment.

mod dev;
mod role_flags;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "tepui", version, about = "A highly available, Mesos-compatible cluster manager", after_help = cli::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a master (standalone without --zk: it elects itself).
    Master(master::MasterFlags),
    /// Run an agent that registers with a master and runs tasks.
    Agent(agent::AgentFlags),
    /// Run the Marathon-compatible service scheduler (a Mesos framework with the REST API v2).
    Marathon(marathon::MarathonFlags),
    /// Run a master and an agent on this machine, with nothing else installed.
    Dev(dev::DevFlags),
    /// Run the tutorial's HA cluster (3 masters with ZooKeeper and Marathon, 3 agents) on this machine.
    LocalCluster(local_cluster::LocalClusterArgs),
    /// (internal) The per-agent daemon that parents task processes; agents start it.
    #[command(hide = true)]
    Launcher(agent::LauncherFlags),
    /// Client verbs (status, agents, frameworks, tasks, app, deployment, task): the `cli` crate.
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// Exit code for a bad flag value (as clap uses for usage errors).
const EXIT_USAGE: u8 = 2;
/// Exit code of a master that lost leadership or its ZooKeeper session (fail-fast, mesos-ha.md
/// 3.2): distinct, so a supervisor or a test can tell it from a crash.
pub const EXIT_LOST_LEADERSHIP: u8 = 3;

/// `default` applies unless TEPUI_LOG says otherwise.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEPUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop this process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> ExitCode {
    // Role flags come from the command line, MESOS_*/MARATHON_*, --config_dir and file:// values.
    let cli: Cli = match role_flags::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // Client verbs print their own results; library chatter (ZooKeeper sessions) only on request.
    init_logging(if matches!(cli.command, Command::Client(_)) {
        "warn"
    } else {
        "info"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Master(flags) => match master::run(flags, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(master::MasterError::Flag(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(e @ master::MasterError::QuorumViolation(_)) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(e @ master::MasterError::LostLeadership(_)) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_LOST_LEADERSHIP)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Agent(flags) => {
                let detector = match flags.detector() {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(EXIT_USAGE);
                    }
                };
                match agent::run(flags, detector, shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Marathon(flags) => match marathon::run(flags, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                // Exit codes: marathon::exit (2 usage, 100 abdicated, 101 store failed, 103 lost
                // leadership, 105 ZooKeeper session, 108 framework id missing, 110 framework removed).
                Err(e @ marathon::MarathonError::Flag(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            },
            Command::Dev(flags) => dev::run(flags).await,
            Command::Client(command) => cli::run(command).await,
            Command::LocalCluster(args) => {
                ExitCode::from(local_cluster::run_cli(args, std::env::current_exe()).await)
            }
            Command::Launcher(flags) => match agent::run_launcher(flags).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e @ agent::LauncherError::BadFlag { .. }) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    })
}
