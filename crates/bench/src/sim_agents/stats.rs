//! The counters every simulated agent updates (attempts, answers by kind, pings, errors) and the
//! last error seen, shared through `Shared`; the reporter prints them as a line and as JSON.

use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most bytes of an error body kept for the report.
const ERROR_TEXT_MAX: usize = 300;

/// Counters shared by every simulated agent.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) attempts: AtomicU64,
    pub(super) registered: AtomicU64,
    pub(super) reregistered: AtomicU64,
    pub(super) redirects: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) stream_ends: AtomicU64,
    pub(super) pings: AtomicU64,
    pub(super) pongs_failed: AtomicU64,
    pub(super) ignored_messages: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    pub(super) fn note_error(&self, text: String) {
        let mut text = text;
        if text.len() > ERROR_TEXT_MAX {
            let mut end = ERROR_TEXT_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }

    pub(super) fn take_last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub(super) fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "attempts": g(&self.attempts),
            "registered": g(&self.registered),
            "reregistered": g(&self.reregistered),
            "redirects_followed": g(&self.redirects),
            "answers_503": g(&self.unavailable),
            "answers_other": g(&self.refused),
            "request_errors": g(&self.errors),
            "request_timeouts": g(&self.timeouts),
            "stream_ends": g(&self.stream_ends),
            "pings": g(&self.pings),
            "pongs_failed": g(&self.pongs_failed),
            "ignored_messages": g(&self.ignored_messages),
        })
    }

    pub(super) fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "attempts {}, 307 followed {}, 503 {}, other status {}, errors {}, timeouts {}, stream ends {}, pings {}, failed pongs {}",
            g(&self.attempts),
            g(&self.redirects),
            g(&self.unavailable),
            g(&self.refused),
            g(&self.errors),
            g(&self.timeouts),
            g(&self.stream_ends),
            g(&self.pings),
            g(&self.pongs_failed)
        )
    }
}
