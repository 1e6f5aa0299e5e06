//! The daemon served in-process on a real socket, with real processes.

use super::*;
use crate::core::Exit;
use crate::launcher_client::{connect_or_start, Connection, LauncherEvent};
use crate::launcher_protocol::decode_wait_status;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(20);

struct Fixture {
    work_dir: PathBuf,
    served: tokio::task::JoinHandle<Result<(), LauncherError>>,
}

impl Fixture {
    fn start(name: &str, idle: Duration) -> Fixture {
        let work_dir =
            std::env::temp_dir().join(format!("tepui-daemon-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&work_dir).unwrap();
        let dir = work_dir.clone();
        let served = tokio::spawn(async move { serve(&dir, idle, Arc::new(NoIsolation)).await });
        Fixture { work_dir, served }
    }

    /// A session; `/bin/false` stands for the binary, so nothing is started if ours is not up yet
    /// (the connect retries until it listens).
    async fn connect(&self) -> Connection {
        connect_or_start(&self.work_dir, Path::new("/bin/false"))
            .await
            .unwrap()
    }

    fn request(&self, id: &str, script: &str) -> LaunchRequest {
        let sandbox = self.work_dir.join("sandboxes").join(id);
        let checkpoint_dir = self.work_dir.join("meta/runs").join(id);
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::create_dir_all(&checkpoint_dir).unwrap();
        LaunchRequest {
            container_id: id.to_string(),
            program: "/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("WHO".into(), id.into()),
            ],
            cwd: sandbox.clone(),
            stdout: sandbox.join("stdout"),
            stderr: sandbox.join("stderr"),
            checkpoint_dir,
            isolation: serde_json::Value::Null,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

async fn next(connection: &mut Connection) -> LauncherEvent {
    tokio::time::timeout(WAIT, connection.events.recv())
        .await
        .expect("an event in time")
        .expect("the connection is open")
}

async fn poll(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_kills_and_exits() {
    let mut fixture = Fixture::start("basic", IDLE_TIMEOUT);
    let mut c = fixture.connect().await;

    let ok = fixture.request("ok", "echo out $WHO; echo err >&2; exit 4");
    c.launcher.launch(ok.clone());
    let LauncherEvent::Launched {
        container_id,
        start_time,
        ..
    } = next(&mut c).await
    else {
        panic!()
    };
    assert_eq!(container_id, "ok");
    assert!(
        start_time.is_some(),
        "the start time tells the process from a later one with its pid"
    );
    let LauncherEvent::Exited { wait_status, .. } = next(&mut c).await else {
        panic!()
    };
    assert_eq!(decode_wait_status(wait_status), Exit::Code(4));
    assert_eq!(std::fs::read_to_string(&ok.stdout).unwrap(), "out ok\n");
    assert_eq!(std::fs::read_to_string(&ok.stderr).unwrap(), "err\n");
    // The exit was recorded in the run's checkpoint directory before it was reported.
    let exit: crate::checkpoint::records::ExitRecord = crate::checkpoint::records::parse(
        &std::fs::read(layout::exit_status(&ok.checkpoint_dir)).unwrap(),
    )
    .unwrap();
    assert_eq!(exit.wait_status, wait_status);
    // Held until acknowledged.
    assert_eq!(c.launcher.list().await.unwrap().exited.len(), 1);
    c.launcher.ack_exit("ok");
    assert!(c.launcher.list().await.unwrap().exited.is_empty());

    // A shell that ignores SIGTERM is SIGKILLed by the daemon when the grace period ends.
    let stubborn = fixture.request("stubborn", "trap '' TERM; echo ready; sleep 600");
    c.launcher.launch(stubborn.clone());
    let LauncherEvent::Launched { pid, .. } = next(&mut c).await else {
        panic!()
    };
    poll("the trap", || {
        std::fs::read_to_string(&stubborn.stdout).unwrap_or_default() == "ready\n"
    })
    .await;
    let listed = c.launcher.list().await.unwrap();
    assert_eq!(listed.running.len(), 1);
    assert_eq!(
        (
            listed.running[0].container_id.as_str(),
            listed.running[0].pid
        ),
        ("stubborn", pid)
    );
    c.launcher
        .kill("stubborn", libc::SIGTERM, Some(Duration::from_millis(200)));
    let LauncherEvent::Exited { wait_status, .. } = next(&mut c).await else {
        panic!()
    };
    assert_eq!(decode_wait_status(wait_status), Exit::Signal(libc::SIGKILL));
    // SAFETY: signal 0 only checks existence.
    assert_ne!(
        unsafe { libc::kill(pid as i32, 0) },
        0,
        "the whole group is gone"
    );

    let mut missing = fixture.request("missing", "");
    missing.program = "/nonexistent/program".into();
    missing.argv = vec!["program".into()];
    c.launcher.launch(missing);
    let LauncherEvent::LaunchFailed {
        container_id,
        error,
    } = next(&mut c).await
    else {
        panic!()
    };
    assert_eq!(container_id, "missing");
    assert!(error.contains("/nonexistent/program"), "{error}");

    c.launcher.shutdown();
    tokio::time::timeout(WAIT, &mut fixture.served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_while_no_agent_is_connected_is_kept_for_the_next_one() {
    let mut fixture = Fixture::start("offline", IDLE_TIMEOUT);
    let mut first = fixture.connect().await;
    let waiter = fixture.request("waiter", "while [ ! -e go ]; do sleep 0.01; done; exit 0");
    let runner = fixture.request("runner", "sleep 600");
    first.launcher.launch(waiter.clone());
    first.launcher.launch(runner.clone());
    let mut pids = HashMap::new();
    for _ in 0..2 {
        let LauncherEvent::Launched {
            container_id, pid, ..
        } = next(&mut first).await
        else {
            panic!()
        };
        pids.insert(container_id, pid);
    }
    drop(first);

    // The task exits while no agent is connected; the exit is recorded on disk, then kept.
    std::fs::write(waiter.cwd.join("go"), b"").unwrap();
    poll("the recorded exit", || {
        layout::exit_status(&waiter.checkpoint_dir).exists()
    })
    .await;

    let mut second = fixture.connect().await;
    let deadline = std::time::Instant::now() + WAIT;
    let snapshot = loop {
        let snapshot = second.launcher.list().await.unwrap();
        if !snapshot.exited.is_empty() {
            break snapshot;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the exit never showed: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(snapshot.running.len(), 1);
    assert_eq!(
        snapshot.running[0].pid, pids["runner"],
        "the same process, still running"
    );
    assert_eq!(snapshot.exited.len(), 1);
    assert_eq!(snapshot.exited[0].container_id, "waiter");
    assert_eq!(
        decode_wait_status(snapshot.exited[0].wait_status),
        Exit::Code(0)
    );
    while second.events.try_recv().is_ok() {}

    // A newer session replaces this one: exits go to the newest.
    let mut third = fixture.connect().await;
    third.launcher.kill("runner", libc::SIGKILL, None);
    let LauncherEvent::Exited { container_id, .. } = next(&mut third).await else {
        panic!()
    };
    assert_eq!(container_id, "runner");
    // The replaced session is closed and hears of no exit.
    while let Ok(event) = second.events.try_recv() {
        assert_eq!(
            event,
            LauncherEvent::Disconnected,
            "the replaced session hears nothing more"
        );
    }

    // Shutdown with nothing running: the daemon returns.
    third.launcher.shutdown();
    tokio::time::timeout(WAIT, &mut fixture.served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_daemons_exit_and_newer_protocol_versions_are_refused() {
    let mut fixture = Fixture::start("idle", Duration::from_millis(200));
    let meta = layout::meta_dir(&fixture.work_dir);
    poll("the socket", || meta.join(layout::LAUNCHER_SOCKET).exists()).await;
    {
        let stream = UnixStream::connect(meta.join(layout::LAUNCHER_SOCKET))
            .await
            .unwrap();
        let (read, mut write) = stream.into_split();
        write
            .write_all(b"{\"v\":2,\"type\":\"HELLO\",\"work_dir\":\"/\"}\n")
            .await
            .unwrap();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let answer: FromLauncher = protocol::decode(line.trim_end().as_bytes()).unwrap();
        assert!(
            matches!(answer, FromLauncher::Error { ref message, .. } if message.contains("version 2")),
            "{answer:?}"
        );
    }
    // A second daemon for the same work directory steps aside.
    serve(&fixture.work_dir, IDLE_TIMEOUT, Arc::new(NoIsolation))
        .await
        .unwrap();
    // No task and no agent: the daemon exits by itself and removes its socket.
    tokio::time::timeout(WAIT, &mut fixture.served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!meta.join(layout::LAUNCHER_SOCKET).exists());
}
