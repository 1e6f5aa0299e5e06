//! Where each record lives under the `--zk` root, and how ids become znode names.
//!
//! ```text
//! <root>/state/apps/<app-key>/<version>   one znode per app version (newest = current definition)
//! <root>/state/instances/<instance-key>   one per instance
//! <root>/state/deployments/<deploy-key>   one per running deployment
//! <root>/state/task_failures/<app-key>    an app's lastTaskFailure (at most one per app; added
//!                                         later: state written before it has no such directory,
//!                                         which loads as "no failures")
//! <root>/state/retired/<app-key>          the last definition of an app a running deployment
//!                                         removed, kept so cancelling it can bring the app back
//!                                         (added with task_failures; absent = none)
//! <root>/state/framework_id               the Mesos framework id
//! <root>/state/epoch                      the fencing node (its data version is the epoch)
//! <root>/leader-curator/member-<seq>      election participants (Marathon's latch path)
//! ```
//!
//! Ids are percent-encoded into names: `/` may not appear in a znode name, and `.`/`..` and
//! control characters are refused by ZooKeeper. Only `[A-Za-z0-9._-]` stay as they are (a name that
//! would be `.` or `..` is escaped too), so encoding is reversible and names are plain ASCII.

use crate::StoreError;

/// A record's place in the store, in decoded (id) form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// The directory of one app's versions.
    App(String),
    /// One version of an app: (app id, version).
    AppVersion(String, String),
    Instance(String),
    Deployment(String),
    /// The last failed task of an app (by app id); it lives only as long as its app.
    TaskFailure(String),
    /// The definition of an app removed by a deployment still running (by app id).
    RetiredApp(String),
    FrameworkId,
}

/// Paths under one `--zk` root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root without a trailing `/` (empty for the ZooKeeper root).
    root: String,
}

pub const STATE_DIR: &str = "state";
pub const LEADER_DIR: &str = "leader-curator";

impl Layout {
    /// `root` is the `--zk` URL's path, e.g. `/marathon`.
    pub fn new(root: &str) -> Layout {
        Layout {
            root: root.trim_end_matches('/').to_string(),
        }
    }

    pub fn root(&self) -> &str {
        if self.root.is_empty() {
            "/"
        } else {
            &self.root
        }
    }

    pub fn state(&self) -> String {
        format!("{}/{STATE_DIR}", self.root)
    }
    pub fn apps_dir(&self) -> String {
        format!("{}/{STATE_DIR}/apps", self.root)
    }
    pub fn instances_dir(&self) -> String {
        format!("{}/{STATE_DIR}/instances", self.root)
    }
    pub fn deployments_dir(&self) -> String {
        format!("{}/{STATE_DIR}/deployments", self.root)
    }
    pub fn task_failures_dir(&self) -> String {
        format!("{}/{STATE_DIR}/task_failures", self.root)
    }
    pub fn retired_dir(&self) -> String {
        format!("{}/{STATE_DIR}/retired", self.root)
    }
    pub fn framework_id(&self) -> String {
        format!("{}/{STATE_DIR}/framework_id", self.root)
    }
    pub fn epoch(&self) -> String {
        format!("{}/{STATE_DIR}/epoch", self.root)
    }
    pub fn leader_dir(&self) -> String {
        format!("{}/{LEADER_DIR}", self.root)
    }

    /// The persistent directories a commit's records go under.
    pub fn dirs(&self) -> [String; 5] {
        [
            self.apps_dir(),
            self.instances_dir(),
            self.deployments_dir(),
            self.task_failures_dir(),
            self.retired_dir(),
        ]
    }

    /// The znode of `key`.
    pub fn path(&self, key: &Key) -> String {
        match key {
            Key::App(app) => format!("{}/{}", self.apps_dir(), encode_name(app)),
            Key::AppVersion(app, version) => format!(
                "{}/{}/{}",
                self.apps_dir(),
                encode_name(app),
                encode_name(version)
            ),
            Key::Instance(id) => format!("{}/{}", self.instances_dir(), encode_name(id)),
            Key::Deployment(id) => format!("{}/{}", self.deployments_dir(), encode_name(id)),
            Key::TaskFailure(app) => format!("{}/{}", self.task_failures_dir(), encode_name(app)),
            Key::RetiredApp(app) => format!("{}/{}", self.retired_dir(), encode_name(app)),
            Key::FrameworkId => self.framework_id(),
        }
    }
}

/// Percent-encodes an id into one znode name (reversible with `decode_name`).
pub fn encode_name(id: &str) -> String {
    if id == "." || id == ".." {
        return id.replace('.', "%2E");
    }
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The id a znode name encodes; `None` if it is not a valid encoding (a foreign node).
pub fn decode_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Refuses ids that cannot name a znode (the empty string).
pub(crate) fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::InvalidKey(id.to_string()));
    }
    Ok(())
}

/// A version string that sorts like time: milliseconds since the epoch, zero-padded to 20 digits.
/// Versions are compared as strings; the service may use any format that sorts the same way
/// (e.g. fixed-width ISO-8601 `2024-01-02T03:04:05.678Z`).
pub fn version_from_millis(ms: u64) -> String {
    format!("{ms:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_safe() {
        for id in [
            "/prod/web",
            "/a b/ü",
            ".",
            "..",
            "x.y-z_0",
            "%41",
            "2024-01-02T03:04:05.678Z",
        ] {
            let name = encode_name(id);
            assert!(!name.contains('/') && name != "." && name != "..", "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_graphic()), "{name}");
            assert_eq!(decode_name(&name).as_deref(), Some(id));
        }
        assert_eq!(encode_name("/prod/web"), "%2Fprod%2Fweb");
        assert_eq!(decode_name("%zz"), None);
        assert_eq!(decode_name("%4"), None);
    }

    #[test]
    fn paths_follow_the_layout() {
        let layout = Layout::new("/marathon/");
        assert_eq!(
            layout.path(&Key::AppVersion("/a".into(), "1".into())),
            "/marathon/state/apps/%2Fa/1"
        );
        assert_eq!(layout.epoch(), "/marathon/state/epoch");
        assert_eq!(
            layout.path(&Key::TaskFailure("/a".into())),
            "/marathon/state/task_failures/%2Fa"
        );
        assert_eq!(layout.leader_dir(), "/marathon/leader-curator");
        assert_eq!(Layout::new("/").apps_dir(), "/state/apps");
        assert!(version_from_millis(9) < version_from_millis(10));
    }
}
