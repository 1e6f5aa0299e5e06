//! The launcher daemon's side of isolation: `JoinCgroups` is the `SpawnHook` that puts a task's
//! first process into the cgroups the agent prepared (`LaunchRequest.isolation`, see
//! `SpawnIsolation`), between fork and exec.
//!
//! Why before exec and not `after_spawn`: a process moved after it started has already run (and
//! may have forked children that stay outside, or allocated memory charged elsewhere); Mesos'
//! launcher likewise holds the child until it is isolated. The price, a fork+exec instead of
//! `posix_spawn`, is paid only by launches that carry cgroups (`--isolation=cgroups/...`); a
//! request without them leaves the command untouched and keeps the fast path.
//!
//! The daemon needs no isolation flags: everything comes with each request. Cleanup stays with
//! the agent (`after_exit` does nothing), which must read the OOM counter before the groups go.

use super::SpawnIsolation;
use crate::launcher_daemon::SpawnHook;
use crate::launcher_protocol::LaunchRequest;
use std::os::unix::process::CommandExt;

/// Joins the container's cgroups before exec (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct JoinCgroups;

impl SpawnHook for JoinCgroups {
    fn before_spawn(
        &self,
        request: &LaunchRequest,
        command: &mut std::process::Command,
    ) -> Result<(), String> {
        let spawn = SpawnIsolation::from_value(&request.isolation)?;
        let step = spawn
            .open()
            .map_err(|e| format!("cannot join the container's cgroups: {e}"))?;
        if let Some(step) = step {
            // SAFETY: `PreExec::run` is async-signal-safe (getpid and write on descriptors it owns).
            unsafe { command.pre_exec(move || step.run()) };
        }
        Ok(())
    }
}
