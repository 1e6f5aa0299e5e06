//! `marathon_planner`: Marathon's deployment planner and instance keeper as a pure state machine.
//!
//! Spec: `marathon-api.md` §7 (deployments, scaling, restarts, backoff), §5 (Deployment JSON),
//! §6 (deployment events), §8 (a new leader resumes stored deployments).
//!
//! **Architecture invariant: this crate does no I/O, reads no clock and draws no randomness.**
//! Time comes in as `now_ms`, new ids from an [`IdSource`]; [`Planner`] takes [`Event`]s and
//! deployment calls and returns [`Command`]s the edge carries out in order (persistence intents
//! first). It knows nothing of the app-model crate: callers convert apps to [`RunSpec`]s.
//!
//! Code map: `plan` builds plans from root-group diffs; `planner` holds the books, deployments and
//! entry points; `index` keeps per-app counters over the instances current so the rules need not
//! scan them; `converge` runs every app's rule after each input; `scale`, `restart`, `health`,
//! `unreachable`, `backoff` are those rules as pure functions; `queue` is `/v2/queue`; `json` the
//! §5 wire shapes.

pub mod backoff;
mod converge;
pub mod deployment;
pub mod health;
mod index;
pub mod json;
pub mod plan;
pub mod planner;
pub mod queue;
pub mod restart;
mod scale;
pub mod types;
mod unreachable;

pub use backoff::LaunchDelay;
pub use converge::safe_id;
pub use deployment::DeploymentState;
pub use plan::{dependency_levels, Action, DeploymentPlan, PlanOptions, Step};
pub use planner::{Cancelled, Planner};
pub use queue::{OfferStats, QueueDelay, QueueEntry};
pub use restart::{restart_bounds, RestartBounds};
pub use types::*;
