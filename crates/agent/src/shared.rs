//! State shared between the driver, the master link and the HTTP handlers.
//!
//! The core sits behind a plain mutex: every critical section is short, synchronous and never held
//! across an `.await`. Facts fixed at start (flags, resources, addresses) sit beside it unlocked.

use crate::core::Core;
use proto::{Attribute, ResourceBag};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// What the agent knows about itself from the moment it starts.
#[derive(Debug, Clone)]
pub struct AgentStatic {
    pub flags: BTreeMap<String, String>,
    pub hostname: String,
    /// Advertised IP and port (`pid` is `slave(1)@ip:port`).
    pub advertise_ip: String,
    pub port: u16,
    pub resources: ResourceBag,
    pub attributes: Vec<Attribute>,
    /// Wall-clock start, seconds since the epoch.
    pub start_time: f64,
    pub started: Instant,
}

impl AgentStatic {
    pub fn endpoint(&self) -> String {
        if self.advertise_ip.contains(':') {
            format!("[{}]:{}", self.advertise_ip, self.port)
        } else {
            format!("{}:{}", self.advertise_ip, self.port)
        }
    }

    pub fn pid(&self) -> String {
        format!("slave(1)@{}", self.endpoint())
    }
}

pub struct Shared {
    core: Mutex<Core>,
    /// Hostname of the leading master as detected, `None` when no leader is known.
    leader: Mutex<Option<String>>,
    pub info: AgentStatic,
    /// Checkpoints that could not be read at start or written since (`slave/recovery_errors`).
    pub recovery_errors: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    pub fn new(core: Core, info: AgentStatic) -> Self {
        Shared {
            core: Mutex::new(core),
            leader: Mutex::new(None),
            info,
            recovery_errors: Default::default(),
        }
    }

    /// The core. A panic while it was held would leave it poisoned; its data is still the best
    /// there is, so the poison is ignored rather than taking the agent down.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn leader(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_leader(&self, hostname: Option<String>) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = hostname;
    }
}

/// Seconds since the epoch, as `/state` and status updates write times.
pub fn wall_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
