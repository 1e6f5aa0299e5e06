//! `DIR/cluster.json`: what `status`, `kill-leader` and `stop` (and a person) read to find the
//! running cluster: the supervisor's pid, every server's name, address, URL, log and current pid.
//! Written atomically (temporary file, fsync, rename) whenever a pid changes, so a reader never
//! sees half a file; removed when the cluster has stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::LocalClusterError;
use crate::layout::{Layout, Role};

/// Bumped when the shape changes; a newer file is refused rather than misread.
pub const FORMAT_VERSION: u32 = 1;
/// A state file larger than this is not ours.
const STATE_FILE_BYTES_MAX: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    pub format_version: u32,
    pub supervisor_pid: u32,
    pub dir: PathBuf,
    pub quorum: u32,
    pub zookeeper_connect: String,
    pub mesos_zk_url: String,
    pub marathon_zk_url: String,
    pub servers: Vec<ServerState>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerState {
    pub name: String,
    pub role: Role,
    pub address: String,
    pub url: String,
    pub log: PathBuf,
    /// None while it is not running (waiting to restart, stopped).
    pub pid: Option<u32>,
}

impl ClusterState {
    pub fn new(layout: &Layout, supervisor_pid: u32) -> Self {
        ClusterState {
            format_version: FORMAT_VERSION,
            supervisor_pid,
            dir: layout.dir.clone(),
            quorum: layout.quorum,
            zookeeper_connect: layout.zk_connect.clone(),
            mesos_zk_url: layout.mesos_zk_url(),
            marathon_zk_url: layout.marathon_zk_url(),
            servers: layout
                .servers
                .iter()
                .map(|s| ServerState {
                    name: s.name.clone(),
                    role: s.role,
                    address: s.address(),
                    url: s.url(),
                    log: s.log_path.clone(),
                    pid: None,
                })
                .collect(),
        }
    }

    pub fn of_role(&self, role: Role) -> impl Iterator<Item = &ServerState> {
        self.servers.iter().filter(move |s| s.role == role)
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

/// Writes `state` to `DIR/cluster.json` atomically.
pub fn write(dir: &Path, state: &ClusterState) -> Result<(), LocalClusterError> {
    let target = path(dir);
    let tmp = dir.join("cluster.json.tmp");
    let io = |e| LocalClusterError::io(format!("cannot write {}", target.display()), e);
    let text = serde_json::to_vec_pretty(state).map_err(|e| LocalClusterError::StateFile {
        path: target.clone(),
        message: e.to_string(),
    })?;
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&text).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &target).map_err(io)?;
    Ok(())
}

/// Reads `DIR/cluster.json`; None when there is none.
pub fn read(dir: &Path) -> Result<Option<ClusterState>, LocalClusterError> {
    let target = path(dir);
    let bad = |message: String| LocalClusterError::StateFile {
        path: target.clone(),
        message,
    };
    let meta = match std::fs::metadata(&target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LocalClusterError::io(
                format!("cannot read {}", target.display()),
                e,
            ))
        }
    };
    if meta.len() > STATE_FILE_BYTES_MAX {
        return Err(bad(format!(
            "is {} bytes, more than a cluster state file can be",
            meta.len()
        )));
    }
    let text = std::fs::read(&target)
        .map_err(|e| LocalClusterError::io(format!("cannot read {}", target.display()), e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version != u64::from(FORMAT_VERSION) {
        return Err(bad(format!(
            "has format_version {version}; this tepui reads {FORMAT_VERSION} (was the cluster started by another version?)"
        )));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| bad(format!("is not a cluster state file: {e}")))
}

/// Removes `DIR/cluster.json` (absent is fine).
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("local-cluster-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample(dir: &Path) -> ClusterState {
        ClusterState {
            format_version: FORMAT_VERSION,
            supervisor_pid: 12,
            dir: dir.to_path_buf(),
            quorum: 2,
            zookeeper_connect: "127.0.1.11:2181".into(),
            mesos_zk_url: "zk://127.0.1.11:2181/mesos".into(),
            marathon_zk_url: "zk://127.0.1.11:2181/marathon".into(),
            servers: vec![ServerState {
                name: "master-1".into(),
                role: Role::Master,
                address: "127.0.1.1:5050".into(),
                url: "http://127.0.1.1:5050/".into(),
                log: dir.join("logs/master-1.log"),
                pid: Some(34),
            }],
        }
    }

    #[test]
    fn round_trips_and_removes() {
        let dir = scratch("roundtrip");
        assert_eq!(read(&dir).unwrap(), None);
        let state = sample(&dir);
        write(&dir, &state).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(state));
        assert!(!dir.join("cluster.json.tmp").exists());
        remove(&dir);
        assert_eq!(read(&dir).unwrap(), None);
    }

    #[test]
    fn garbage_and_newer_versions_are_clear_errors() {
        let dir = scratch("garbage");
        std::fs::write(path(&dir), b"{not json").unwrap();
        let err = read(&dir).unwrap_err().to_string();
        assert!(
            err.contains("cluster.json") && err.contains("not JSON"),
            "{err}"
        );
        std::fs::write(path(&dir), br#"{"format_version": 9}"#).unwrap();
        let err = read(&dir).unwrap_err().to_string();
        assert!(err.contains("format_version 9"), "{err}");
    }
}
