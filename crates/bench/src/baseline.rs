//! Machine baseline: how fast this machine spawns and reaps processes, measured in the same run so
//! the launch rate of tepui can be given as a ratio rather than an absolute number.

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Spawns `program args` `n` times, one after the other (spawn + wait), and returns processes/s.
pub fn spawn_rate(program: &str, args: &[&str], n: usize) -> Result<f64> {
    let run = || -> Result<()> {
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {program}"))?;
        if !status.success() {
            bail!("{program} {args:?} exited with {status}");
        }
        Ok(())
    };
    // Warm the page cache and the dynamic loader before timing.
    for _ in 0..10.min(n) {
        run()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        run()?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(n as f64 / secs)
}
