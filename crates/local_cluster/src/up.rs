//! `tepui local-cluster up`: checks (ZooKeeper installed, no cluster already on DIR, every address
//! bindable), a fresh DIR, then the foreground supervisor: one loop feeds the pure `Supervisor`
//! with child exits, startup steps, ticks and signals, and carries out its commands (spawn, signal,
//! say). When it has stopped every server it makes sure no process of the cluster remains, task
//! processes included, and removes `cluster.json`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::LocalClusterError;
use crate::flags::UpFlags;
use crate::layout::{AgentShare, Layout, Role};
use crate::progress::{self, Clock};
use crate::state_file::{self, ClusterState};
use crate::supervisor::{Command, Event, Policy, Supervisor};
use crate::{process, zookeeper};

/// How often the supervisor looks at restart timers and stop deadlines.
const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// How long leftover processes may take to die after SIGKILL.
const LEFTOVER_KILL_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(flags: UpFlags, program: PathBuf) -> Result<(), LocalClusterError> {
    let dir = flags.dir();
    let zk = zookeeper::find_install(
        Path::new(zookeeper::ZOOKEEPER_JAR),
        Path::new(zookeeper::SLF4J_SIMPLE_JAR),
        std::env::var_os("PATH").as_deref(),
    )?;
    if !program.is_file() {
        return Err(LocalClusterError::io(
            format!("the tepui binary {} is not a file", program.display()),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| {
        LocalClusterError::io(
            format!("--dir: cannot create {}", dir.join("logs").display()),
            e,
        )
    })?;
    refuse_if_running(&dir)?;
    // What one agent would detect here (the whole machine), split between the agents.
    let machine = agent::detect_resources(&dir, None);
    let share = AgentShare::of_machine(
        machine.scalar("cpus"),
        machine.scalar("mem"),
        machine.scalar("disk"),
        flags.agents,
    );
    let layout = Arc::new(Layout::new(&flags, &dir, &program, &zk, share));
    let clock = Clock::new();

    let stale = process::leftovers(&layout.dir, &process::owned_dirs(&layout));
    if !stale.is_empty() {
        let left = process::kill_leftovers(&stale, LEFTOVER_KILL_TIMEOUT).await;
        clock.say(&format!(
            "killed {} process(es) an earlier run left in {}",
            stale.len() - left.len(),
            dir.display()
        ));
    }
    check_addresses(&layout, flags.ip_prefix.ip(1))?;
    prepare_dirs(&layout)?;

    let mut state = ClusterState::new(&layout, std::process::id());
    state_file::write(&dir, &state)?;
    clock.say(&format!(
        "tepui local-cluster: {} masters (quorum {}) each with ZooKeeper{}, {} agents ({} cpus, {} MB memory, {} MB disk each); directory {}",
        layout.count(Role::Master),
        layout.quorum,
        if flags.marathon { " and Marathon" } else { "" },
        layout.count(Role::Agent),
        share.cpus,
        share.mem_mb,
        share.disk_mb,
        dir.display()
    ));

    let outcome = supervise(&layout, &mut state, clock).await;

    let leftovers = process::leftovers(&layout.dir, &process::owned_dirs(&layout));
    let still = process::kill_leftovers(&leftovers, LEFTOVER_KILL_TIMEOUT).await;
    state_file::remove(&dir);
    if !still.is_empty() {
        let list: Vec<String> = still
            .iter()
            .map(|l| format!("pid {} ({})", l.pid, l.cmdline))
            .collect();
        return Err(LocalClusterError::Leftovers(list.join("; ")));
    }
    if leftovers.is_empty() {
        clock.say("stopped; no process of the cluster is left");
    } else {
        clock.say(&format!(
            "stopped; killed {} leftover process(es)",
            leftovers.len()
        ));
    }
    outcome
}

/// An earlier `up` on the same DIR whose supervisor still lives makes this one refuse.
fn refuse_if_running(dir: &Path) -> Result<(), LocalClusterError> {
    match state_file::read(dir) {
        Ok(Some(state)) if process::is_supervisor(state.supervisor_pid) => {
            Err(LocalClusterError::AlreadyRunning {
                dir: dir.to_path_buf(),
                pid: state.supervisor_pid,
            })
        }
        // No state file, a dead supervisor, or a file another version wrote: a fresh start
        // replaces it (processes left behind are found by their directories).
        Ok(_) | Err(LocalClusterError::StateFile { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every server's address must be bindable: the loopback must take the prefix, and nothing else
/// may listen there.
fn check_addresses(layout: &Layout, first: Ipv4Addr) -> Result<(), LocalClusterError> {
    if let Err(e) = TcpListener::bind((first, 0)) {
        return Err(LocalClusterError::Address(format!(
            "--ip_prefix: cannot bind {first}: {e}. The servers need their own loopback addresses \
             (Linux's loopback takes any 127.x.y.z); pick another --ip_prefix such as 127.0.1"
        )));
    }
    for (name, ip, port) in layout.listen_addresses() {
        if let Err(e) = TcpListener::bind((ip, port)) {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                "another process listens there (another cluster? stop it or pick another --ip_prefix)".to_string()
            } else {
                format!("{e}; pick another --ip_prefix")
            };
            return Err(LocalClusterError::Address(format!(
                "cannot listen on {ip}:{port} for {name}: {why}"
            )));
        }
    }
    Ok(())
}

/// Each `up` starts a fresh cluster: the servers' directories and logs of an earlier run go (only
/// those, never anything else in DIR), and ZooKeeper's config is written.
fn prepare_dirs(layout: &Layout) -> Result<(), LocalClusterError> {
    let zk_ips = layout.zk_ips();
    for server in &layout.servers {
        match std::fs::remove_dir_all(&server.work_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LocalClusterError::io(
                    format!("cannot clear {}", server.work_dir.display()),
                    e,
                ))
            }
        }
        let _ = std::fs::remove_file(&server.log_path);
        std::fs::create_dir_all(&server.work_dir).map_err(|e| {
            LocalClusterError::io(format!("cannot create {}", server.work_dir.display()), e)
        })?;
        if server.role == Role::ZooKeeper {
            zookeeper::write_config(&server.work_dir, server.index, server.ip, &zk_ips).map_err(
                |e| {
                    LocalClusterError::io(
                        format!(
                            "cannot write ZooKeeper's config in {}",
                            server.work_dir.display()
                        ),
                        e,
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// Runs the supervisor until every server has stopped. Err if startup failed.
async fn supervise(
    layout: &Arc<Layout>,
    state: &mut ClusterState,
    clock: Clock,
) -> Result<(), LocalClusterError> {
    let (events, mut inbox) = mpsc::unbounded_channel::<Event>();
    let mut supervisor = Supervisor::new(
        Policy::default(),
        layout.servers.iter().map(|s| (s.name.clone(), s.role)),
    );
    let signals = tokio::spawn(forward_signals(events.clone(), clock));
    let (startup_failed_tx, mut startup_failed) = tokio::sync::oneshot::channel::<String>();
    let watcher = {
        let layout = layout.clone();
        let events = events.clone();
        tokio::spawn(async move {
            match progress::startup(&layout, &events, clock).await {
                Ok(leaders) => progress::watch_leaders(&layout, clock, leaders).await,
                Err(why) => {
                    clock.say(&format!("error: {why}; stopping the cluster"));
                    let _ = startup_failed_tx.send(why);
                    let _ = events.send(Event::Stop);
                }
            }
        })
    };

    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finished = false;
    while !finished {
        let first = tokio::select! {
            Some(event) = inbox.recv() => event,
            _ = tick.tick() => Event::Tick,
        };
        let mut queue = VecDeque::from([first]);
        let mut state_changed = false;
        while let Some(event) = queue.pop_front() {
            if let Event::Exited { server, pid, .. } = &event {
                if state.servers[*server].pid == Some(*pid) {
                    state.servers[*server].pid = None;
                    state_changed = true;
                }
            }
            let was_stopping = supervisor.stopping();
            for command in supervisor.handle(clock.elapsed(), event) {
                match command {
                    Command::Spawn(i) => match process::spawn(&layout.servers[i], &layout.dir) {
                        Ok(child) => match child.id() {
                            Some(pid) => {
                                tokio::spawn(wait_child(child, i, pid, events.clone()));
                                state.servers[i].pid = Some(pid);
                                state_changed = true;
                                queue.push_back(Event::Spawned { server: i, pid });
                            }
                            None => queue.push_back(Event::SpawnFailed {
                                server: i,
                                error: "exited at once".into(),
                            }),
                        },
                        Err(e) => queue.push_back(Event::SpawnFailed {
                            server: i,
                            error: e.to_string(),
                        }),
                    },
                    Command::Signal { pid, signal, .. } => {
                        process::send(pid, signal);
                    }
                    Command::Say(line) => clock.say(&line),
                    Command::Finished => finished = true,
                }
            }
            if !was_stopping && supervisor.stopping() {
                watcher.abort();
            }
        }
        if state_changed {
            if let Err(e) = state_file::write(&layout.dir, state) {
                clock.say(&format!("warning: {e}"));
            }
        }
    }
    signals.abort();
    watcher.abort();
    match startup_failed.try_recv() {
        Ok(why) => Err(LocalClusterError::Startup(why)),
        Err(_) => Ok(()),
    }
}

async fn wait_child(
    mut child: tokio::process::Child,
    server: usize,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
) {
    let how = match child.wait().await {
        Ok(status) => process::exit_kind(status),
        Err(_) => crate::supervisor::ExitKind::Code(-1),
    };
    let _ = events.send(Event::Exited { server, pid, how });
}

/// SIGINT (a terminal's Ctrl-C), SIGTERM (`stop`) and SIGHUP (the terminal closed) become
/// `Event::Stop`; a second one kills what is left.
async fn forward_signals(events: mpsc::UnboundedSender<Event>, clock: Clock) {
    use tokio::signal::unix::{signal, SignalKind};
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    let (mut int, mut term, mut hup) = match streams {
        (Ok(i), Ok(t), Ok(h)) => (i, t, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            clock.say(&format!(
                "warning: cannot listen for signals ({e}); stop the cluster with SIGKILL"
            ));
            return;
        }
    };
    let mut first = true;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        };
        if first {
            clock.say(&format!(
                "{name}: stopping the cluster (agents, Marathons, masters, ZooKeeper); again to kill everything"
            ));
            first = false;
        }
        if events.send(Event::Stop).is_err() {
            return;
        }
    }
}
