//! The verbs that act on a running cluster through `DIR/cluster.json`: `status` (every server,
//! alive or dead, and who leads), `kill-leader` (SIGKILL the leading master or Marathon so a person
//! can watch the failover the `up` process reports) and `stop` (SIGTERM to the supervisor, then
//! wait until it has gone).

use std::path::Path;
use std::time::Duration;

use crate::error::LocalClusterError;
use crate::layout::Role;
use crate::state_file::{self, ClusterState, ServerState};
use crate::supervisor::Signal;
use crate::{probe, process, zookeeper};

/// How long `stop` waits for the supervisor, which itself gives agents 20 s and others 10 s.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// The state of the cluster whose supervisor runs on `dir`, or NotRunning.
fn running_cluster(dir: &Path) -> Result<ClusterState, LocalClusterError> {
    match state_file::read(dir)? {
        Some(state) if process::is_supervisor(state.supervisor_pid) => Ok(state),
        _ => Err(LocalClusterError::NotRunning {
            dir: dir.to_path_buf(),
        }),
    }
}

fn addresses(state: &ClusterState, role: Role) -> Vec<String> {
    state.of_role(role).map(|s| s.address.clone()).collect()
}

fn server_at<'a>(state: &'a ClusterState, role: Role, address: &str) -> Option<&'a ServerState> {
    state.of_role(role).find(|s| s.address == address)
}

fn is_alive(state: &ClusterState, server: &ServerState) -> bool {
    server
        .pid
        .is_some_and(|pid| process::is_cluster_process(pid, &state.dir))
}

pub async fn status(dir: &Path) -> Result<(), LocalClusterError> {
    let state = running_cluster(dir)?;
    let client = probe::client();
    let master_leader = probe::master_leader(&client, &addresses(&state, Role::Master)).await;
    let marathon_leader = probe::marathon_leader(&client, &addresses(&state, Role::Marathon)).await;
    println!(
        "local cluster on {} (supervisor pid {}, quorum {})",
        dir.display(),
        state.supervisor_pid,
        state.quorum
    );
    let columns = ["NAME", "ROLE", "ADDRESS", "PID", "STATE", "NOTE"];
    print_row(&columns.map(String::from));
    for server in &state.servers {
        let alive = is_alive(&state, server);
        let note = match server.role {
            Role::ZooKeeper if alive => match server
                .address
                .split(':')
                .next()
                .and_then(|ip| ip.parse().ok())
            {
                Some(ip) => zookeeper::mode(ip)
                    .await
                    .unwrap_or_else(|| "not serving".into()),
                None => String::new(),
            },
            Role::Master if master_leader.as_deref() == Some(server.address.as_str()) => {
                "leader".into()
            }
            Role::Marathon if marathon_leader.as_deref() == Some(server.address.as_str()) => {
                "leader".into()
            }
            _ => String::new(),
        };
        let pid = server
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let liveness = if alive { "alive" } else { "dead" };
        print_row(&[
            server.name.clone(),
            server.role.label().into(),
            server.address.clone(),
            pid,
            liveness.into(),
            note,
        ]);
    }
    let name_of = |role, leader: &Option<String>| {
        leader.as_deref().map(|a| {
            server_at(&state, role, a)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| a.to_string())
        })
    };
    match name_of(Role::Master, &master_leader) {
        Some(name) => println!("leading master: {name}"),
        None => println!("leading master: none right now"),
    }
    if state.of_role(Role::Marathon).next().is_some() {
        match name_of(Role::Marathon, &marathon_leader) {
            Some(name) => println!("Marathon leader: {name}"),
            None => println!("Marathon leader: none right now"),
        }
    }
    println!("Mesos zk URL: {}", state.mesos_zk_url);
    Ok(())
}

fn print_row(cells: &[String; 6]) {
    let [name, role, address, pid, liveness, note] = cells;
    println!("  {name:<13} {role:<10} {address:<20} {pid:>8}  {liveness:<6} {note}");
}

pub async fn kill_leader(dir: &Path, marathon: bool) -> Result<(), LocalClusterError> {
    let state = running_cluster(dir)?;
    let client = probe::client();
    let (role, what) = if marathon {
        (Role::Marathon, "Marathon")
    } else {
        (Role::Master, "master")
    };
    if marathon && state.of_role(Role::Marathon).next().is_none() {
        return Err(LocalClusterError::Flag {
            flag: "marathon",
            message: "this cluster runs no Marathon".into(),
        });
    }
    let leader = match role {
        Role::Marathon => probe::marathon_leader(&client, &addresses(&state, role)).await,
        _ => probe::master_leader(&client, &addresses(&state, role)).await,
    }
    .ok_or(LocalClusterError::NoLeader { role: what })?;
    let server =
        server_at(&state, role, &leader).ok_or(LocalClusterError::NoLeader { role: what })?;
    let pid = match server.pid {
        Some(pid) if process::is_cluster_process(pid, &state.dir) => pid,
        _ => return Err(LocalClusterError::NoLeader { role: what }),
    };
    if !process::send(pid, Signal::Kill) {
        return Err(LocalClusterError::io(
            format!("cannot SIGKILL {} (pid {pid})", server.name),
            std::io::Error::last_os_error(),
        ));
    }
    println!(
        "killed {} ({}, pid {pid}), the leading {what}, with SIGKILL; the `up` process reports the new leader and restarts it",
        server.name, server.address
    );
    Ok(())
}

pub async fn stop(dir: &Path) -> Result<(), LocalClusterError> {
    let state = running_cluster(dir)?;
    let pid = state.supervisor_pid;
    process::send(pid, Signal::Term);
    println!("sent SIGTERM to the local cluster's supervisor (pid {pid}); waiting for it to stop every server");
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    while process::is_supervisor(pid) {
        if tokio::time::Instant::now() >= deadline {
            return Err(LocalClusterError::StopTimeout {
                pid,
                secs: STOP_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the local cluster on {} has stopped", dir.display());
    Ok(())
}
