//! Group membership without leadership: every member joins `<dir>` as an unlabeled ephemeral
//! sequential node holding its address, and everyone watches the set of addresses. The replicated
//! log finds its replicas this way (`<zk-path>/log_replicas/<seq>` holding
//! `log-replica(1)@ip:port`, mesos-ha.md 2.2).

use crate::group::{wait_session, Backend, Session, SessionEnd, RECONNECT_DELAY};
use crate::{ElectionError, ZkUrl};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;

/// A running membership: the current set of members' data, and the handle to leave.
pub struct Membership {
    pub members: watch::Receiver<BTreeSet<String>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    _fixed: Option<watch::Sender<BTreeSet<String>>>,
}

impl Membership {
    /// A fixed set (replicas named by flag, or a single master).
    pub fn fixed(members: BTreeSet<String>) -> Membership {
        let (tx, rx) = watch::channel(members);
        Membership {
            members: rx,
            stop: watch::channel(false).0,
            task: None,
            _fixed: Some(tx),
        }
    }

    pub fn start<B: Backend>(
        backend: B,
        dir: String,
        session_timeout: Duration,
        data: String,
    ) -> Membership {
        let (tx, rx) = watch::channel(BTreeSet::new());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(backend, dir, session_timeout, data, tx, stop_rx));
        Membership {
            members: rx,
            stop,
            task: Some(task),
            _fixed: None,
        }
    }

    /// Joins `<url.path>/<group>` in ZooKeeper.
    pub fn zookeeper(
        url: &ZkUrl,
        group: &str,
        session_timeout: Duration,
        data: String,
    ) -> Membership {
        let dir = format!("{}/{group}", url.path.trim_end_matches('/'));
        Membership::start(
            crate::zookeeper::ZooKeeperBackend::new(url.clone()),
            dir,
            session_timeout,
            data,
        )
    }

    pub async fn leave(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

async fn run<B: Backend>(
    backend: B,
    dir: String,
    session_timeout: Duration,
    data: String,
    members_tx: watch::Sender<BTreeSet<String>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let session = tokio::select! {
            s = backend.connect(&dir, session_timeout) => s,
            _ = stop.wait_for(|s| *s) => return,
        };
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "membership: cannot open a session; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_DELAY) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        let end = session_loop(
            &session,
            &dir,
            session_timeout,
            &data,
            &members_tx,
            &mut stop,
        )
        .await;
        members_tx.send_replace(BTreeSet::new());
        session.close().await;
        if matches!(end, SessionEnd::Stop) {
            return;
        }
    }
}

async fn session_loop<S: Session>(
    session: &S,
    dir: &str,
    session_timeout: Duration,
    data: &str,
    members_tx: &watch::Sender<BTreeSet<String>>,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut status = session.status();
    let mut disconnected_since = None;
    let mut own: Option<String> = None;
    loop {
        if own.is_none() {
            match session.create_member(dir, "", data.as_bytes()).await {
                Ok(name) => own = Some(name),
                Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
                Err(_) => {
                    if let Some(end) = wait_session(
                        &mut status,
                        stop,
                        &mut disconnected_since,
                        session_timeout,
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
        let (children, change) = match session.children(dir).await {
            Ok(c) => c,
            Err(ElectionError::SessionExpired) => return SessionEnd::Expired,
            Err(_) => {
                if let Some(end) = wait_session(
                    &mut status,
                    stop,
                    &mut disconnected_since,
                    session_timeout,
                    None,
                )
                .await
                {
                    return end;
                }
                continue;
            }
        };
        if own.as_ref().is_some_and(|name| !children.contains(name)) {
            own = None;
            continue;
        }
        let mut members = BTreeSet::new();
        for child in &children {
            if let Ok(Some(bytes)) = session
                .data(&format!("{}/{child}", dir.trim_end_matches('/')))
                .await
            {
                members.insert(String::from_utf8_lossy(&bytes).trim().to_string());
            }
        }
        members_tx.send_if_modified(|current| {
            if *current != members {
                *current = members.clone();
                true
            } else {
                false
            }
        });
        if let Some(end) = wait_session(
            &mut status,
            stop,
            &mut disconnected_since,
            session_timeout,
            Some(change),
        )
        .await
        {
            if matches!(end, SessionEnd::Stop) {
                if let Some(name) = own.take() {
                    let _ = session
                        .delete(&format!("{}/{name}", dir.trim_end_matches('/')))
                        .await;
                }
            }
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryEnsemble;

    #[tokio::test(start_paused = true)]
    async fn members_see_each_other_and_leavers_vanish() {
        let ensemble = MemoryEnsemble::new();
        let a = Membership::start(
            ensemble.clone(),
            "/mesos/log_replicas".into(),
            Duration::from_secs(2),
            "log-replica(1)@10.0.0.1:5050".into(),
        );
        let mut b = Membership::start(
            ensemble.clone(),
            "/mesos/log_replicas".into(),
            Duration::from_secs(2),
            "log-replica(1)@10.0.0.2:5050".into(),
        );
        let both = tokio::time::timeout(
            Duration::from_secs(10),
            b.members.wait_for(|m| m.len() == 2),
        )
        .await
        .unwrap()
        .unwrap()
        .clone();
        assert!(both.contains("log-replica(1)@10.0.0.1:5050"));
        assert!(ensemble
            .children_of("/mesos/log_replicas")
            .iter()
            .all(|c| c.len() == 10 && c.bytes().all(|b| b.is_ascii_digit())));
        a.leave().await;
        tokio::time::timeout(
            Duration::from_secs(10),
            b.members.wait_for(|m| m.len() == 1),
        )
        .await
        .unwrap()
        .unwrap();
    }
}
