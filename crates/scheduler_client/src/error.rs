//! Errors of the scheduler client, as an enum callers can match (STYLE.md: no error strings to
//! compare). Calls distinguish "the master said no" (`Rejected`, a 4xx with its plain-text reason,
//! mesos-http-api.md section 1) from "the master could not be asked" (`Transport`, `Unavailable`) and
//! from "there is no subscription to call on" (`NotSubscribed`, `Stopped`), because the caller reacts
//! differently: fix the call, retry later, or wait for `ClientEvent::Connected`.

/// Why a call or the client failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// No subscription is open right now (connecting, or between two subscriptions). Calls need the
    /// current `Mesos-Stream-Id` (mesos-http-api.md 8.3); wait for `ClientEvent::Connected`.
    #[error("not subscribed to a master")]
    NotSubscribed,
    /// The master refused the call: a 4xx, with the plain-text reason it gave.
    #[error("the master rejected the call with {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The master answered something else than 2xx/4xx: 307 (leadership moved since we subscribed),
    /// 503 (no leader, recovering), 5xx. The subscription loop notices and re-subscribes.
    #[error("the master could not serve the call ({status}): {body}")]
    Unavailable { status: u16, body: String },
    /// The request did not complete: connection refused or reset, timeout, unreadable response.
    #[error("transport error: {0}")]
    Transport(String),
    /// The configured master address is neither `host:port` nor a `zk://`/`file://` URL.
    #[error("bad master address: {0}")]
    BadMaster(String),
    /// The call could not be encoded (e.g. a non-finite number in it).
    #[error("invalid call: {0}")]
    Invalid(String),
    /// The client has stopped (`stop`, TEARDOWN, framework removed, or the events receiver dropped).
    #[error("the scheduler client has stopped")]
    Stopped,
}

impl ClientError {
    /// Whether retrying the same call later may succeed (the call itself was not refused).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::NotSubscribed
                | ClientError::Unavailable { .. }
                | ClientError::Transport(_)
        )
    }
}

/// Most bytes of a response body kept in an error or a log line.
pub(crate) const ERROR_BODY_MAX: usize = 512;

/// `text` cut to at most `ERROR_BODY_MAX` bytes, on a character boundary.
pub(crate) fn clip(mut text: String) -> String {
    if text.len() > ERROR_BODY_MAX {
        let mut end = ERROR_BODY_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A record or body shown in a log line: lossy UTF-8, clipped.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    clip(String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_MAX + 4)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_char_boundaries() {
        let long = "é".repeat(ERROR_BODY_MAX);
        let clipped = clip(long);
        assert!(clipped.len() <= ERROR_BODY_MAX + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert_eq!(clip("short".into()), "short");
    }

    #[test]
    fn retryable_errors() {
        assert!(ClientError::NotSubscribed.is_retryable());
        assert!(!ClientError::Rejected {
            status: 400,
            body: String::new()
        }
        .is_retryable());
        assert!(!ClientError::Stopped.is_retryable());
    }
}
