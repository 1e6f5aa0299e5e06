//! One task's reliable status-update stream (mesos-http-api.md 8.5: updates with a `uuid` are
//! "retried until acknowledged").
//!
//! Updates of a task form a queue; only the head is in flight. The head is sent when it becomes the
//! head while connected, resent after `RETRY_INITIAL` and then at doubling intervals capped at
//! `RETRY_MAX`, and resent at once when the agent (re)registers. An acknowledgement naming the
//! head's uuid pops it and puts the next one in flight; any other uuid (a duplicate, or one for an
//! update not yet sent) is ignored, as Mesos' status update stream does. While disconnected nothing
//! is in flight and new updates only queue.
//!
//! No I/O and no clock: `now` comes in, updates to send come out.

use proto::TaskStatus;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// First resend interval of an unacknowledged update.
pub const RETRY_INITIAL: Duration = Duration::from_secs(10);
/// Longest resend interval (the doubling stops here).
pub const RETRY_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    due: Instant,
    interval: Duration,
}

/// What an acknowledgement did (short-lived; not worth boxing).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// The head was acknowledged; `send` is the new head when it must go out now.
    Acked { send: Option<TaskStatus> },
    /// The uuid is not the head's: a duplicate or an out-of-order acknowledgement. Nothing changed.
    Ignored,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateStream {
    pending: VecDeque<TaskStatus>,
    /// Set while the head is in flight.
    retry: Option<Retry>,
}

impl UpdateStream {
    /// A stream rebuilt from checkpoints: nothing in flight until the next `flush`.
    pub fn recovered(pending: VecDeque<TaskStatus>) -> Self {
        UpdateStream {
            pending,
            retry: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The update in flight (or next to go).
    pub fn head(&self) -> Option<&TaskStatus> {
        self.pending.front()
    }

    /// Whether an update with this uuid waits in the queue.
    pub fn contains(&self, uuid: &str) -> bool {
        self.pending.iter().any(|s| s.uuid.as_deref() == Some(uuid))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub fn pending(&self) -> impl Iterator<Item = &TaskStatus> {
        self.pending.iter()
    }

    /// When the head is due for a resend, if it is in flight.
    #[cfg(test)]
    pub fn next_due(&self) -> Option<Instant> {
        self.retry.map(|r| r.due)
    }

    /// Queues `status`; returns it when it became the head and must be sent now.
    pub fn push(
        &mut self,
        status: TaskStatus,
        now: Instant,
        connected: bool,
    ) -> Option<TaskStatus> {
        self.pending.push_back(status);
        if self.pending.len() == 1 && connected {
            self.start_head(now)
        } else {
            None
        }
    }

    /// Handles an acknowledgement of `uuid`.
    pub fn acknowledge(&mut self, uuid: &str, now: Instant, connected: bool) -> AckOutcome {
        let is_head = self.pending.front().and_then(|s| s.uuid.as_deref()) == Some(uuid);
        if !is_head {
            return AckOutcome::Ignored;
        }
        self.pending.pop_front();
        self.retry = None;
        let send = if connected {
            self.start_head(now)
        } else {
            None
        };
        AckOutcome::Acked { send }
    }

    /// The head again if its resend is due, with the interval doubled (capped).
    pub fn resend_due(&mut self, now: Instant) -> Option<TaskStatus> {
        let retry = self.retry?;
        if now < retry.due {
            return None;
        }
        let interval = (retry.interval * 2).min(RETRY_MAX);
        self.retry = Some(Retry {
            due: now + interval,
            interval,
        });
        self.pending.front().cloned()
    }

    /// (Re)registration: the head goes out now and its retry timer starts over.
    pub fn flush(&mut self, now: Instant) -> Option<TaskStatus> {
        self.start_head(now)
    }

    /// Disconnected: nothing is in flight until the next `flush`.
    pub fn pause(&mut self) {
        self.retry = None;
    }

    fn start_head(&mut self, now: Instant) -> Option<TaskStatus> {
        let head = self.pending.front()?.clone();
        self.retry = Some(Retry {
            due: now + RETRY_INITIAL,
            interval: RETRY_INITIAL,
        });
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{TaskId, TaskState};

    fn status(uuid: &str, state: TaskState) -> TaskStatus {
        let mut s = TaskStatus::new(TaskId::new("t"), state);
        s.uuid = Some(uuid.to_string());
        s
    }

    fn uuid_of(s: Option<TaskStatus>) -> Option<String> {
        s.and_then(|s| s.uuid)
    }

    #[test]
    fn only_the_head_is_in_flight_and_acks_advance_it() {
        let t0 = Instant::now();
        let mut stream = UpdateStream::default();
        assert_eq!(
            uuid_of(stream.push(status("a", TaskState::TaskStarting), t0, true)),
            Some("a".into())
        );
        assert_eq!(
            stream.push(status("b", TaskState::TaskRunning), t0, true),
            None
        );
        assert_eq!(
            stream.push(status("c", TaskState::TaskFinished), t0, true),
            None
        );
        // Out of order: "b" is not in flight yet, so its ack changes nothing.
        assert_eq!(stream.acknowledge("b", t0, true), AckOutcome::Ignored);
        assert_eq!(stream.len(), 3);
        match stream.acknowledge("a", t0, true) {
            AckOutcome::Acked { send } => assert_eq!(uuid_of(send), Some("b".into())),
            other => panic!("{other:?}"),
        }
        // Stale: "a" again is a duplicate.
        assert_eq!(stream.acknowledge("a", t0, true), AckOutcome::Ignored);
        assert!(matches!(
            stream.acknowledge("b", t0, true),
            AckOutcome::Acked { .. }
        ));
        assert!(matches!(
            stream.acknowledge("c", t0, true),
            AckOutcome::Acked { send: None }
        ));
        assert!(stream.is_empty());
        assert_eq!(stream.next_due(), None);
    }

    #[test]
    fn resends_double_up_to_the_cap() {
        let t0 = Instant::now();
        let mut stream = UpdateStream::default();
        stream.push(status("a", TaskState::TaskRunning), t0, true);
        assert_eq!(stream.resend_due(t0 + Duration::from_secs(9)), None);
        let mut at = t0 + RETRY_INITIAL;
        let mut expected_gaps = Vec::new();
        let mut gaps = Vec::new();
        let mut interval = RETRY_INITIAL;
        for _ in 0..10 {
            assert_eq!(uuid_of(stream.resend_due(at)), Some("a".into()));
            interval = (interval * 2).min(RETRY_MAX);
            expected_gaps.push(interval);
            let due = stream.next_due().unwrap();
            gaps.push(due - at);
            assert_eq!(stream.resend_due(due - Duration::from_millis(1)), None);
            at = due;
        }
        assert_eq!(gaps, expected_gaps);
        assert_eq!(*gaps.last().unwrap(), RETRY_MAX);
        assert_eq!(gaps[0], Duration::from_secs(20));
    }

    #[test]
    fn disconnected_updates_queue_and_flush_on_registration() {
        let t0 = Instant::now();
        let mut stream = UpdateStream::default();
        assert_eq!(
            stream.push(status("a", TaskState::TaskStarting), t0, false),
            None
        );
        assert_eq!(stream.resend_due(t0 + Duration::from_secs(3600)), None);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(uuid_of(stream.flush(t1)), Some("a".into()));
        assert_eq!(stream.next_due(), Some(t1 + RETRY_INITIAL));
        // A connection loss stops the timer; the reregistration resends with a fresh interval.
        stream.resend_due(t1 + RETRY_INITIAL);
        stream.pause();
        assert_eq!(stream.next_due(), None);
        let t2 = t1 + Duration::from_secs(100);
        assert_eq!(uuid_of(stream.flush(t2)), Some("a".into()));
        assert_eq!(stream.next_due(), Some(t2 + RETRY_INITIAL));
        // An ack while disconnected pops the head but sends nothing.
        stream.push(status("b", TaskState::TaskRunning), t2, true);
        stream.pause();
        assert_eq!(
            stream.acknowledge("a", t2, false),
            AckOutcome::Acked { send: None }
        );
        assert_eq!(uuid_of(stream.flush(t2)), Some("b".into()));
    }
}
