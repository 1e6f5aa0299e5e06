//! The driver's ends: stopping (tasks kept, killed, or killed and forgotten after the master's
//! SHUTDOWN) and reconnecting to a launcher daemon that went away. See `driver` for the whole.

use super::*;
use crate::checkpoint;
use crate::launcher_client::Connection;

/// Extra wait, beyond the grace period, for killed processes to be reaped.
const REAP_MARGIN: Duration = Duration::from_secs(5);
/// How long a stop waits for the launcher daemon to exit after SHUTDOWN.
const LAUNCHER_EXIT_WAIT: Duration = Duration::from_secs(15);
/// Longest wait between attempts to reach a launcher that went away.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How the agent stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopMode {
    /// Tasks keep running for the next agent.
    KeepTasks,
    /// `--kill_tasks_on_stop`.
    KillTasks,
    /// The master's SHUTDOWN: kill with each task's grace, forget the agent.
    ByMaster,
}

impl Driver {
    /// The daemon went away: reach one again (starting it), then settle every task whose process
    /// was not seen to end.
    pub(super) async fn reconnect(&mut self) {
        tracing::error!("the connection to the launcher broke; reconnecting");
        let mut backoff = Duration::from_millis(100);
        let (connection, snapshot) = loop {
            let attempt = match self.connector.connect().await {
                Ok(connection) => match connection.launcher.list().await {
                    Ok(snapshot) => Ok((connection, snapshot)),
                    Err(_) => Err("the launcher went away before listing its tasks".to_string()),
                },
                Err(e) => Err(e),
            };
            match attempt {
                Ok(done) => break done,
                Err(error) => {
                    tracing::error!(%error, ?backoff, "cannot reach a launcher; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                }
            }
        };
        let Connection { launcher, events } = connection;
        self.launcher = launcher;
        self.launcher_events = events;
        let settled = {
            let mut core = self.shared.core();
            let tasks = core.unsettled_tasks();
            let isolation = self.isolation.clone();
            let report_exit = move |core: &mut crate::core::Core,
                                    now,
                                    fw: &proto::FrameworkId,
                                    task: &proto::TaskId,
                                    container: &str,
                                    exit| {
                isolation.report_recovered_exit(core, now, fw, task, container, exit)
            };
            recovery::settle(
                &mut core,
                now(),
                tasks,
                &snapshot,
                false,
                self.launcher.as_ref(),
                &report_exit,
            )
        };
        tracing::info!(
            reattached = settled.reattached,
            exited = settled.exited,
            lost = settled.lost,
            "settled with the new launcher"
        );
        self.launching.clear();
        self.containers = self.running_containers();
        self.executor_containers = self.running_executor_containers();
        let live: HashSet<String> = self
            .containers
            .keys()
            .chain(self.executor_containers.keys())
            .cloned()
            .collect();
        self.isolation.retain(live); // isolation
        let ops = self.shared.core().drain_checkpoints();
        let actions = settled
            .effects
            .into_iter()
            .map(Action::Effect)
            .chain(settled.ack_exits.into_iter().map(Action::AckExit));
        self.commits.push(ops, actions);
    }

    /// The containers of tasks whose process runs, per the core.
    pub(super) fn running_containers(&self) -> HashMap<String, (FrameworkId, TaskId)> {
        self.shared
            .core()
            .live_tasks()
            .filter(|t| matches!(t.process, crate::core::Process::Running { .. }))
            .map(|t| {
                (
                    t.container_id.value.clone(),
                    (t.framework_id.clone(), t.info.task_id.clone()),
                )
            })
            .collect()
    }

    /// Stops as `mode` says; see the module doc.
    pub(super) async fn stop(
        &mut self,
        mode: StopMode,
        events: &mut mpsc::UnboundedReceiver<DriverEvent>,
    ) {
        // Launches still waiting for their turn give up.
        self.launch_permits.close();
        if mode == StopMode::KeepTasks {
            // What was decided becomes durable; what it would have sent, the next agent resends.
            let _ = self.commits.flush().await;
            self.commits.settle_files().await;
            tracing::info!(
                tasks = self.containers.len(),
                "tasks keep running under the launcher"
            );
            return;
        }
        let grace = if mode == StopMode::ByMaster {
            // Each task's own grace, bounded by --executor_shutdown_grace_period.
            let (ops, effects) = {
                let mut core = self.shared.core();
                let effects = core.shutdown_all(now());
                (core.drain_checkpoints(), effects)
            };
            let longest = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Kill { grace, .. } => Some(*grace),
                    _ => None,
                })
                .chain(self.executor_grace_max())
                .max()
                .unwrap_or(STOP_GRACE);
            self.commits
                .push(ops, effects.into_iter().map(Action::Effect));
            longest
        } else {
            STOP_GRACE
        };
        self.stopping = Some(grace);
        for (container_id, _) in self
            .containers
            .iter()
            .filter(|(c, _)| !self.launching.contains(*c))
        {
            self.launcher.kill(container_id, libc::SIGTERM, Some(grace));
        }
        // Custom executors: SHUTDOWN went to them above (ByMaster); their process groups get the
        // same treatment as tasks.
        for (container_id, _) in self
            .executor_containers
            .iter()
            .filter(|(c, _)| !self.launching.contains(*c))
        {
            self.launcher.kill(container_id, libc::SIGTERM, Some(grace));
        }
        if !self.containers.is_empty() {
            tracing::info!(
                processes = self.containers.len(),
                launching = self.launching.len(),
                ?grace,
                "stopping tasks"
            );
        }
        let deadline = tokio::time::Instant::now() + grace + REAP_MARGIN;
        while !self.containers.is_empty() || !self.executor_containers.is_empty() {
            let ready = self.commits.kick();
            self.perform(ready);
            tokio::select! {
                event = self.launcher_events.recv() => match event {
                    Some(LauncherEvent::Disconnected) | None => break,
                    Some(event) => self.on_launcher(event).await,
                },
                Some(event) = events.recv() => self.on_driver_event(event),
                actions = self.commits.done(), if self.commits.in_flight() => self.perform(actions),
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !self.containers.is_empty() {
            let left: Vec<&String> = self.containers.keys().collect();
            tracing::error!(
                ?left,
                "task processes still not reported gone; the launcher kills them as it exits"
            );
        }
        let actions = self.commits.flush().await;
        self.perform(
            actions
                .into_iter()
                .filter(|a| matches!(a, Action::AckExit(_)))
                .collect(),
        );
        self.commits.settle_files().await;
        self.launcher.shutdown();
        // The daemon closes the connection as it exits: wait for that, so nothing outlives the stop.
        let gone = tokio::time::timeout(LAUNCHER_EXIT_WAIT, async {
            while let Some(event) = self.launcher_events.recv().await {
                if event == LauncherEvent::Disconnected {
                    break;
                }
            }
        })
        .await;
        if gone.is_err() {
            tracing::warn!("the launcher did not exit within {LAUNCHER_EXIT_WAIT:?} of SHUTDOWN");
        }
        if mode == StopMode::ByMaster {
            let meta = layout::meta_dir(&self.work_dir);
            let removed =
                tokio::task::spawn_blocking(move || checkpoint::remove_agent_state(&meta)).await;
            if !matches!(removed, Ok(Ok(()))) {
                tracing::error!(
                    ?removed,
                    "cannot remove the checkpoints of this removed agent"
                );
            }
        }
    }
}
