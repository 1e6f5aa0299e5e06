//! Processes at the edge: spawning a server (its own process group, output appended to its log,
//! `TEPUI_LOCAL_CLUSTER_DIR=<DIR>` in its environment), sending signals by pid, telling whether a
//! pid lives, and finding processes the cluster left behind by what ties them to DIR: that
//! environment entry (servers and the launcher daemons they start), a command line naming a
//! server's directory, or running inside one (task processes run in their sandbox under
//! `DIR/agent-j`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::layout::{Layout, Server};
use crate::supervisor::{ExitKind, Signal};

/// Marks every server (and what inherits its environment) as belonging to the cluster on DIR.
pub const DIR_ENV: &str = "TEPUI_LOCAL_CLUSTER_DIR";

/// Environment variables a server would read as flags; the person's shell must not change them.
const FLAG_ENV_PREFIXES: [&str; 3] = ["MESOS_", "MARATHON_", "LIBPROCESS_"];

/// Starts `server` in its own process group (a terminal Ctrl-C reaches only the supervisor, which
/// stops the servers in order), appending stdout and stderr to its log.
pub fn spawn(server: &Server, dir: &Path) -> std::io::Result<tokio::process::Child> {
    std::fs::create_dir_all(&server.work_dir)?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&server.log_path)?;
    writeln!(
        log,
        "==== tepui local-cluster: starting {} at unix time {} ====",
        server.name,
        unix_now()
    )?;
    let Some((program, args)) = server.argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command line",
        ));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&server.work_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(false);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if FLAG_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&key);
        }
    }
    if std::env::var_os("TEPUI_LOG").is_none() {
        command.env("TEPUI_LOG", "info");
    }
    command.env("NO_COLOR", "1").env(DIR_ENV, dir);
    command.spawn()
}

pub fn exit_kind(status: std::process::ExitStatus) -> ExitKind {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitKind::Code(code),
        (None, Some(sig)) => ExitKind::Signal(sig),
        (None, None) => ExitKind::Code(-1),
    }
}

/// Sends `signal` to `pid`; false if there is no such process.
pub fn send(pid: u32, signal: Signal) -> bool {
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    send_raw(pid, sig)
}

fn send_raw(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false; // never 0 (our group), -1 (everything) or init
    }
    // SAFETY: kill has no memory preconditions; the pid was checked to be a single process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether `pid` is a live `tepui local-cluster` supervisor (not a process that reused its pid).
pub fn is_supervisor(pid: u32) -> bool {
    alive(pid) && cmdline(pid).contains("local-cluster")
}

/// The command line of `pid`, arguments joined by spaces (empty if unreadable).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Whether `pid` still looks like the process `cluster.json` recorded (guards against a reused
/// pid before a signal is sent): it carries the [`DIR_ENV`] mark, its command line names DIR, or it
/// runs inside DIR (every server's working directory is its own directory under DIR).
pub fn is_cluster_process(pid: u32, dir: &Path) -> bool {
    let mut marker = format!("{DIR_ENV}=").into_bytes();
    marker.extend_from_slice(dir.as_os_str().as_encoded_bytes());
    alive(pid)
        && (has_env_entry(pid, &marker)
            || cmdline(pid).contains(&*dir.to_string_lossy())
            || std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir)))
}

/// The directories whose mention (in a command line) or use (as a working directory) marks a
/// process as the cluster's: each server's work directory. DIR itself is not one of them, so a
/// shell sitting in DIR is left alone.
pub fn owned_dirs(layout: &Layout) -> Vec<PathBuf> {
    layout.servers.iter().map(|s| s.work_dir.clone()).collect()
}

/// A process tied to the cluster's directories.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub pid: u32,
    pub cmdline: String,
}

/// Every live process but this one that belongs to the cluster on `dir`: its environment has
/// [`DIR_ENV`]`=dir` or its command line names one of `dirs` (servers, launcher daemons), or it runs inside one of them (task processes in their
/// sandboxes) and its session is one such process's or is orphaned (the launcher daemon, which
/// leads its tasks' session, died). A person's shell sitting in a sandbox belongs to a live terminal
/// session and is left alone.
pub fn leftovers(dir: &Path, dirs: &[PathBuf]) -> Vec<Leftover> {
    let mut marker = format!("{DIR_ENV}=").into_bytes();
    marker.extend_from_slice(dir.as_os_str().as_encoded_bytes());
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let in_dirs = |path: &Path| dirs.iter().any(|d| path.starts_with(d));
    let mut named = Vec::new();
    let mut inside = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own || !alive(pid) {
            continue;
        }
        let line = cmdline(pid);
        if has_env_entry(pid, &marker)
            || dirs
                .iter()
                .any(|d| mentions_dir(&line, &d.to_string_lossy()))
        {
            named.push(Leftover { pid, cmdline: line });
        } else if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| in_dirs(&cwd)) {
            inside.push(Leftover { pid, cmdline: line });
        }
    }
    let named_pids: std::collections::HashSet<u32> = named.iter().map(|l| l.pid).collect();
    let mut found = named;
    for candidate in inside {
        // A session id of 0 means its leader lives outside our pid namespace: alive, not orphaned.
        let ours = session_of(candidate.pid)
            .is_some_and(|sid| named_pids.contains(&sid) || (sid != 0 && !alive(sid)));
        if ours {
            found.push(candidate);
        }
    }
    found.sort_by_key(|l| l.pid);
    found
}

/// Whether `pid`'s environment holds exactly `entry` (`NAME=value`); false when unreadable.
fn has_env_entry(pid: u32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry))
}

fn session_of(pid: u32) -> Option<u32> {
    let pid = i32::try_from(pid).ok()?;
    // SAFETY: getsid has no memory preconditions.
    let sid = unsafe { libc::getsid(pid) };
    u32::try_from(sid).ok()
}

/// Whether `line` names `dir` as a whole path component (so `agent-1` does not match `agent-10`).
fn mentions_dir(line: &str, dir: &str) -> bool {
    line.match_indices(dir).any(|(at, _)| {
        let next = line[at + dir.len()..].chars().next();
        matches!(next, None | Some('/') | Some(' ') | Some('"') | Some('\''))
    })
}

/// SIGKILLs every leftover (and its process group when it leads one) and waits until they are
/// gone or `deadline` passes; returns those still alive.
pub async fn kill_leftovers(found: &[Leftover], deadline: std::time::Duration) -> Vec<Leftover> {
    for l in found {
        if let Ok(pid) = i32::try_from(l.pid) {
            // SAFETY: getpgid has no memory preconditions.
            let group = unsafe { libc::getpgid(pid) };
            if group == pid && pid > 1 {
                // SAFETY: a negative pid names that process group, which `pid` leads.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        }
        send_raw(l.pid, libc::SIGKILL);
    }
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left: Vec<Leftover> = found.iter().filter(|l| alive(l.pid)).cloned().collect();
        if left.is_empty() || tokio::time::Instant::now() >= until {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_mentions_are_whole_components() {
        assert!(mentions_dir(
            "tepui agent --work_dir=/d/agent-1",
            "/d/agent-1"
        ));
        assert!(mentions_dir(
            "tepui launcher --work_dir /d/agent-1/x",
            "/d/agent-1"
        ));
        assert!(!mentions_dir(
            "tepui agent --work_dir=/d/agent-10",
            "/d/agent-1"
        ));
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_never_signalled() {
        assert!(alive(std::process::id()));
        assert!(!send(0, Signal::Term));
        assert!(!send(1, Signal::Kill));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("local-cluster-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `sh -c <script> <dir>` in its own session, run inside `dir`.
    fn spawn_in_own_session(dir: &Path, script: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(script).arg(dir).current_dir(dir);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        command.spawn().unwrap()
    }

    #[tokio::test]
    async fn a_task_whose_daemon_died_is_found_and_killed() {
        let dir = scratch("orphan");
        // The session leader (standing in for a launcher daemon) exits at once, leaving its
        // `sleep` in the directory with an orphaned session.
        let mut leader = spawn_in_own_session(&dir, "sleep 600 & echo $!");
        leader.wait().unwrap();
        let found = wait_found(&dir, |f| f.iter().any(|l| l.cmdline == "sleep 600")).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].cmdline, "sleep 600");
        let left = kill_leftovers(&found, std::time::Duration::from_secs(5)).await;
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_process_with_the_environment_marker_is_found() {
        let dir = scratch("marked");
        let elsewhere = std::env::temp_dir();
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .current_dir(&elsewhere)
            .env(DIR_ENV, &dir)
            .spawn()
            .unwrap();
        let found = wait_found(&dir, |f| !f.is_empty()).await;
        assert_eq!(
            found.iter().map(|l| l.pid).collect::<Vec<_>>(),
            vec![child.id()]
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_process_naming_a_server_dir_is_found_but_a_shell_sitting_there_is_not() {
        let dir = scratch("named");
        // Named in its command line ($0): found, with the child that shares its session.
        let mut daemon = spawn_in_own_session(&dir, "sleep 600 & wait");
        // In the directory but in another live session, as a person's shell would be. The session
        // is its own (led by a shell outside DIR) rather than this test's, whose leader may have
        // exited or live outside the pid namespace, depending on how the tests were started.
        let mut shell_session = std::process::Command::new("sh");
        shell_session
            .arg("-c")
            .arg("(cd \"$SHELL_DIR\" && exec sleep 600) & echo $!; wait")
            .env("SHELL_DIR", &dir)
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::piped());
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            shell_session.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut shell_leader = shell_session.spawn().unwrap();
        let shell_pid: u32 = {
            use std::io::BufRead;
            let mut line = String::new();
            std::io::BufReader::new(shell_leader.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            line.trim().parse().unwrap()
        };
        // Wait until the shell's child has entered DIR, so the scan below could see it.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_link(format!("/proc/{shell_pid}/cwd"))
            .is_ok_and(|cwd| cwd.starts_with(&dir))
        {
            assert!(
                std::time::Instant::now() < until,
                "the shell never entered {dir:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let found = wait_found(&dir, |f| f.len() >= 2).await;
        let pids: Vec<u32> = found.iter().map(|l| l.pid).collect();
        assert!(pids.contains(&daemon.id()), "{found:?}");
        assert!(!pids.contains(&shell_pid), "{found:?}");
        let reaper = std::thread::spawn(move || daemon.wait());
        let left = kill_leftovers(&found, std::time::Duration::from_secs(5)).await;
        assert!(left.is_empty(), "{left:?}");
        reaper.join().unwrap().unwrap();
        send_raw(shell_pid, libc::SIGKILL);
        shell_leader.wait().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Scans until `done` holds for what is found (a child takes a moment to exec and chdir).
    async fn wait_found(dir: &Path, done: impl Fn(&[Leftover]) -> bool) -> Vec<Leftover> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let found = leftovers(dir, &[dir.to_path_buf()]);
            if done(&found) || std::time::Instant::now() >= until {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
