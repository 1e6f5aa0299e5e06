//! The `tepui dev` child process: started with a log file, stopped with SIGINT, and never left
//! running — the guard's `Drop` interrupts (then kills) it on every error path.

use crate::procfs;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long tepui gets to stop after SIGINT before it is killed.
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Polling period while waiting for the process to exit.
const EXIT_POLL: Duration = Duration::from_millis(10);

pub struct DevConfig {
    pub tepui: PathBuf,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub agent_port: u16,
    pub work_dir: PathBuf,
    pub resources: String,
    pub log: PathBuf,
}

pub struct DevProcess {
    child: Option<Child>,
    pub pid: i32,
    pub log: PathBuf,
}

/// The result of a clean stop.
pub struct Stopped {
    pub status: ExitStatus,
    pub took: Duration,
    /// True when SIGINT was not enough and SIGKILL was sent.
    pub killed: bool,
}

impl DevProcess {
    pub fn start(config: &DevConfig) -> Result<DevProcess> {
        let log = File::create(&config.log)
            .with_context(|| format!("cannot create {}", config.log.display()))?;
        let log_err = log
            .try_clone()
            .context("cannot duplicate the log file handle")?;
        let mut cmd = Command::new(&config.tepui);
        cmd.arg("dev")
            .arg("--ip")
            .arg(config.ip.to_string())
            .arg("--port")
            .arg(config.port.to_string())
            .arg("--agent_port")
            .arg(config.agent_port.to_string())
            .arg("--work_dir")
            .arg(&config.work_dir)
            .arg("--resources")
            .arg(&config.resources)
            // The launch bench is the only framework: no Marathon taking offers.
            .arg("--marathon_port")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Its own process group: a Ctrl-C on the terminal reaches the bench only, and the bench
            // stops tepui through its guard, so the shutdown is always the same.
            .process_group(0);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
        // It makes the kernel interrupt tepui if the bench dies without running its guard (SIGKILL).
        // The bench spawns from the thread that runs the whole program (a current-thread runtime),
        // so "parent thread exits" means "bench exits".
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGINT as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} (build it with `cargo build --release -p tepui`)",
                config.tepui.display()
            )
        })?;
        let pid = i32::try_from(child.id()).context("child pid does not fit in pid_t")?;
        Ok(DevProcess {
            child: Some(child),
            pid,
            log: config.log.clone(),
        })
    }

    /// `Some(status)` if tepui has exited already.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().context("cannot poll the tepui process"),
            None => bail!("tepui was already stopped"),
        }
    }

    /// SIGINT, then wait up to `deadline`; SIGKILL if it does not exit in time.
    pub fn stop(&mut self, deadline: Duration) -> Result<Stopped> {
        let Some(mut child) = self.child.take() else {
            bail!("tepui was already stopped")
        };
        stop_child(&mut child, self.pid, deadline)
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    if pid > 1 {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn stop_child(child: &mut Child, pid: i32, deadline: Duration) -> Result<Stopped> {
    let start = Instant::now();
    if let Some(status) = child.try_wait().context("cannot poll the tepui process")? {
        return Ok(Stopped {
            status,
            took: Duration::ZERO,
            killed: false,
        });
    }
    signal(pid, libc::SIGINT);
    loop {
        if let Some(status) = child.try_wait().context("cannot poll the tepui process")? {
            return Ok(Stopped {
                status,
                took: start.elapsed(),
                killed: false,
            });
        }
        if start.elapsed() >= deadline {
            break;
        }
        std::thread::sleep(EXIT_POLL);
    }
    signal(pid, libc::SIGKILL);
    let status = child
        .wait()
        .context("cannot reap the killed tepui process")?;
    Ok(Stopped {
        status,
        took: start.elapsed(),
        killed: true,
    })
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Remember what tepui runs now: tasks it fails to stop are killed below, by pid.
            let before = procfs::descendants(self.pid).unwrap_or_default();
            match stop_child(&mut child, self.pid, Duration::from_secs(10)) {
                Ok(s) if s.killed => eprintln!(
                    "tepui-bench: tepui (pid {}) ignored SIGINT for 10 s and was killed",
                    self.pid
                ),
                Ok(_) => eprintln!("tepui-bench: stopped tepui (pid {})", self.pid),
                Err(e) => eprintln!(
                    "tepui-bench: could not stop tepui (pid {}): {e:#}",
                    self.pid
                ),
            }
            let left = kill_leftovers(&before);
            if !left.is_empty() {
                eprintln!(
                    "tepui-bench: killed {} processes tepui left behind: {left:?}",
                    left.len()
                );
            }
        }
    }
}

/// Of `recorded` (taken while tepui ran), the processes that still exist after it stopped, as the
/// same process (pid and start time); each is sent SIGKILL. Returns their pids.
pub fn kill_leftovers(recorded: &[procfs::ProcInfo]) -> Vec<i32> {
    let mut left = Vec::new();
    for p in recorded {
        if let Some(now) = procfs::read_proc(p.pid) {
            if now.start_time == p.start_time && now.state != 'Z' {
                left.push(p.pid);
                signal(p.pid, libc::SIGKILL);
            }
        }
    }
    left
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
