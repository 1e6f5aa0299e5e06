//! The election loop over a coordination service: one session at a time; as a contender it keeps
//! one member node (`<dir>/json.info_<seq>` holding the payload); as a detector it watches the
//! group's children and publishes the leader and every registered master. It runs against any
//! `Backend`: real ZooKeeper (`zookeeper.rs`) or the in-memory ensemble (`memory.rs`) that tests
//! drive.
//!
//! Sessions (mesos-ha.md 2.4): on a lost connection a local timer equal to the session timeout
//! starts; if the session is not back in time it is treated as expired here and now, without
//! waiting for the server to say so. Memberships are then gone: the detector reports no leader, a
//! contender's candidacy is lost, and a new session is opened (a backup contends again).

use crate::rules::{decode_leader, leader_of, masters_of, parse_member, MASTER_LABEL};
use crate::{Candidacy, ElectionError, Leader};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::watch;

/// A session's connection state as the election sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Connected,
    /// Connection lost; the session may still come back.
    Disconnected,
    /// The server expired the session (terminal).
    Expired,
}

/// Resolves once when the watched children change (or the session ends).
pub type ChangeWatch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One session with the coordination service.
pub trait Session: Send + Sync + 'static {
    /// Creates an ephemeral sequential member `<dir>/<label>_<seq>`; returns its name.
    fn create_member(
        &self,
        dir: &str,
        label: &str,
        data: &[u8],
    ) -> impl Future<Output = Result<String, ElectionError>> + Send;
    /// The children of `dir` and a watch that fires when they change.
    fn children(
        &self,
        dir: &str,
    ) -> impl Future<Output = Result<(Vec<String>, ChangeWatch), ElectionError>> + Send;
    /// The data of a node; `None` if it no longer exists.
    fn data(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ElectionError>> + Send;
    fn delete(&self, path: &str) -> impl Future<Output = Result<(), ElectionError>> + Send;
    fn status(&self) -> watch::Receiver<SessionStatus>;
    /// Ends the session at once: its ephemeral nodes vanish for everyone.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Opens sessions, creating the group's directory (persistent, recursive) if absent.
pub trait Backend: Send + Sync + 'static {
    type Session: Session;
    fn connect(
        &self,
        dir: &str,
        session_timeout: Duration,
    ) -> impl Future<Output = Result<Self::Session, ElectionError>> + Send;
}

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// The group's znode, e.g. `/mesos`.
    pub dir: String,
    pub session_timeout: Duration,
    /// The payload to contend with (MasterInfo JSON); `None` only detects.
    pub payload: Option<Vec<u8>>,
}

/// What the election loop publishes: the leader, this contender's candidacy, and every master
/// registered in the group (`host:port`, lowest sequence first).
pub struct Published {
    pub leader: watch::Sender<Option<Leader>>,
    pub candidacy: watch::Sender<Candidacy>,
    pub masters: watch::Sender<Vec<String>>,
}

/// Delay between attempts to open a session.
pub(crate) const RECONNECT_DELAY: Duration = Duration::from_millis(200);
/// How often a streak of failed connection attempts is logged again.
const CONNECT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Why one session's loop ended.
pub(crate) enum SessionEnd {
    Stop,
    Expired,
    /// The membership of a leader vanished: leadership is over for good.
    LostLeadership,
}

/// Runs the election until `stop` turns true. On stop a contender deletes its member and closes the
/// session first, so a graceful exit hands leadership over at once.
pub async fn run<B: Backend>(
    backend: B,
    config: ElectionConfig,
    published: Published,
    mut stop: watch::Receiver<bool>,
) {
    let Published {
        leader: leader_tx,
        candidacy: candidacy_tx,
        masters: masters_tx,
    } = &published;
    // Retries come every RECONNECT_DELAY; the warning only on the first failure of a streak and
    // then every CONNECT_WARNING_INTERVAL, so a missing ZooKeeper does not flood the log.
    let mut failures: u32 = 0;
    let mut warned_at: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let session = tokio::select! {
            result = backend.connect(&config.dir, config.session_timeout) => result,
            _ = stop.wait_for(|s| *s) => return,
        };
        let session = match session {
            Ok(s) => {
                if failures > 0 {
                    tracing::info!(
                        failed_attempts = failures,
                        "coordination session opened after retrying"
                    );
                }
                failures = 0;
                warned_at = None;
                s
            }
            Err(e) => {
                failures += 1;
                if warned_at.is_none_or(|at| at.elapsed() >= CONNECT_WARNING_INTERVAL) {
                    warned_at = Some(tokio::time::Instant::now());
                    tracing::warn!(error = %e, failed_attempts = failures, "cannot open a coordination session; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_DELAY) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        let end = run_session(&session, &config, &published, &mut stop).await;
        // Without a session the group's members are unknown.
        masters_tx.send_replace(Vec::new());
        match end {
            SessionEnd::Stop => {
                session.close().await;
                return;
            }
            SessionEnd::Expired => {
                tracing::warn!("coordination session expired; memberships are gone");
                leader_tx.send_replace(None);
                let was_elected = *candidacy_tx.borrow() == Candidacy::Elected;
                if config.payload.is_some() {
                    candidacy_tx.send_replace(Candidacy::Lost(ElectionError::SessionExpired));
                }
                session.close().await;
                // A leader never contends again: it must exit (fail-fast), and a later Elected
                // could hide from it that it had lost in between. Backups contend again.
                if was_elected {
                    return;
                }
            }
            SessionEnd::LostLeadership => {
                leader_tx.send_replace(None);
                candidacy_tx.send_replace(Candidacy::Lost(ElectionError::MembershipLost));
                session.close().await;
                return;
            }
        }
    }
}

async fn run_session<S: Session>(
    session: &S,
    config: &ElectionConfig,
    published: &Published,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let Published {
        leader: leader_tx,
        candidacy: candidacy_tx,
        masters: masters_tx,
    } = published;
    let mut status = session.status();
    // A contender holds one member per session (mesos-ha.md 2.2).
    let mut own: Option<String> = None;
    let mut disconnected_since: Option<tokio::time::Instant> = None;
    loop {
        if own.is_none() {
            if let Some(payload) = &config.payload {
                match session
                    .create_member(&config.dir, MASTER_LABEL, payload)
                    .await
                {
                    Ok(name) => {
                        tracing::info!(member = %name, "contending for leadership");
                        candidacy_tx.send_replace(Candidacy::Contending);
                        own = Some(name);
                    }
                    Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot create member yet");
                        if let Some(end) = wait_session(
                            &mut status,
                            stop,
                            &mut disconnected_since,
                            config.session_timeout,
                            None,
                        )
                        .await
                        {
                            return end;
                        }
                        continue;
                    }
                }
            }
        }
        let (children, change) = match session.children(&config.dir).await {
            Ok(c) => c,
            Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list members yet");
                if let Some(end) = wait_session(
                    &mut status,
                    stop,
                    &mut disconnected_since,
                    config.session_timeout,
                    None,
                )
                .await
                {
                    return end;
                }
                continue;
            }
        };
        if let Some(name) = &own {
            if !children.iter().any(|c| c == name) {
                // Our member vanished (deleted, or the session is gone): candidacy lost.
                tracing::warn!(member = %name, "own membership vanished");
                if *candidacy_tx.borrow() == Candidacy::Elected {
                    return SessionEnd::LostLeadership;
                }
                candidacy_tx.send_replace(Candidacy::Lost(ElectionError::MembershipLost));
                own = None;
                continue;
            }
        }
        let leader = leader_of(&children);
        if let (Some(name), Some(leader)) = (&own, &leader) {
            let elected = parse_member(name).is_some_and(|m| m.sequence == leader.sequence);
            let next = if elected {
                Candidacy::Elected
            } else {
                Candidacy::Contending
            };
            candidacy_tx.send_if_modified(|current| {
                if *current != next {
                    *current = next.clone();
                    true
                } else {
                    false
                }
            });
        }
        let detected = match &leader {
            None => None,
            Some(member) => match session
                .data(&format!(
                    "{}/{}",
                    config.dir.trim_end_matches('/'),
                    member.name
                ))
                .await
            {
                Ok(Some(data)) => match decode_leader(member, &data) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot decode the leader's data; no leader known");
                        None
                    }
                },
                // Vanished between listing and reading: the change watch fires; list again.
                Ok(None) => continue,
                Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
                Err(_) => continue,
            },
        };
        leader_tx.send_if_modified(|current| {
            if *current != detected {
                *current = detected.clone();
                true
            } else {
                false
            }
        });
        let known = leader
            .as_ref()
            .zip(detected.as_ref())
            .map(|(member, l)| (member.name.as_str(), l));
        let masters = match read_masters(session, &config.dir, &children, known).await {
            Ok(masters) => masters,
            Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
            // Read again once the session allows (the change watch or a reconnection wakes us).
            Err(_) => masters_tx.borrow().clone(),
        };
        masters_tx.send_if_modified(|current| {
            if *current != masters {
                *current = masters.clone();
                true
            } else {
                false
            }
        });
        if let Some(end) = wait_session(
            &mut status,
            stop,
            &mut disconnected_since,
            config.session_timeout,
            Some(change),
        )
        .await
        {
            if matches!(end, SessionEnd::Stop) {
                if let Some(name) = own.take() {
                    let path = format!("{}/{}", config.dir.trim_end_matches('/'), name);
                    if let Err(e) = session.delete(&path).await {
                        tracing::warn!(error = %e, "could not delete own member on stop; closing the session removes it");
                    }
                }
            }
            return end;
        }
    }
}

/// The addresses of the group's `json.info_*` members, lowest sequence first. The leader's was
/// read already (`known`: its member name and what it decoded to); a member that vanished or
/// holds undecodable data is left out.
async fn read_masters<S: Session>(
    session: &S,
    dir: &str,
    children: &[String],
    known: Option<(&str, &Leader)>,
) -> Result<Vec<String>, ElectionError> {
    let mut masters = Vec::new();
    for member in masters_of(children) {
        if let Some((name, leader)) = known {
            if name == member.name {
                masters.push(leader.endpoint.clone());
                continue;
            }
        }
        let path = format!("{}/{}", dir.trim_end_matches('/'), member.name);
        // `None`: the member vanished between listing and reading; the change watch fires.
        if let Some(data) = session.data(&path).await? {
            match decode_leader(&member, &data) {
                Ok(master) => masters.push(master.endpoint),
                Err(e) => {
                    tracing::debug!(error = %e, "a member's data does not decode; not listed")
                }
            }
        }
    }
    Ok(masters)
}

/// Waits for a children change (if given), a session state change worth acting on, or stop.
/// `None` means "look again"; `Some` ends the session. Applies the local expiry timer.
pub(crate) async fn wait_session(
    status: &mut watch::Receiver<SessionStatus>,
    stop: &mut watch::Receiver<bool>,
    disconnected_since: &mut Option<tokio::time::Instant>,
    session_timeout: Duration,
    change: Option<ChangeWatch>,
) -> Option<SessionEnd> {
    let mut change = change;
    loop {
        let current = *status.borrow_and_update();
        match current {
            SessionStatus::Expired => return Some(SessionEnd::Expired),
            SessionStatus::Connected => {
                if disconnected_since.take().is_some() {
                    // Look again: watches may have fired while we could not hear them.
                    tracing::info!("coordination session reconnected");
                    return None;
                }
            }
            SessionStatus::Disconnected => {
                if disconnected_since.is_none() {
                    tracing::warn!(
                        timeout_ms = session_timeout.as_millis() as u64,
                        "coordination connection lost; local session timer started"
                    );
                    *disconnected_since = Some(tokio::time::Instant::now());
                }
            }
        }
        let expiry = disconnected_since.map(|since| since + session_timeout);
        let local_expiry = async {
            match expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let changed = async {
            match change.as_mut() {
                Some(c) => c.await,
                None => {
                    // Nothing to watch: retry after a short pause while connected.
                    if current == SessionStatus::Connected {
                        tokio::time::sleep(RECONNECT_DELAY).await
                    } else {
                        std::future::pending().await
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Some(SessionEnd::Stop),
            _ = local_expiry => {
                // mesos-ha.md 2.4: expire locally, without waiting for the server's word.
                tracing::warn!("coordination session treated as expired after the session timeout without a connection");
                return Some(SessionEnd::Expired);
            }
            _ = changed => return None,
            result = status.changed() => {
                if result.is_err() {
                    return Some(SessionEnd::Expired);
                }
            }
        }
    }
}
