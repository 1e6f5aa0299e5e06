//! `marathon::run`: flags → ZooKeeper session, standby view and election → REST API → leader
//! loop (marathon-api.md §8.1). Also [`run_with`] / [`run_in_memory`], the store-less entry points
//! (`tepui dev`, tests): the same service over any `StateStore` with a standalone election.
//!
//! Sequence while leading: elected → `store.fence()` (a deposed leader can no longer write) →
//! the state from the store view caught up after the fence (or `load()` without a view), never
//! from memory → the leader loop. Whatever ends the leadership ends `run` with an error whose
//! `exit_code` the binary uses; rejoining as a standby is the supervisor's restart.

use crate::error::MarathonError;
use crate::flags::{Config, MarathonFlags};
use crate::leader::{self, Outputs};
use marathon_api::service::{
    Command, CommandError, InfoConfig, LeaderState, ServiceHandle, ServiceView,
};
use marathon_store::{
    ElectionHandle, InMemoryStore, Leadership, MarathonElection, StateStore, StoreView,
    ZkConnection, ZkStore,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Capacity of the REST → leader command queue.
pub const COMMANDS_MAX: usize = 256;
/// Events buffered for slow `/v2/events` readers before they miss some.
pub const EVENTS_BUFFER_MAX: usize = 4096;
/// §4 `DELETE /v2/leader`: "leader steps down ~0.5 s later" (time for the answer to leave).
pub const ABDICATE_DELAY: Duration = Duration::from_millis(500);

/// `tepui marathon`: checks the flags and runs until `shutdown` (Ok) or until leadership ends.
pub async fn run(
    flags: MarathonFlags,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    let config = flags.check()?;
    let self_address = format!("{}:{}", config.hostname, config.http_port);
    let connection = marathon_store::connect(&config.zk, config.zk_session_timeout)
        .await
        .map_err(|e| MarathonError::ZkSession(format!("--zk {}: {e}", config.zk)))?;
    let store: Arc<dyn StateStore> = Arc::new(ZkStore::new(
        connection.clone(),
        config.zk_max_versions as usize,
    ));
    if config.disable_ha {
        let election = MarathonElection::standalone(&self_address);
        return serve(config, store, None, Some(connection), election, shutdown).await;
    }
    let view = StoreView::start(connection.clone());
    let election = MarathonElection::contend(&connection, &self_address)
        .await
        .map_err(MarathonError::from_store)?;
    serve(
        config,
        store,
        Some(view),
        Some(connection),
        election,
        shutdown,
    )
    .await
}

/// The service over any store and election (no ZooKeeper): `tepui dev` and tests.
pub async fn run_with(
    config: Config,
    store: Arc<dyn StateStore>,
    election: ElectionHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    serve(config, store, None, None, election, shutdown).await
}

/// The service with an `InMemoryStore` and a standalone election: state lives as long as the
/// process (for `tepui dev`).
pub async fn run_in_memory(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    let store = Arc::new(InMemoryStore::new(config.zk_max_versions as usize));
    let election =
        MarathonElection::standalone(&format!("{}:{}", config.hostname, config.http_port));
    run_with(config, store, election, shutdown).await
}

/// A `Config` with every flag at its default but the master and the HTTP endpoint (for `tepui
/// dev` and tests); adjust fields as needed.
pub fn default_config(
    master: &str,
    http_address: std::net::IpAddr,
    http_port: u16,
) -> Result<Config, crate::flags::FlagError> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        flags: MarathonFlags,
    }
    use clap::Parser;
    let args = [
        "marathon".to_string(),
        format!("--master={master}"),
        format!("--http_address={http_address}"),
        format!("--http_port={http_port}"),
    ];
    let parsed = Defaults::try_parse_from(args).map_err(|e| crate::flags::FlagError {
        flag: "master",
        message: e.to_string(),
    })?;
    let mut config = parsed.flags.check()?;
    config.disable_ha = true;
    Ok(config)
}

pub fn info_config(config: &Config) -> InfoConfig {
    InfoConfig {
        master: config.master.clone(),
        zk: config.zk.to_string(),
        ha: !config.disable_ha,
        hostname: config.hostname.clone(),
        http_port: config.http_port,
        framework_name: config.framework_name.clone(),
        failover_timeout_secs: config.failover_timeout.as_secs(),
        mesos_role: config.mesos_role.clone(),
        mesos_user: config.mesos_user.clone(),
        local_port_min: config.local_port_min,
        local_port_max: config.local_port_max,
        task_launch_timeout_ms: config.task_launch_timeout.as_millis() as u64,
        reconciliation_initial_delay_ms: config.reconciliation_initial_delay.as_millis() as u64,
        reconciliation_interval_ms: config.reconciliation_interval.as_millis() as u64,
        scale_apps_initial_delay_ms: config.scale_apps_initial_delay.as_millis() as u64,
        scale_apps_interval_ms: config.scale_apps_interval.as_millis() as u64,
        leader_proxy_connection_timeout_ms: config.leader_proxy_connection_timeout.as_millis()
            as u64,
        leader_proxy_read_timeout_ms: config.leader_proxy_read_timeout.as_millis() as u64,
        max_instances_per_offer: config.max_instances_per_offer,
        zk_timeout_ms: config.zk_timeout.as_millis() as u64,
        zk_session_timeout_ms: config.zk_session_timeout.as_millis() as u64,
        zk_max_versions: config.zk_max_versions,
        max_running_deployments: config.max_running_deployments,
        decline_offer_duration_ms: config.decline_offer_duration.as_millis() as u64,
    }
}

/// Answers a command that reached a non-leader (the REST layer normally proxies first).
fn refuse(command: Command) {
    let msg = || CommandError::Unavailable("this instance is not the leader".into());
    match command {
        Command::Deploy { reply, .. } => drop(reply.send(Err(msg()))),
        Command::KillTasks { reply, .. } => drop(reply.send(Err(msg()))),
        Command::CancelDeployment { reply, .. } => drop(reply.send(Err(msg()))),
        Command::ResetDelay { reply, .. } => drop(reply.send(Err(msg()))),
        Command::GetAppVersion { reply, .. } => drop(reply.send(Err(msg()))),
        Command::Abdicate { reply } => drop(reply.send(())),
    }
}

async fn serve(
    config: Config,
    store: Arc<dyn StateStore>,
    view: Option<StoreView>,
    connection: Option<ZkConnection>,
    election: ElectionHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    let self_address = format!("{}:{}", config.hostname, config.http_port);
    let (view_tx, view_rx) = watch::channel(Arc::new(ServiceView::default()));
    let (events_tx, _) = broadcast::channel(EVENTS_BUFFER_MAX);
    let (commands_tx, mut commands) = mpsc::channel(COMMANDS_MAX);
    let (leader_tx, leader_rx) = watch::channel(LeaderState::Unknown);
    let handle = ServiceHandle {
        view: view_rx,
        commands: commands_tx,
        events: events_tx.clone(),
        leader: leader_rx,
        self_address: self_address.clone(),
        info: Arc::new(info_config(&config)),
    };
    let address = SocketAddr::new(config.http_address, config.http_port);
    let listener =
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| MarathonError::Http {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
    let app = marathon_api::router(handle).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%address, "Marathon API listening");
    let result = lead(
        config,
        store,
        view,
        &connection,
        &election,
        &mut commands,
        leader_tx,
        Outputs {
            view: view_tx,
            events: events_tx,
        },
        shutdown,
    )
    .await;
    let result = match result {
        Err(MarathonError::Abdicated) => {
            tokio::time::sleep(ABDICATE_DELAY).await;
            if let Err(e) = election.abdicate().await {
                tracing::warn!(error = %e, "abdicating: could not leave the election cleanly");
            }
            Err(MarathonError::Abdicated)
        }
        Err(MarathonError::LostLeadership(why))
            if connection.as_ref().is_some_and(|c| c.session_lost()) =>
        {
            Err(MarathonError::ZkSession(why))
        }
        other => other,
    };
    server.abort();
    result
}

#[allow(clippy::too_many_arguments)]
async fn lead(
    config: Config,
    store: Arc<dyn StateStore>,
    view: Option<StoreView>,
    connection: &Option<ZkConnection>,
    election: &ElectionHandle,
    commands: &mut mpsc::Receiver<Command>,
    leader_tx: watch::Sender<LeaderState>,
    out: Outputs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    let self_address = format!("{}:{}", config.hostname, config.http_port);
    let mut leadership = election.leadership();
    tokio::pin!(shutdown);
    loop {
        let now = leadership.borrow_and_update().clone();
        match now {
            Leadership::Leader => break,
            Leadership::Standby { leader } => {
                leader_tx.send_replace(match leader {
                    Some(l) if l != self_address => LeaderState::Following(l),
                    _ => LeaderState::Unknown,
                });
            }
            Leadership::Lost => {
                let why = "left the election before leading".to_string();
                return Err(if connection.as_ref().is_some_and(|c| c.session_lost()) {
                    MarathonError::ZkSession(why)
                } else {
                    MarathonError::LostLeadership(why)
                });
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            changed = leadership.changed() => if changed.is_err() {
                return Err(MarathonError::LostLeadership("the election ended".into()));
            },
            Some(command) = commands.recv() => refuse(command),
        }
    }
    tracing::info!(%self_address, "elected Marathon leader");
    let epoch = store.fence().await.map_err(MarathonError::from_store)?;
    let snapshot = match &view {
        Some(view) => view
            .wait_caught_up()
            .await
            .map_err(MarathonError::from_store)?,
        None => Arc::new(store.load().await.map_err(MarathonError::from_store)?),
    };
    tracing::info!(
        epoch,
        apps = snapshot.apps.len(),
        instances = snapshot.instances.len(),
        "store fenced and loaded"
    );
    leader_tx.send_replace(LeaderState::Leading(self_address));
    leader::run(config, store, snapshot, out, commands, leadership, shutdown).await
}
