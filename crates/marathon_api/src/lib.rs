//! Marathon's REST API v2 (marathon-api.md §1, §4-§6, §8.3): routes, request parsing, response
//! shapes, the `/v2/events` stream and standby proxying.
//!
//! What: [`router`] serves every endpoint from a `service::ServiceHandle`: reads come from
//! the leader's published `ServiceView`, changes go to the leader as `service::Command`s. A standby
//! forwards every request to the leader (§8.3).
//!
//! Code map: `routes` (table, shared state, command calls), `proxy` (leader gate: serve, forward,
//! redirect, wait), `apps`, `tasks`, `deployments`, `groups`, `queue`, `info`, `events` (one
//! module per §4 resource), `app_info` (AppInfo status fields from the view), `params` (query
//! and URL id parsing), `errors` (the §1 error model), `ui` (the embedded web UI at `/ui/`).
//!
//! Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so `X-Forwarded-For`,
//! `clientIp` and `remoteAddress` carry the peer address.
//!
//! Invariant: this crate knows no planner, store or Mesos type; it can be tested with a hand-built
//! view and a fake command handler.

pub mod app_info;
pub mod apps;
pub mod deployments;
pub mod errors;
pub mod events;
pub mod groups;
pub mod info;
pub mod params;
pub mod proxy;
pub mod queue;
pub mod routes;
pub mod service;
pub mod tasks;
pub mod ui;

pub use routes::router;
