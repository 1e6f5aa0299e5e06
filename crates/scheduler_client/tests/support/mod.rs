//! Test support: a real `tepui dev` child process, a scripted fake master, and waits on client
//! events with deadlines (never sleeps to synchronise).

#![allow(dead_code)] // each test file uses a different part

pub mod fake;

use proto::scheduler::Event;
use proto::FrameworkInfo;
use scheduler_client::ClientEvent;
use std::time::Duration;
use tokio::sync::mpsc;

#[allow(unused_imports)] // each test file uses a different part
pub use dev_process::{free_port, tepui_bin, Dev, TempDir};

pub fn framework_info(name: &str, failover_timeout: f64) -> FrameworkInfo {
    serde_json::from_value(serde_json::json!({
        "user": std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into()),
        "name": name,
        "failover_timeout": failover_timeout,
        "roles": ["*"],
        "capabilities": [{"type": "MULTI_ROLE"}],
    }))
    .expect("framework info")
}

/// Waits (until `timeout`) for an event `pick` maps to `Some`, skipping others; panics with the
/// events seen when the deadline passes or the channel closes.
pub async fn wait_for<T>(
    events: &mut mpsc::Receiver<ClientEvent>,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}; saw: {seen:#?}"),
            Ok(None) => panic!("events channel closed while waiting for {what}; saw: {seen:#?}"),
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
                seen.push(summary(&event));
            }
        }
    }
}

/// Asserts that no event `bad` matches arrives within `window` (a negative check has to wait).
pub async fn expect_none(
    events: &mut mpsc::Receiver<ClientEvent>,
    window: Duration,
    what: &str,
    bad: impl Fn(&ClientEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        assert!(!bad(&event), "unexpected {what}: {}", summary(&event));
    }
}

pub fn summary(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Event(e) => match &e.update {
            Some(u) => format!(
                "UPDATE {} {} reason={:?} uuid={}",
                u.status.task_id,
                u.status.state.name(),
                u.status.reason,
                u.status.uuid.is_some()
            ),
            None => e.kind.clone(),
        },
        other => format!("{other:?}"),
    }
}

pub fn as_event(event: &ClientEvent) -> Option<&Event> {
    match event {
        ClientEvent::Event(e) => Some(e),
        _ => None,
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "scheduler_client=debug".into()),
        )
        .with_test_writer()
        .try_init();
}
