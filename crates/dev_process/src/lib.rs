//! A real `tepui dev` as a child process, for the integration tests of crates that talk to a
//! master (scheduler_client, marathon): where the binary is, free ports, a temp directory removed
//! on drop, and the child stopped with SIGINT (then SIGKILL) so no task outlives a test. Test
//! support only (a dev-dependency); it never skips: a missing binary fails the test with the fix.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `tepui dev` gets to stop its tasks after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The `tepui` binary: `$TEPUI_BIN`, else `<target>/debug/tepui` next to this test's `deps/`.
/// Panics (fails the test) with instructions when it is missing.
pub fn tepui_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TEPUI_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TEPUI_BIN={} does not exist: build tepui with `cargo build -p tepui` or fix TEPUI_BIN",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in <target>/<profile>/deps");
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
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tepui-test-{label}-{}-{n}", std::process::id()));
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

/// `tepui dev` (a master and an agent, no Marathon) as a child; stopped on `stop` and on drop.
pub struct Dev {
    child: Option<Child>,
    pub port: u16,
    pub agent_port: u16,
    pub log: PathBuf,
}

impl Dev {
    /// Starts it on 127.0.0.1 with a fixed resource set; its work dir and log are named after
    /// `label` under `dir`, so a test can restart it on the same ports and state.
    pub fn start(port: u16, agent_port: u16, dir: &TempDir, label: &str) -> Dev {
        let log = dir.0.join(format!("dev-{label}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("dup log");
        let child = Command::new(tepui_bin())
            .args([
                "dev",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--agent_port",
                &agent_port.to_string(),
                "--marathon_port",
                "0",
            ])
            .arg("--work_dir")
            .arg(dir.0.join(format!("work-{label}")))
            .args([
                "--resources",
                "cpus:4;mem:4096;disk:10000;ports:[31000-31100]",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn tepui dev");
        Dev {
            child: Some(child),
            port,
            agent_port,
            log,
        }
    }

    /// The master's `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn agent_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.agent_port)
    }

    /// Stops the process and waits until it is gone (its ports are free again).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: sends a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    eprintln!("tepui dev ignored SIGINT for {STOP_GRACE:?}; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    /// The last 40 lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tepui dev log tail ({}) ---\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        self.stop();
    }
}
