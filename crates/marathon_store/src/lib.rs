//! Marathon's durable state in ZooKeeper, and its leader election (marathon-api.md §8).
//!
//! Why not Marathon's layout: Marathon kept the whole root group in one record, which hit
//! ZooKeeper's 1 MB limit and broke deployments, and a new leader re-read everything and timed out
//! with thousands of apps. Here state is one znode per app version, instance and deployment (plus
//! an app's last task failure and the definition of an app a running deployment removed; each at
//! most `RECORD_BYTES_MAX`), every change is one atomic multi-op fenced by an epoch
//! znode so a deposed leader cannot overwrite its successor, and standbys keep a live `StoreView`
//! so a new leader serves at once after a short catch-up.
//!
//! - `layout`: where records live under the `--zk` root, and id <-> znode name encoding.
//! - `ops`: operations, snapshots, the record envelope, limits, and `plan` (pure: batch -> writes).
//! - `zk`: `ZkStore`, the ZooKeeper backend (`connect` opens a session from a `zk://` URL).
//! - `memory`: `InMemoryStore`, the same semantics in memory for tests of the service.
//! - `view`: `StoreView`, a standby's watched, always-current copy of the store.
//! - `election`: `MarathonElection` on `<root>/leader-curator`.
//! - `error`: `StoreError`.
//!
//! A leader's sequence: `contend` -> `Leader` -> `store.fence()` -> `view.wait_caught_up()` (or
//! `store.load()`) -> serve and `commit`. Every election rebuilds from the store, never from
//! memory kept while leading before. This crate knows nothing of the app model: records are JSON.

pub mod election;
pub mod error;
pub mod layout;
pub mod memory;
pub mod ops;
pub mod view;
pub mod zk;

pub use election::{ElectionHandle, Leadership, MarathonElection};
pub use error::StoreError;
pub use layout::{version_from_millis, Key, Layout};
pub use memory::InMemoryStore;
pub use ops::{
    Snapshot, StateStore, StoreFuture, StoreOp, COMMIT_BYTES_MAX, FORMAT_VERSION,
    MAX_VERSIONS_DEFAULT, RECORD_BYTES_MAX,
};
pub use view::StoreView;
pub use zk::{connect, ZkConnection, ZkStore};
