//! Group commit: the driver's checkpoints are made durable in batches, and the actions that depend
//! on them are performed only after their batch committed, in the order they were decided.
//!
//! How: `push` adds one step's checkpoint ops and actions. `kick`, when no commit is in flight,
//! hands back the actions of leading steps that need no writing, and starts a commit of the next
//! steps (whole steps, up to about `BATCH_OPS_MAX` ops) on the blocking pool. While it runs, later
//! steps gather; `done` resolves with the committed steps' actions. A commit costs one fdatasync
//! of the checkpoint log whatever its size (`checkpoint`), so batches are as large as what
//! gathered: a burst of 1,000 launches pays a handful of fdatasyncs, and an acknowledgement never
//! waits behind more than the one commit in flight. Ordering is global (simple, and per-task order
//! is what matters).
//!
//! A failed write is logged as an error and counted (`slave/recovery_errors`); the actions go ahead
//! anyway (the agent keeps working; what was not checkpointed may be lost by a restart).

use crate::checkpoint::Writer;
use crate::core::{CheckpointOp, Effect};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// About the most ops one commit takes (a step is never split).
pub const BATCH_OPS_MAX: usize = 4096;

/// Something the driver does once the checkpoints decided before it are durable.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, like `Effect`
pub enum Action {
    Effect(Effect),
    /// Tell the launcher this exit is checkpointed.
    AckExit(String),
}

struct Step {
    ops: Vec<CheckpointOp>,
    actions: Vec<Action>,
}

pub struct GroupCommit {
    writer: Arc<Writer>,
    errors: Arc<AtomicU64>,
    steps: VecDeque<Step>,
    in_flight: Option<(oneshot::Receiver<Vec<String>>, Vec<Action>)>,
}

impl GroupCommit {
    pub fn new(writer: Arc<Writer>, errors: Arc<AtomicU64>) -> Self {
        GroupCommit {
            writer,
            errors,
            steps: VecDeque::new(),
            in_flight: None,
        }
    }

    pub fn push(&mut self, ops: Vec<CheckpointOp>, actions: impl IntoIterator<Item = Action>) {
        let actions: Vec<Action> = actions.into_iter().collect();
        if ops.is_empty() && actions.is_empty() {
            return;
        }
        // Consecutive steps without ops merge (they only wait for what is before them).
        if ops.is_empty() {
            if let Some(last) = self.steps.back_mut() {
                last.actions.extend(actions);
                return;
            }
        }
        self.steps.push_back(Step { ops, actions });
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Nothing gathered and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none() && self.steps.is_empty()
    }

    /// Starts committing the next steps if no commit is in flight; returns the actions that may run
    /// now (those of leading steps with nothing to write).
    pub fn kick(&mut self) -> Vec<Action> {
        if self.in_flight.is_some() {
            return Vec::new();
        }
        let mut ready = Vec::new();
        while self.steps.front().is_some_and(|s| s.ops.is_empty()) {
            if let Some(step) = self.steps.pop_front() {
                ready.extend(step.actions);
            }
        }
        if self.steps.is_empty() {
            return ready;
        }
        let mut ops = Vec::new();
        let mut actions = Vec::new();
        while let Some(step) = self.steps.front() {
            if !ops.is_empty() && ops.len() + step.ops.len() > BATCH_OPS_MAX {
                break;
            }
            if let Some(step) = self.steps.pop_front() {
                ops.extend(step.ops);
                actions.extend(step.actions);
            }
        }
        let writer = self.writer.clone();
        let (tx, rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let errors = writer.commit(&ops);
            tracing::debug!(ops = ops.len(), took = ?started.elapsed(), "checkpoints committed");
            let _ = tx.send(errors);
        });
        self.in_flight = Some((rx, actions));
        ready
    }

    /// Waits for the commit in flight (forever if there is none); its actions, now safe to perform.
    pub async fn done(&mut self) -> Vec<Action> {
        let Some((rx, _)) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let errors = rx
            .await
            .unwrap_or_else(|_| vec!["the checkpoint commit did not complete".to_string()]);
        for error in &errors {
            tracing::error!(%error, "checkpoint write failed");
        }
        self.errors
            .fetch_add(errors.len() as u64, Ordering::Relaxed);
        self.in_flight
            .take()
            .map(|(_, actions)| actions)
            .unwrap_or_default()
    }

    /// Waits until the checkpoint files reflect every commit (they follow the log in the
    /// background): a stopping agent leaves them complete.
    pub async fn settle_files(&self) {
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || writer.flush()).await;
    }

    /// Commits everything gathered and waits for it; returns every action, in order.
    pub async fn flush(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        loop {
            if self.in_flight.is_some() {
                actions.extend(self.done().await);
            }
            actions.extend(self.kick());
            if self.is_idle() {
                return actions;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{AgentId, FrameworkId};

    fn op(i: usize) -> CheckpointOp {
        CheckpointOp::RemoveFramework {
            agent_id: AgentId::new("S1"),
            framework_id: FrameworkId::new(format!("F{i}")),
        }
    }

    fn acks(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::AckExit(c) => c.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn actions_wait_for_their_batch_and_keep_their_order() {
        let dir = std::env::temp_dir().join(format!("tepui-commit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let info = proto::agent_protocol::AgentInfo {
            id: None,
            hostname: "h".into(),
            port: 1,
            resources: Vec::new(),
            attributes: Vec::new(),
        };
        let writer = Arc::new(Writer::new(dir.clone(), info, 1, Default::default()));
        let mut commits = GroupCommit::new(writer, Arc::new(AtomicU64::new(0)));
        // Nothing to write: the actions run at once.
        commits.push(Vec::new(), [Action::AckExit("a".into())]);
        assert_eq!(acks(&commits.kick()), vec!["a"]);
        // A step with ops holds back its actions and every later one.
        commits.push(vec![op(1)], [Action::AckExit("b".into())]);
        assert!(commits.kick().is_empty());
        commits.push(Vec::new(), [Action::AckExit("c".into())]);
        for i in 0..BATCH_OPS_MAX + 4 {
            commits.push(vec![op(i)], [Action::AckExit(format!("d{i}"))]);
        }
        assert!(commits.kick().is_empty(), "one commit at a time");
        assert_eq!(acks(&commits.done().await), vec!["b"]);
        // "c" needed nothing written: it runs once "b" did, as the next batch starts.
        assert_eq!(acks(&commits.kick()), vec!["c"]);
        let second = acks(&commits.done().await);
        assert_eq!(second.len(), BATCH_OPS_MAX, "batches are capped");
        assert_eq!(second[0], "d0");
        let rest = acks(&commits.flush().await);
        assert_eq!(rest.len(), 4);
        assert_eq!(rest[3], format!("d{}", BATCH_OPS_MAX + 3));
        assert!(commits.is_idle());
        let _ = std::fs::remove_dir_all(dir);
    }
}
