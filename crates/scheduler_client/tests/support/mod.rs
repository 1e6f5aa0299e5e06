//! Test support: a real `tepui dev` child process, a scripted fake master, and waits on client
//! events with deadlines (never sleeps to synchronise).

#![allow(dead_code)] // each test file uses a different part

pub mod fake;

use proto::scheduler::Event;
use proto::FrameworkInfo;
use scheduler_client::ClientEvent;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The `tepui` binary: `$TEPUI_BIN`, else `<target>/debug/tepui` next to this test's `deps/`.
/// Panics (fails the test) with instructions when it is missing; tests never skip.
pub fn tepui_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TEPUI_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "TEPUI_BIN={} does not exist: build tepui with `cargo build -p tepui` or fix TEPUI_BIN", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test-binary>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("test binary lives in <target>/<profile>/deps");
    let candidate = profile_dir.join("tepui");
    assert!(
        candidate.is_file(),
        "the tepui binary is missing at {}: build it first with `cargo build -p tepui` (same CARGO_TARGET_DIR), \
         or point TEPUI_BIN at it (scripts/test.sh builds every binary before `cargo test --workspace`)",
        candidate.display()
    );
    candidate
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tepui-schedclient-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tepui dev` as a child; SIGINT (then SIGKILL) on stop and on drop, so no task outlives a test.
pub struct Dev {
    child: Option<Child>,
    pub port: u16,
    pub agent_port: u16,
    pub log: PathBuf,
}

impl Dev {
    pub fn start(port: u16, agent_port: u16, dir: &TempDir, label: &str) -> Dev {
        let work_dir = dir.0.join(format!("work-{label}"));
        let log = dir.0.join(format!("dev-{label}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("dup log");
        let child = Command::new(tepui_bin())
            .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string(), "--agent_port", &agent_port.to_string(), "--marathon_port", "0"])
            .arg("--work_dir")
            .arg(&work_dir)
            .args(["--resources", "cpus:4;mem:4096;disk:10000;ports:[31000-31100]"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn tepui dev");
        Dev { child: Some(child), port, agent_port, log }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the process and waits until it is gone (its ports are free again).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: sends a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    eprintln!("tepui dev ignored SIGINT for 20 s; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- tepui dev log tail ({}) ---\n{}", self.log.display(), self.log_tail());
        }
        self.stop();
    }
}

pub fn framework_info(name: &str, failover_timeout: f64) -> FrameworkInfo {
    serde_json::from_value(serde_json::json!({
        "user": std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into()),
        "name": name,
        "failover_timeout": failover_timeout,
        "roles": ["*"],
        "capabilities": [{"type": "MULTI_ROLE"}],
    }))
    .expect("framework info")
}


/// Waits (until `timeout`) for an event `pick` maps to `Some`, skipping others; panics with the
/// events seen when the deadline passes or the channel closes.
pub async fn wait_for<T>(
    events: &mut mpsc::Receiver<ClientEvent>,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}; saw: {seen:#?}"),
            Ok(None) => panic!("events channel closed while waiting for {what}; saw: {seen:#?}"),
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
                seen.push(summary(&event));
            }
        }
    }
}

/// Asserts that no event `bad` matches arrives within `window` (a negative check has to wait).
pub async fn expect_none(events: &mut mpsc::Receiver<ClientEvent>, window: Duration, what: &str, bad: impl Fn(&ClientEvent) -> bool) {
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        assert!(!bad(&event), "unexpected {what}: {}", summary(&event));
    }
}

pub fn summary(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Event(e) => match &e.update {
            Some(u) => format!("UPDATE {} {} reason={:?} uuid={}", u.status.task_id, u.status.state.name(), u.status.reason, u.status.uuid.is_some()),
            None => e.kind.clone(),
        },
        other => format!("{other:?}"),
    }
}

pub fn as_event(event: &ClientEvent) -> Option<&Event> {
    match event {
        ClientEvent::Event(e) => Some(e),
        _ => None,
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "scheduler_client=debug".into()))
        .with_test_writer()
        .try_init();
}
