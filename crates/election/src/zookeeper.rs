//! The real backend: an Apache ZooKeeper ensemble through the `zookeeper-client` crate.
//! Znodes follow Mesos' layout (mesos-ha.md 2.2): the group directory is persistent, members are
//! EPHEMERAL_SEQUENTIAL `json.info_<seq>` nodes. With credentials, nodes get the ACL
//! `[world:anyone READ, auth ALL]` and the session authenticates with `digest` (spec 2.1).

use crate::group::{Backend, ChangeWatch, Session, SessionStatus};
use crate::url::ZkUrl;
use crate::ElectionError;
use std::time::Duration;
use tokio::sync::watch;
use zookeeper_client as zk;

pub struct ZooKeeperBackend {
    url: ZkUrl,
    acls: Vec<zk::Acl>,
}

impl ZooKeeperBackend {
    pub fn new(url: ZkUrl) -> Self {
        let acls = if url.credentials.is_some() {
            vec![
                zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
                zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed()),
            ]
        } else {
            vec![zk::Acl::new(zk::Permission::ALL, zk::AuthId::anyone())]
        };
        ZooKeeperBackend { url, acls }
    }
}

fn map_error(error: zk::Error) -> ElectionError {
    match error {
        zk::Error::SessionExpired | zk::Error::ClientClosed => ElectionError::SessionExpired,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::NoHosts => {
            ElectionError::ConnectionLoss
        }
        other => ElectionError::Backend(other.to_string()),
    }
}

pub struct ZooKeeperSession {
    client: zk::Client,
    acls: Vec<zk::Acl>,
    status: watch::Receiver<SessionStatus>,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Backend for ZooKeeperBackend {
    type Session = ZooKeeperSession;

    async fn connect(
        &self,
        dir: &str,
        session_timeout: Duration,
    ) -> Result<ZooKeeperSession, ElectionError> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(session_timeout);
        if let Some((user, password)) = &self.url.credentials {
            connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
        }
        // A connection attempt that hears nothing is bounded, so stop requests are never stuck.
        let unreachable = |reason: String| ElectionError::Unreachable {
            servers: self.url.servers.clone(),
            reason,
        };
        let client =
            tokio::time::timeout(session_timeout * 2, connector.connect(&self.url.servers))
                .await
                .map_err(|_| unreachable(format!("no answer within {:?}", session_timeout * 2)))?
                .map_err(|e| unreachable(e.to_string()))?;
        if dir != "/" {
            let options = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&self.acls));
            client.mkdir(dir, &options).await.map_err(map_error)?;
        }
        let (status_tx, status_rx) = watch::channel(SessionStatus::Connected);
        let mut states = client.state_watcher();
        let forwarder = tokio::spawn(async move {
            loop {
                let state = states.changed().await;
                let status = match state {
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                        SessionStatus::Connected
                    }
                    zk::SessionState::Disconnected => SessionStatus::Disconnected,
                    _ => SessionStatus::Expired,
                };
                status_tx.send_replace(status);
                if status == SessionStatus::Expired {
                    return;
                }
            }
        });
        tracing::info!(servers = %self.url.servers, session_id = ?client.session_id(), timeout_ms = client.session_timeout().as_millis() as u64, "ZooKeeper session opened");
        Ok(ZooKeeperSession {
            client,
            acls: self.acls.clone(),
            status: status_rx,
            forwarder,
        })
    }
}

impl Session for ZooKeeperSession {
    async fn create_member(
        &self,
        dir: &str,
        label: &str,
        data: &[u8],
    ) -> Result<String, ElectionError> {
        // An empty label makes an unlabeled member (`<dir>/<seq>`), as log replicas are.
        let prefix = if label.is_empty() {
            format!("{}/", dir.trim_end_matches('/'))
        } else {
            format!("{}/{label}_", dir.trim_end_matches('/'))
        };
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::new(&self.acls));
        let (_, sequence) = self
            .client
            .create(&prefix, data, &options)
            .await
            .map_err(map_error)?;
        Ok(if label.is_empty() {
            sequence.to_string()
        } else {
            format!("{label}_{sequence}")
        })
    }

    async fn children(&self, dir: &str) -> Result<(Vec<String>, ChangeWatch), ElectionError> {
        let (children, _, watcher) = self
            .client
            .get_and_watch_children(dir)
            .await
            .map_err(map_error)?;
        let watch: ChangeWatch = Box::pin(async move {
            watcher.changed().await;
        });
        Ok((children, watch))
    }

    async fn data(&self, path: &str) -> Result<Option<Vec<u8>>, ElectionError> {
        match self.client.get_data(path).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    async fn delete(&self, path: &str) -> Result<(), ElectionError> {
        match self.client.delete(path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    async fn close(self) {
        self.forwarder.abort();
        // Dropping the last client handle sends CloseSession: the server removes our ephemerals
        // at once instead of after the session timeout.
        drop(self.client);
    }
}
