//! A Mesos v1 scheduler API client: what the Marathon service (and any Rust scheduler in tepui)
//! uses to talk to the master. ARCHITECTURE.md: "A future `marathon` crate reaches the master only
//! through the public v1 scheduler API" — so this crate speaks exactly that API
//! (mesos-http-api.md section 8) over HTTP, and nothing internal.
//!
//! What it does:
//! - finds the leading master through ZooKeeper (`zk://…/mesos`, mesos-ha.md 2) or at a fixed
//!   `host:port`, following 307 redirects from standbys and retrying 503s (`detect`);
//! - SUBSCRIBEs, decodes the RecordIO stream (mesos-http-api.md 7) into `proto::scheduler::Event`s,
//!   remembers `Mesos-Stream-Id` and the framework id, watches heartbeats, and re-subscribes with the
//!   framework id after a broken stream, silence, or a new leader, with jittered exponential backoff
//!   (mesos-http-api.md 8.6; `connection`, `backoff`);
//! - sends the other calls on separate requests carrying the stream id (`calls`).
//!
//! ```no_run
//! # async fn demo(info: proto::FrameworkInfo) -> Result<(), scheduler_client::ClientError> {
//! use scheduler_client::{ClientConfig, ClientEvent, SchedulerClient};
//! let (client, mut events) = SchedulerClient::start(ClientConfig::new("zk://zk1:2181/mesos", info, true))?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         ClientEvent::Event(e) if e.kind == "OFFERS" => { /* accept or decline */ }
//!         ClientEvent::FrameworkRemoved { .. } => break,
//!         _ => {}
//!     }
//! }
//! # drop(client); Ok(()) }
//! ```
//!
//! Threading: one background task per client owns the subscription; `SchedulerClient` is a cheap
//! clone-able handle whose calls run on the caller's task. The task ends on `stop`, after TEARDOWN,
//! when the master says the framework was removed or failed over to another instance, or when the
//! events receiver is dropped.

pub mod backoff;
mod calls;
pub mod config;
mod connection;
pub mod detect;
pub mod error;

pub use config::{ClientConfig, MasterAddress};
pub use error::ClientError;

use proto::scheduler::Event;
use proto::FrameworkId;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch};

/// What the client tells its owner, in stream order.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a proto Event per master event; boxing buys nothing here
pub enum ClientEvent {
    /// A subscription is open (SUBSCRIBED received). `reregistered`: the SUBSCRIBE carried a
    /// framework id (failover, re-subscription) rather than registering a new framework.
    /// Calls work from now until the next `Disconnected`.
    Connected {
        framework_id: FrameworkId,
        master: String,
        reregistered: bool,
    },
    /// Every event of the stream, SUBSCRIBED included (HEARTBEAT only if configured).
    Event(Event),
    /// The open subscription ended; the client re-subscribes on its own (unless it stops).
    Disconnected { reason: String },
    /// The framework is gone for good (TEARDOWN, or the master answered "Framework has been
    /// removed"). The client has stopped; the owner should exit.
    FrameworkRemoved { message: String },
    /// Another scheduler instance subscribed with this framework id and took the stream over
    /// ("Framework failed over", mesos-http-api.md 8.1). The client has stopped rather than fight
    /// for the stream.
    FailedOver { message: String },
}

/// The subscription calls go through.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Session {
    /// `host:port` that answered the SUBSCRIBE (after redirects).
    pub endpoint: String,
    pub stream_id: String,
    pub framework_id: FrameworkId,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub session: Option<Session>,
    /// The framework id to subscribe with: from the config, then from every SUBSCRIBED.
    pub framework_id: Option<FrameworkId>,
    pub stopped: bool,
    /// Set by a successful TEARDOWN: the loop reports `FrameworkRemoved` and stops.
    pub torn_down: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    pub http: reqwest::Client,
    pub call_timeout: std::time::Duration,
    pub stop: watch::Sender<bool>,
}

impl Shared {
    /// The state; a poisoned lock (a panic elsewhere) still holds consistent plain data.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The handle: calls, the current framework id, stop. Clone it freely.
#[derive(Clone)]
pub struct SchedulerClient {
    shared: Arc<Shared>,
}

impl SchedulerClient {
    /// Starts the client task (inside a tokio runtime) and returns the handle and the events.
    /// Fails only on a bad master address or an HTTP client that cannot be built.
    pub fn start(
        config: ClientConfig,
    ) -> Result<(SchedulerClient, mpsc::Receiver<ClientEvent>), ClientError> {
        let address = MasterAddress::parse(&config.master)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            // Redirects are followed by hand: the endpoint that answers is where calls must go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot build the HTTP client: {e}")))?;
        let detector = detect::detector(&address, config.zk_session_timeout)?;
        let (stop, stop_rx) = watch::channel(false);
        let state = State {
            framework_id: config.initial_framework_id(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            http,
            call_timeout: config.call_timeout,
            stop,
        });
        let (events_tx, events_rx) = mpsc::channel(config.events_capacity.max(1));
        let runner = connection::Runner::new(shared.clone(), config, detector, events_tx, stop_rx);
        tokio::spawn(runner.run());
        Ok((SchedulerClient { shared }, events_rx))
    }

    /// The framework id, once a master has assigned or confirmed it (store it for failover).
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared.state().framework_id.clone()
    }

    /// Whether a subscription is open (calls can be sent).
    pub fn is_subscribed(&self) -> bool {
        self.shared.state().session.is_some()
    }

    /// `host:port` of the master the open subscription goes to.
    pub fn master(&self) -> Option<String> {
        self.shared
            .state()
            .session
            .as_ref()
            .map(|s| s.endpoint.clone())
    }

    /// Closes the subscription and ends the client task, without tearing the framework down (the
    /// master keeps its tasks for `failover_timeout`).
    pub fn stop(&self) {
        self.shared.state().stopped = true;
        let _ = self.shared.stop.send(true);
    }
}
