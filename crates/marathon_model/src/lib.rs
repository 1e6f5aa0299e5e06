//! Marathon's data model as pure code (marathon-api.md §2–§5, §7): app and group ids,
//! timestamps, app definitions in and out of JSON with Marathon's defaults and error
//! shapes, validation, partial updates, change classification, task ids, label
//! selectors and constraint evaluation.
//!
//! Architecture invariant: **no I/O, no clock, no randomness**. Time comes in as a
//! [`Timestamp`], uuids come in from the caller. Everything here is a function of its
//! arguments, so the REST layer, the planner and tests share one implementation.
//!
//! Error classes: [`AppError::Malformed`]/[`AppError::InvalidJson`] are 400s,
//! [`AppError::Invalid`] is a 422; [`Violation`] is one `{"path","errors"}` entry.

pub mod app;
pub mod constraints;
pub mod error;
pub mod health;
pub mod id;
mod json;
pub mod labels;
pub mod task;
pub mod task_id;
pub mod time;

pub use app::change::{change_kind, Change};
pub use app::defaults::{IdSource, ParseContext};
pub use app::output::{AppStatus, LifeTime, Stats, TaskCounts, TaskStats, VersionInfo};
pub use app::patch::{
    classify_update, merge_patch, replace, rollback_version, scale_instances, UpdateKind,
};
pub use app::validate::{parse_and_validate, validate};
pub use app::{
    AppDefinition, Container, ContainerType, Docker, EnvValue, FetchUri, KillSelection, Network,
    NetworkMode, PortDefinition, PortMapping, UnreachableStrategy, UpgradeStrategy, Volume,
    VolumeMode, WireEnum,
};
pub use constraints::{AgentInfo, AttrValue, Constraint, ConstraintError, Operator, Unmet};
pub use error::{AppError, Violation};
pub use health::{HealthCheck, HealthProtocol, IpProtocol};
pub use id::{IdError, PathId};
pub use labels::{LabelSelector, SelectorError};
pub use task::{HealthCheckResult, IpAddress, LastTaskFailure, Task};
pub use task_id::{uuid_v1, InstanceId, TaskId, TaskIdError};
pub use time::{Timestamp, TimestampError};
