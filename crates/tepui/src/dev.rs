//! `tepui dev`: a master, an agent and Marathon in one process on one address, for trying tepui or
//! developing against it with nothing else installed (like `nomad agent -dev`). Marathon keeps its
//! state in memory (no ZooKeeper) and has no election. Ctrl-C stops everything; the agent
//! kills its tasks first (`--kill_tasks_on_stop`) and stops its launcher daemon, so no process is
//! left behind.

use clap::Parser;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(clap::Args, Debug, Clone)]
#[command(rename_all = "snake_case")]
pub struct DevFlags {
    /// Address both servers listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: Ipv4Addr,
    /// The master's port.
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// The agent's port.
    #[arg(long, default_value_t = 5051)]
    pub agent_port: u16,
    /// Where sandboxes go (default: a new directory under the system's temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The agent's resources (default: detected).
    #[arg(long)]
    pub resources: Option<String>,
    /// The agent's `--isolation` (default: the agent's, `posix/cpu,posix/mem`).
    #[arg(long)]
    pub isolation: Option<String>,
    /// Marathon's REST API and UI port; 0 runs no Marathon.
    #[arg(long, default_value_t = 8080)]
    pub marathon_port: u16,
}

#[derive(Parser)]
struct MasterOnly {
    #[command(flatten)]
    flags: master::MasterFlags,
}

#[derive(Parser)]
struct AgentOnly {
    #[command(flatten)]
    flags: agent::AgentFlags,
}

pub async fn run(flags: DevFlags) -> ExitCode {
    if flags.port == flags.agent_port {
        eprintln!(
            "error: --port and --agent_port must differ (both are {})",
            flags.port
        );
        return ExitCode::from(2);
    }
    if flags.marathon_port != 0
        && (flags.marathon_port == flags.port || flags.marathon_port == flags.agent_port)
    {
        eprintln!(
            "error: --marathon_port must differ from --port and --agent_port (it is {})",
            flags.marathon_port
        );
        return ExitCode::from(2);
    }
    let work_dir = flags
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tepui-dev-{}", std::process::id())));
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        eprintln!(
            "error: --work_dir: cannot create {}: {e}",
            work_dir.display()
        );
        return ExitCode::from(2);
    }
    let ip = flags.ip.to_string();
    let master_address = format!("{ip}:{}", flags.port);
    let master_flags = match MasterOnly::try_parse_from([
        "master".to_string(),
        format!("--ip={ip}"),
        format!("--port={}", flags.port),
        "--registry=in_memory".to_string(),
    ]) {
        Ok(m) => m.flags,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut agent_args = vec![
        "agent".to_string(),
        format!("--master={master_address}"),
        format!("--ip={ip}"),
        format!("--port={}", flags.agent_port),
        format!("--work_dir={}", work_dir.join("agent").display()),
        // Ctrl-C leaves no process behind: tasks are killed and the launcher daemon stops.
        "--kill_tasks_on_stop=true".to_string(),
    ];
    if let Some(resources) = &flags.resources {
        agent_args.push(format!("--resources={resources}"));
    }
    if let Some(isolation) = &flags.isolation {
        agent_args.push(format!("--isolation={isolation}"));
    }
    let agent_flags = match AgentOnly::try_parse_from(agent_args) {
        Ok(a) => a.flags,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let master = tokio::spawn(master::run(master_flags, stopped(stop_rx.clone())));
    let detector = match election::StandaloneDetector::new(&master_address) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let agent = tokio::spawn(agent::run(agent_flags, detector, stopped(stop_rx.clone())));
    let marathon = if flags.marathon_port == 0 {
        None
    } else {
        let config = match marathon::default_config(
            &master_address,
            std::net::IpAddr::V4(flags.ip),
            flags.marathon_port,
        ) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        Some(tokio::spawn(marathon::run_in_memory(
            config,
            stopped(stop_rx.clone()),
        )))
    };
    println!("master: http://{master_address}");
    println!("agent: http://{ip}:{}", flags.agent_port);
    if marathon.is_some() {
        println!("marathon: http://{ip}:{}", flags.marathon_port);
    }
    println!("work_dir: {}", work_dir.display());
    println!("Ctrl-C stops everything.");

    tokio::pin!(master);
    tokio::pin!(agent);
    let has_marathon = marathon.is_some();
    let marathon_done_signal = async {
        match marathon {
            Some(handle) => Some(handle.await),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(marathon_done_signal);
    let mut code = ExitCode::SUCCESS;
    let mut master_done = false;
    let mut agent_done = false;
    let mut marathon_result = None;
    tokio::select! {
        result = &mut marathon_done_signal => {
            if let Some(result) = result {
                report("marathon", result, &mut code);
            }
            marathon_result = Some(());
        }
        _ = crate::shutdown_signal() => {}
        result = &mut master => {
            master_done = true;
            report("master", result, &mut code);
        }
        result = &mut agent => {
            agent_done = true;
            report("agent", result, &mut code);
        }
    }
    let _ = stop_tx.send(true);
    // Marathon first (it only disconnects), then the agent, so its tasks are stopped while the
    // master can still hear about it.
    if has_marathon && marathon_result.is_none() {
        if let Some(result) = marathon_done_signal.await {
            report("marathon", result, &mut code);
        }
    }
    if !agent_done {
        report("agent", agent.await, &mut code);
    }
    if !master_done {
        report("master", master.await, &mut code);
    }
    code
}

fn report<E: std::fmt::Display>(
    name: &str,
    result: Result<Result<(), E>, tokio::task::JoinError>,
    code: &mut ExitCode,
) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("error: {name}: {e}");
            *code = ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {name} task failed: {e}");
            *code = ExitCode::FAILURE;
        }
    }
}
