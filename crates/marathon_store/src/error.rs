//! Errors of the store and the election. Each variant is one thing a caller reacts to differently:
//! `Fenced` and `SessionLost` mean "this instance no longer leads: exit"; `TooLarge` is a caller's
//! bug or an oversized app (reject the request); `Corrupt`/`NewerFormat` name the znode to repair.

/// What can go wrong reading or writing Marathon's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A newer leader bumped the epoch since our `fence()`: nothing was written.
    #[error("fenced: another leader took over the store; nothing was written")]
    Fenced,
    /// `commit` before `fence()`: only an elected, fenced leader writes.
    #[error("not fenced: call fence() after being elected, before committing")]
    NotFenced,
    /// One record is over `RECORD_BYTES_MAX`; checked before ZooKeeper is touched.
    #[error("record {key} is {bytes} bytes, over the {max} byte limit", max = crate::RECORD_BYTES_MAX)]
    TooLarge { key: String, bytes: usize },
    /// The whole multi would exceed what ZooKeeper accepts in one request (jute.maxbuffer).
    #[error("commit of {bytes} bytes is over the {max} byte limit of one ZooKeeper request", max = crate::COMMIT_BYTES_MAX)]
    CommitTooLarge { bytes: usize },
    /// An id that cannot be stored (empty).
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The ZooKeeper session expired or was closed: ephemeral nodes and watches are gone.
    #[error("the ZooKeeper session is lost")]
    SessionLost,
    /// The connection dropped during a request; a commit may or may not have been applied.
    #[error("lost the connection to ZooKeeper during a request")]
    ConnectionLoss,
    /// A stored record that does not parse, with its znode path.
    #[error("record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    /// A record written by a newer build; never misread.
    #[error("record {key} has format {found}, newer than this build reads ({supported})", supported = crate::FORMAT_VERSION)]
    NewerFormat { key: String, found: u64 },
    /// A znode the store needs is missing (e.g. the state directories were deleted underneath).
    #[error("no znode {0}")]
    NoNode(String),
    /// The commit kept racing with another write of the same leader; nothing was written.
    #[error("commit conflicted with concurrent changes: {0}")]
    Conflict(String),
    /// Any other ZooKeeper error.
    #[error("ZooKeeper error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Maps a ZooKeeper error on `path`.
    pub(crate) fn from_zk(error: zookeeper_client::Error, path: &str) -> StoreError {
        use zookeeper_client::Error as E;
        match error {
            E::SessionExpired | E::ClientClosed | E::AuthFailed => StoreError::SessionLost,
            E::ConnectionLoss | E::Timeout | E::NoHosts => StoreError::ConnectionLoss,
            E::NoNode => StoreError::NoNode(path.to_string()),
            other => StoreError::Backend(format!("{path}: {other}")),
        }
    }
}
