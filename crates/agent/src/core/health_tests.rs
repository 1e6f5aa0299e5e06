//! Health checks through the core: probes handed out, updates queued and checkpointed, the kill
//! and its terminal update, restarts, and refusal of bad checks.

use super::*;
use crate::core::{CheckpointOp, Exit, UpdateRecord, REASON_TASK_INVALID};
use proto::{AgentId, FrameworkInfo, MasterInfo, TaskInfo};
use std::path::PathBuf;

struct H {
    core: Core,
    t0: Instant,
}

fn fw() -> FrameworkId {
    FrameworkId::new("F1")
}
fn tid() -> TaskId {
    TaskId::new("web")
}

fn task(health_check: serde_json::Value) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": "web", "task_id": {"value": "web"}, "agent_id": {"value": "S1"},
        "command": {"value": "sleep 600"},
        "kill_policy": {"grace_period": {"nanoseconds": 3_000_000_000i64}},
        "health_check": health_check
    }))
    .unwrap()
}

fn fast_check() -> serde_json::Value {
    serde_json::json!({"type": "TCP", "tcp": {"port": 31005}, "delay_seconds": 0, "interval_seconds": 1,
        "timeout_seconds": 1, "consecutive_failures": 2, "grace_period_seconds": 0})
}

impl H {
    fn new() -> H {
        let mut counter = 0u128;
        let uuids = Box::new(move || {
            counter += 1;
            uuid::Uuid::from_u128(counter)
        });
        let mut core = Core::new(PathBuf::from("/w"), Duration::from_secs(5), uuids);
        let t0 = Instant::now();
        let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m1".into());
        core.registered(now(t0, 0), AgentId::new("S1"), master);
        H { core, t0 }
    }
    fn at(&self, secs: u64) -> Now {
        now(self.t0, secs)
    }
    fn start(&mut self, check: serde_json::Value) -> Vec<Effect> {
        let framework: FrameworkInfo = serde_json::from_value(
            serde_json::json!({"user": "u", "name": "fw", "id": {"value": "F1"}}),
        )
        .unwrap();
        let mut effects = self.core.run_task(self.at(0), framework, task(check));
        effects.extend(self.core.spawned(self.at(0), &fw(), &tid(), 4242));
        effects
    }
    /// Runs the tick at `secs`, answers its one probe with `healthy`; returns the effects.
    fn check(&mut self, secs: u64, healthy: bool) -> Vec<Effect> {
        let effects = self.core.health_tick(self.at(secs));
        let [Effect::CheckHealth(probe)] = effects.as_slice() else {
            panic!("one probe expected at {secs}s: {effects:?}")
        };
        assert_eq!(probe.timeout, Duration::from_secs(1));
        let seq = probe.seq;
        self.core
            .health_result(self.at(secs), &fw(), &tid(), seq, healthy)
    }
    fn health_updates(&self) -> Vec<Option<bool>> {
        let task = self.core.task(&fw(), &tid()).unwrap();
        task.statuses
            .iter()
            .filter(|s| s.reason.as_deref() == Some(REASON_TASK_HEALTH_CHECK_STATUS_UPDATED))
            .map(|s| {
                assert_eq!(s.state, TaskState::TaskRunning);
                assert!(s.uuid.is_some(), "health updates are reliable");
                s.healthy
            })
            .collect()
    }
}

fn now(t0: Instant, secs: u64) -> Now {
    Now {
        at: t0 + Duration::from_secs(secs),
        wall: 1_700_000_000.0 + secs as f64,
    }
}

fn kills(effects: &[Effect]) -> Vec<Duration> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Kill { grace, .. } => Some(*grace),
            _ => None,
        })
        .collect()
}

#[test]
fn checks_wait_for_running_and_the_delay() {
    let mut h = H::new();
    let framework: FrameworkInfo = serde_json::from_value(
        serde_json::json!({"user": "u", "name": "fw", "id": {"value": "F1"}}),
    )
    .unwrap();
    let check = serde_json::json!({"type": "TCP", "tcp": {"port": 1}, "delay_seconds": 5});
    h.core.run_task(h.at(0), framework, task(check));
    assert!(h.core.health_tick(h.at(10)).is_empty(), "not RUNNING yet");
    assert_eq!(h.core.next_health_check_due(), None);
    h.core.spawned(h.at(10), &fw(), &tid(), 4242);
    assert_eq!(
        h.core.next_health_check_due(),
        Some(h.t0 + Duration::from_secs(15))
    );
    assert!(h.core.health_tick(h.at(14)).is_empty());
    assert_eq!(h.core.health_tick(h.at(15)).len(), 1);
}

#[test]
fn a_flip_is_one_checkpointed_update_each_way() {
    let mut h = H::new();
    h.start(fast_check());
    h.core.drain_checkpoints();
    h.check(0, true);
    let journal = h.core.drain_checkpoints();
    assert!(
        journal.iter().any(
            |op| matches!(op, CheckpointOp::Update { record: UpdateRecord::Update { status, .. }, .. }
            if status.healthy == Some(true))
        ),
        "the health update is checkpointed: {journal:?}"
    );
    h.check(1, true);
    h.check(2, false);
    h.check(3, true);
    h.check(4, true);
    assert_eq!(
        h.health_updates(),
        vec![Some(true), Some(false), Some(true)]
    );
}

#[test]
fn consecutive_failures_kill_with_the_kill_policy_and_the_terminal_update_says_why() {
    let mut h = H::new();
    h.start(fast_check());
    assert!(kills(&h.check(0, true)).is_empty());
    assert!(kills(&h.check(1, false)).is_empty());
    let effects = h.check(2, false);
    assert_eq!(kills(&effects), vec![Duration::from_secs(3)]);
    assert_eq!(
        h.health_updates(),
        vec![Some(true), Some(false)],
        "unchanged health is not reported again"
    );
    assert_eq!(
        h.core.next_health_check_due(),
        None,
        "no check after giving up"
    );
    assert!(h.core.health_tick(h.at(10)).is_empty());
    h.core.exited(h.at(3), &fw(), &tid(), Exit::Signal(15));
    let last = h
        .core
        .task(&fw(), &tid())
        .unwrap()
        .statuses
        .last()
        .unwrap()
        .clone();
    assert_eq!(last.state, TaskState::TaskKilled);
    assert_eq!(last.healthy, Some(false));
    assert_eq!(last.message.as_deref(), Some(HEALTH_KILL_MESSAGE));
}

#[test]
fn a_check_past_its_timeout_fails() {
    let mut h = H::new();
    h.start(fast_check());
    let effects = h.core.health_tick(h.at(0));
    let [Effect::CheckHealth(probe)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let seq = probe.seq;
    assert_eq!(
        h.core.next_health_check_due(),
        Some(h.t0 + Duration::from_secs(1))
    );
    // The timeout passes with no answer: a failure, reported as unhealthy.
    assert!(
        h.core.health_tick(h.at(1)).is_empty(),
        "the next check waits an interval"
    );
    assert_eq!(h.health_updates(), vec![Some(false)]);
    // The late answer is ignored.
    assert!(h
        .core
        .health_result(h.at(1), &fw(), &tid(), seq, true)
        .is_empty());
    assert_eq!(h.health_updates(), vec![Some(false)]);
}

#[test]
fn a_user_kill_stops_health_updates_and_keeps_the_plain_terminal_update() {
    let mut h = H::new();
    h.start(fast_check());
    let effects = h.core.health_tick(h.at(0));
    let [Effect::CheckHealth(probe)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let seq = probe.seq;
    h.core.kill_task(h.at(0), &fw(), &tid(), None);
    assert!(h
        .core
        .health_result(h.at(0), &fw(), &tid(), seq, false)
        .is_empty());
    h.core.exited(h.at(1), &fw(), &tid(), Exit::Signal(15));
    let last = h
        .core
        .task(&fw(), &tid())
        .unwrap()
        .statuses
        .last()
        .unwrap()
        .clone();
    assert_eq!((last.state, last.healthy), (TaskState::TaskKilled, None));
    assert!(h.core.health_tick(h.at(2)).is_empty());
    assert_eq!(h.core.next_health_check_due(), None);
}

#[test]
fn a_bad_health_check_is_refused_naming_the_field() {
    let mut h = H::new();
    let effects = h.start(serde_json::json!({"type": "HTTP", "http": {"port": 99999}}));
    let status = effects
        .iter()
        .find_map(|e| match e {
            Effect::Send(u) => Some(u.status.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(status.state, TaskState::TaskError);
    assert_eq!(status.reason.as_deref(), Some(REASON_TASK_INVALID));
    assert!(status.message.unwrap().contains("health_check.http.port"));
    assert!(!effects.iter().any(|e| matches!(e, Effect::Launch(_))));
}

#[test]
fn tasks_found_running_after_a_restart_are_checked_again() {
    let mut h = H::new();
    h.start(fast_check());
    h.check(0, true);
    // A restarted core knows the task only from its checkpoints: no checking state.
    h.core.health.clear();
    h.core.health_rescan = true;
    let effects = h.core.health_tick(h.at(5));
    assert_eq!(
        effects.len(),
        1,
        "checking resumes at once (delay 0): {effects:?}"
    );
    // The health known before the restart is not reported again.
    let Effect::CheckHealth(probe) = &effects[0] else {
        panic!()
    };
    let seq = probe.seq;
    h.core.health_result(h.at(5), &fw(), &tid(), seq, true);
    assert_eq!(h.health_updates(), vec![Some(true)]);
}
