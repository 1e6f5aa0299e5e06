//! The replicated log's data model (replicated-log.md section 2) and its messages (section 3).
//! Everything here is plain data: the protocol roles (`replica`, `coordinator`, `recovery`) are state
//! machines over it, and the runtime moves it between disk and network.

use serde::{Deserialize, Serialize};

/// Format version carried by every stored record and every message, so a later release can
/// migrate it or refuse it with a clear message instead of misreading it.
pub const FORMAT_VERSION: u32 = 1;

/// A position in the log.
pub type Position = u64;

/// A Paxos proposal (ballot) number. Not globally unique: conflicts resolve by REJECT and bump
/// (replicated-log.md 5).
pub type Proposal = u64;

/// Identifies a replica in the network (its index, or a hash of its address).
pub type ReplicaId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicaStatus {
    /// No durable state (fresh or wiped disk).
    Empty,
    /// First phase of auto-initialization.
    Starting,
    /// Catching up after losing state.
    Recovering,
    /// A normal member: the only status that votes.
    Voting,
}

/// Per-replica durable metadata (replicated-log.md 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Metadata {
    pub status: ReplicaStatus,
    /// Highest implicit promise made.
    pub promised: Proposal,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            status: ReplicaStatus::Empty,
            promised: 0,
        }
    }
}

/// What a position holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Value {
    Nop {
        #[serde(default)]
        tombstone: bool,
    },
    Append {
        /// Base64 in JSON: a byte array as numbers would be several times larger on the wire.
        #[serde(with = "base64_bytes")]
        bytes: Vec<u8>,
    },
    /// Removes every position below `to` once learned.
    Truncate { to: Position },
}

/// One position's state at a replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Action {
    pub position: Position,
    /// Highest explicit promise made for this position.
    pub promised: Proposal,
    /// The proposal that wrote `value`; `None` while only promised.
    pub performed: Option<Proposal>,
    pub learned: bool,
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Accept,
    /// The replica has promised a higher proposal (carried in the response).
    Reject,
    /// The replica does not vote (not VOTING).
    Ignored,
}

/// Messages between replicas and coordinators (replicated-log.md 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Message {
    /// No `position`: implicit promise for all unwritten positions (election).
    PromiseRequest {
        proposal: Proposal,
        position: Option<Position>,
    },
    PromiseResponse {
        verdict: Verdict,
        /// On REJECT, the higher proposal the replica has promised.
        proposal: Proposal,
        /// Implicit: the replica's end; explicit: the position asked about.
        position: Option<Position>,
        /// Explicit promises return the action already at that position, if any.
        action: Option<Action>,
    },
    WriteRequest {
        proposal: Proposal,
        position: Position,
        value: Value,
    },
    WriteResponse {
        verdict: Verdict,
        proposal: Proposal,
        position: Position,
    },
    Learned {
        action: Action,
    },
    RecoverRequest,
    RecoverResponse {
        status: ReplicaStatus,
        begin: Option<Position>,
        end: Option<Position>,
    },
}

/// A message with its envelope: format version and a request id so replies match requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Envelope {
    pub format_version: u32,
    pub from: ReplicaId,
    /// Echoed in replies; lets a coordinator ignore answers to older rounds.
    pub request_id: u64,
    pub message: Message,
}

impl Envelope {
    /// An envelope of the current format version.
    pub fn new(from: ReplicaId, request_id: u64, message: Message) -> Envelope {
        Envelope {
            format_version: FORMAT_VERSION,
            from,
            request_id,
            message,
        }
    }
}

impl Value {
    /// A tombstone stands for a position below some replica's `begin` (replicated-log.md 2): it is
    /// compatible with whatever was chosen there, since a learned TRUNCATE removed it.
    pub fn is_tombstone(&self) -> bool {
        matches!(self, Value::Nop { tombstone: true })
    }
}

/// Serializes bytes as one base64 string (the protobuf JSON mapping of `bytes`).
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn appended_bytes_travel_as_base64() {
        let value = Value::Append {
            bytes: vec![0, 255, 7],
        };
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"type":"APPEND","bytes":"AP8H"}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), value);
        assert!(serde_json::from_str::<Value>(r#"{"type":"APPEND","bytes":"!!"}"#).is_err());
    }
}
