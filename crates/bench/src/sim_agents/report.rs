//! The sim-agents reporter: tracks which master each agent is registered with, prints one line per
//! leader change and one when all agents have (re)registered with the new leader (with the time
//! since the change), progress lines meanwhile, and writes the same facts as JSON lines to
//! `--report-file` (what `scripts/bench_failover.py` reads).

use super::{changed, stopped, Shared};
use election::Leader;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// What agents tell the reporter.
pub(super) enum Event {
    Registered { index: usize, with: RegisteredWith },
    Disconnected { index: usize },
    Stopped { index: usize, why: String },
}

/// The master an agent is registered with.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RegisteredWith {
    pub(super) master_id: String,
    /// `host:port` of the detected leader the registration started from (before redirects).
    pub(super) via: String,
}

impl RegisteredWith {
    /// With ZooKeeper the leader's id is known; a fixed `--master` is matched by address (the
    /// agent may have been redirected from it to the real leader).
    fn is(&self, leader: &Leader) -> bool {
        match &leader.info {
            Some(info) => info.id == self.master_id,
            None => leader.endpoint == self.via,
        }
    }
}

/// Counts agents per master and reports leader changes and completion.
pub(super) struct Reporter {
    count: usize,
    file: Option<std::fs::File>,
    shared: Arc<Shared>,
    started: Instant,
    with: Vec<Option<RegisteredWith>>,
    stopped: usize,
    /// The leader the detector reports now.
    current: Option<Leader>,
    /// The last leader that was reported (survives a `None` in between).
    last_leader: Option<Leader>,
    changed_at: Instant,
    lost_at: Option<Instant>,
    complete: bool,
    changes: u64,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Reporter {
    pub(super) fn new(count: usize, file: Option<std::fs::File>, shared: Arc<Shared>) -> Reporter {
        let now = Instant::now();
        Reporter {
            count,
            file,
            shared,
            started: now,
            with: vec![None; count],
            stopped: 0,
            current: None,
            last_leader: None,
            changed_at: now,
            lost_at: None,
            complete: false,
            changes: 0,
        }
    }

    pub(super) fn emit(&mut self, event: &str, mut fields: serde_json::Value) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), json!(event));
            map.insert("t".into(), json!(secs(self.started.elapsed())));
            map.insert("ts".into(), json!(unix_now()));
        }
        let line = format!("{fields}\n");
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|_| file.flush()) {
            eprintln!(
                "tepui-bench sim-agents: cannot write the report file ({e}); no more report lines"
            );
            self.file = None;
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>8.3}s]", self.started.elapsed().as_secs_f64())
    }

    fn registered_with_current(&self) -> usize {
        match &self.current {
            Some(leader) => self
                .with
                .iter()
                .filter(|w| w.as_ref().is_some_and(|w| w.is(leader)))
                .count(),
            None => 0,
        }
    }

    pub(super) async fn run(
        &mut self,
        mut rx: watch::Receiver<Option<Leader>>,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut stop: watch::Receiver<bool>,
    ) {
        let first = rx.borrow_and_update().clone();
        self.on_leader(first);
        let mut progress = tokio::time::interval(self.shared.config.progress_interval);
        progress.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                next = changed(&mut rx, self.current.as_ref()) => self.on_leader(next),
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => break,
                },
                _ = progress.tick() => self.on_progress(),
            }
        }
        let registered = self.registered_with_current();
        println!(
            "{} stop: {registered}/{} agents registered with the current leader; {} leader changes; {}",
            self.stamp(),
            self.count,
            self.changes,
            self.shared.stats.line()
        );
        let stats = self.shared.stats.json();
        let leader = self.current.as_ref().map(|l| l.endpoint.clone());
        self.emit("stop", json!({ "registered": registered, "agents": self.count, "leader": leader, "stats": stats }));
    }

    fn on_leader(&mut self, next: Option<Leader>) {
        let now = Instant::now();
        let before = self.registered_with_current();
        match next {
            None => {
                let old = self.current.as_ref().map(|l| l.endpoint.clone());
                self.current = None;
                self.lost_at = Some(now);
                match &old {
                    Some(old) => println!(
                        "{} no leading master detected ({before}/{} agents were registered with {old})",
                        self.stamp(),
                        self.count
                    ),
                    None if self.changes == 0 => println!("{} waiting for a leading master", self.stamp()),
                    None => {}
                }
                self.emit(
                    "no_leader",
                    json!({ "previous": old, "registered_before": before }),
                );
            }
            Some(leader) => {
                let same = self.last_leader.as_ref().is_some_and(|l| l == &leader);
                self.current = Some(leader.clone());
                let registered = self.registered_with_current();
                if same {
                    println!(
                        "{} leading master {} detected again ({registered}/{} agents registered with it)",
                        self.stamp(),
                        leader.endpoint,
                        self.count
                    );
                    self.emit(
                        "leader_again",
                        json!({ "leader": leader.endpoint, "registered": registered }),
                    );
                } else {
                    if !self.complete && self.last_leader.is_some() {
                        println!(
                            "{} (the previous leader never had all {} agents: {before} at its end)",
                            self.stamp(),
                            self.count
                        );
                    }
                    self.changes += 1;
                    self.changed_at = now;
                    self.complete = false;
                    let id = leader.info.as_ref().map(|i| i.id.clone());
                    println!(
                        "{} leader change #{}: {} (id {}), {registered}/{} agents registered with it",
                        self.stamp(),
                        self.changes,
                        leader.endpoint,
                        id.as_deref().unwrap_or("?"),
                        self.count
                    );
                    let since_lost = self.lost_at.map(|t| secs(now.saturating_duration_since(t)));
                    self.emit(
                        "leader_change",
                        json!({
                            "leader": leader.endpoint, "leader_id": id, "registered": registered,
                            "no_leader_for": since_lost, "change": self.changes,
                        }),
                    );
                    self.last_leader = Some(leader);
                }
                self.lost_at = None;
                self.check_complete();
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Registered { index, with } => {
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = Some(with);
                }
                self.check_complete();
            }
            Event::Disconnected { index } => {
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = None;
                }
            }
            Event::Stopped { index, why } => {
                self.stopped += 1;
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = None;
                }
                println!("{} agent {index} stopped: {why}", self.stamp());
                self.emit("agent_stopped", json!({ "agent": index, "why": why }));
            }
        }
    }

    fn check_complete(&mut self) {
        if self.complete {
            return;
        }
        let Some(leader) = self.current.clone() else {
            return;
        };
        let registered = self.registered_with_current();
        if registered < self.count {
            return;
        }
        self.complete = true;
        let took = self.changed_at.elapsed();
        println!(
            "{} all {} agents registered with {} {:.3} s after the leader change ({})",
            self.stamp(),
            self.count,
            leader.endpoint,
            took.as_secs_f64(),
            self.shared.stats.line()
        );
        let stats = self.shared.stats.json();
        self.emit(
            "all_registered",
            json!({
                "leader": leader.endpoint,
                "leader_id": leader.info.as_ref().map(|i| i.id.clone()),
                "agents": self.count,
                "seconds_since_change": secs(took),
                "change": self.changes,
                "stats": stats,
            }),
        );
    }

    fn on_progress(&mut self) {
        if self.complete {
            return;
        }
        let registered = self.registered_with_current();
        let leader = self.current.as_ref().map(|l| l.endpoint.clone());
        let last_error = self.shared.stats.take_last_error();
        println!(
            "{} {registered}/{} agents registered with {} ({:.1} s since the change; {} stopped; {}){}",
            self.stamp(),
            self.count,
            leader.as_deref().unwrap_or("no leader"),
            self.changed_at.elapsed().as_secs_f64(),
            self.stopped,
            self.shared.stats.line(),
            last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
        );
        self.emit(
            "progress",
            json!({ "leader": leader, "registered": registered, "agents": self.count, "last_error": last_error }),
        );
    }
}
