//! Isolation and sandbox GC end to end: the real agent (`agent::run`) against the fake master, with
//! its launcher daemon hosted in this process with the isolation spawn hook (`JoinCgroups`), real
//! processes, real cgroups (these tests run as root on a host that mounts the memory and cpu
//! controllers, v1 or v2), and real HTTP.

mod support;

use agent::isolation::{CgroupsIsolator, Selection, REASON_CONTAINER_LIMITATION_MEMORY};
use proto::agent_protocol::MasterToAgent;
use proto::TaskState::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use support::*;

const WAIT: Duration = Duration::from_secs(30);
/// Fills the shell's memory with 300 MB, then sleeps: over any limit below that.
const HOG: &str = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); sleep 30";

// ---- log capture: the agent's start-up warnings are part of what is tested ----

fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

// ---- helpers ----

/// The launcher daemon with the isolation hook, served on a thread of its own.
struct IsolatedLauncher {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IsolatedLauncher {
    fn start(work_dir: &Path) -> IsolatedLauncher {
        std::fs::create_dir_all(work_dir).unwrap();
        let dir = work_dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the launcher");
            let served = runtime.block_on(agent::launcher_daemon::serve(
                &dir,
                agent::launcher_daemon::IDLE_TIMEOUT,
                Arc::new(agent::isolation::JoinCgroups),
            ));
            if let Err(e) = served {
                eprintln!("in-process launcher failed: {e}");
            }
        });
        let socket = work_dir.join("meta/launcher.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the in-process launcher did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        IsolatedLauncher {
            thread: Some(thread),
        }
    }

    async fn stopped(mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        eventually("the launcher to stop", WAIT, || {
            thread.is_finished().then_some(())
        })
        .await;
        let _ = thread.join();
    }
}

fn task(id: &str, cpus: f64, mem: f64, command: &str) -> MasterToAgent {
    serde_json::from_value(serde_json::json!({
        "type": "RUN_TASK",
        "framework": framework_json(),
        "task": {
            "name": id, "task_id": {"value": id}, "agent_id": {"value": AGENT_ID},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}
            ],
            "command": {"value": command}
        }
    }))
    .expect("a valid RUN_TASK")
}

async fn get(url: String) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The RUNNING update's container id and pid.
async fn running(master: &FakeMaster, task: &str) -> (String, u32) {
    eventually(&format!("{task} running"), WAIT, || {
        master.updates_for(task).into_iter().find_map(|u| {
            let cs = u.status.container_status.as_ref()?;
            let id = cs["container_id"]["value"].as_str()?.to_string();
            let pid = cs["executor_pid"].as_u64()? as u32;
            (u.status.state == TaskRunning).then_some((id, pid))
        })
    })
    .await
}

async fn terminal(master: &FakeMaster, task: &str) -> proto::TaskStatus {
    eventually(&format!("{task} terminal"), WAIT, || {
        master
            .updates_for(task)
            .into_iter()
            .map(|u| u.status)
            .find(|s| s.state.is_terminal())
    })
    .await
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

// ---- tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroups_enforce_memory_and_cpu_and_report_the_limitation() {
    capture_logs();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("cgroups");
    let launcher = IsolatedLauncher::start(&work_dir);
    let agent = RunningAgent::start_in(&master, &work_dir, |f| {
        f.isolation = "cgroups/cpu,cgroups/mem".into();
    });
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;

    // A task that stays within its limits: its groups hold what the task asked for.
    master.send(task("calm", 0.5, 64.0, "sleep 600"));
    let (calm_container, calm_pid) = running(&master, "calm").await;
    let selection = Selection::parse("cgroups/cpu,cgroups/mem").unwrap();
    let layout = CgroupsIsolator::new(&selection, None, Path::new("tepui"))
        .expect("usable cgroups on this host");
    let (memory, cpu, _) = layout.hierarchies();
    let (memory, cpu) = (memory.unwrap(), cpu.unwrap());
    let mem_dir = memory.mount.join("tepui").join(&calm_container);
    let cpu_dir = cpu.mount.join("tepui").join(&calm_container);
    match memory.version {
        agent::isolation::Version::V1 => {
            assert_eq!(read(mem_dir.join("memory.limit_in_bytes")), "67108864")
        }
        agent::isolation::Version::V2 => assert_eq!(read(mem_dir.join("memory.max")), "67108864"),
    }
    match cpu.version {
        agent::isolation::Version::V1 => {
            assert_eq!(read(cpu_dir.join("cpu.shares")), "512");
            let period: u64 = read(cpu_dir.join("cpu.cfs_period_us")).parse().unwrap();
            assert_eq!(
                read(cpu_dir.join("cpu.cfs_quota_us")),
                (period / 2).to_string()
            );
        }
        agent::isolation::Version::V2 => {
            assert!(read(cpu_dir.join("cpu.max")).starts_with("50000 "))
        }
    }
    // The task's process joined them before it ran (the daemon's pre-exec step).
    let own = read(PathBuf::from(format!("/proc/{calm_pid}/cgroup")));
    let in_group = own
        .lines()
        .filter(|l| l.ends_with(&format!("/tepui/{calm_container}")))
        .count();
    assert!(in_group >= 1, "{own}");
    assert!(read(mem_dir.join("cgroup.procs"))
        .lines()
        .any(|l| l == calm_pid.to_string()));

    // /monitor/statistics reports it with its limits.
    let (status, body) = get(format!("http://{endpoint}/monitor/statistics")).await;
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let calm = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "calm")
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(calm["framework_id"], "F1");
    assert_eq!(calm["statistics"]["mem_limit_bytes"], 67108864);
    assert_eq!(calm["statistics"]["cpus_limit"], 0.5);
    assert!(calm["statistics"]["mem_rss_bytes"].is_u64(), "{calm}");
    let (status, _) = get(format!("http://{endpoint}/monitor/statistics.json")).await;
    assert_eq!(status, 200);

    // A task over its memory limit is stopped and reported as such.
    master.send(task("hog", 0.5, 64.0, HOG));
    let failed = terminal(&master, "hog").await;
    assert_eq!(failed.state, TaskFailed, "{failed:?}");
    assert_eq!(
        failed.reason.as_deref(),
        Some(REASON_CONTAINER_LIMITATION_MEMORY),
        "{failed:?}"
    );
    assert_eq!(failed.source, Some(proto::StatusSource::SourceAgent));
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("Memory limit exceeded") && message.contains("64MB"),
        "{message}"
    );

    // The neighbour is untouched; once killed, its groups are removed.
    assert!(process_exists(calm_pid as i32));
    master.send(kill_task("calm"));
    assert_eq!(terminal(&master, "calm").await.state, TaskKilled);
    eventually("calm's cgroups removed", WAIT, || {
        (!mem_dir.exists() && !cpu_dir.exists()).then_some(())
    })
    .await;

    assert!(
        captured().contains("isolation=cgroups/cpu,cgroups/mem"),
        "{}",
        captured()
    );
    agent.stop().await.unwrap();
    launcher.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usable_cgroups_the_agent_warns_and_enforces_memory_by_polling() {
    capture_logs();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("fallback");
    let launcher = IsolatedLauncher::start(&work_dir);
    let hierarchy = format!("/nonexistent/cgroup-{}", uuid::Uuid::new_v4());
    let agent = RunningAgent::start_in(&master, &work_dir, |f| {
        f.isolation = "cgroups/cpu,cgroups/mem".into();
        f.cgroups_hierarchy = Some(PathBuf::from(&hierarchy));
    });
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    let expected = format!(
        "--isolation=cgroups/cpu,cgroups/mem requested but no cgroup memory controller is mounted under {hierarchy}: falling back to posix/cpu,posix/mem"
    );
    let logs = captured();
    let warning = logs
        .lines()
        .find(|l| l.contains(&expected))
        .unwrap_or_else(|| panic!("no fallback warning in:\n{logs}"));
    assert!(warning.contains("WARN"), "{warning}");

    master.send(task("hog", 0.1, 64.0, HOG));
    let failed = terminal(&master, "hog").await;
    assert_eq!(failed.state, TaskFailed, "{failed:?}");
    assert_eq!(
        failed.reason.as_deref(),
        Some(REASON_CONTAINER_LIMITATION_MEMORY),
        "{failed:?}"
    );
    assert!(failed
        .message
        .unwrap_or_default()
        .contains("Requested: 64MB"));

    agent.stop().await.unwrap();
    launcher.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_sandboxes_are_deleted_after_gc_delay_and_then_answer_404() {
    capture_logs();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("gc");
    let launcher = IsolatedLauncher::start(&work_dir);
    let agent = RunningAgent::start_in(&master, &work_dir, |f| {
        f.gc_delay = "1secs".into();
        f.gc_disk_headroom = 0.0;
    });
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    let base = format!("http://{endpoint}");

    master.send(task("running", 0.1, 32.0, "echo alive; sleep 600"));
    running(&master, "running").await;
    master.send(task("done", 0.1, 32.0, "echo bye"));
    assert_eq!(terminal(&master, "done").await.state, TaskFinished);
    let done_path = "/frameworks/F1/executors/done/runs/latest/stdout";
    let running_path = "/frameworks/F1/executors/running/runs/latest/stdout";
    // Served right after completion (the GC tick is at most 1 s away, the keep time 1 s more).
    let (status, body) = get(format!("{base}/files/read?path={done_path}&offset=0")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"data":"bye\n","offset":0}"#)
    );
    let done_dir = work_dir.join(format!("slaves/{AGENT_ID}/frameworks/F1/executors/done"));
    assert!(done_dir.is_dir());

    let completed = Instant::now();
    eventually_async("the completed sandbox to be collected", WAIT, || async {
        let (status, _) = get(format!("{base}/files/read?path={done_path}&offset=0")).await;
        (status == 404).then_some(())
    })
    .await;
    assert!(
        completed.elapsed() >= Duration::from_millis(500),
        "deleted too early: {:?}",
        completed.elapsed()
    );
    // The run goes first (what /files/read resolves), its executor's directory right after.
    eventually(
        "the executor's directory to go with its only run",
        WAIT,
        || (!done_dir.exists()).then_some(()),
    )
    .await;
    let (status, _) = get(format!(
        "{base}/files/browse?path=/frameworks/F1/executors/done/runs/latest"
    ))
    .await;
    assert_eq!(status, 404);
    // The running task's sandbox stays, well past the delay.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = get(format!("{base}/files/read?path={running_path}&offset=0")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"data":"alive\n","offset":0}"#)
    );

    agent.stop().await.unwrap();
    launcher.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gc_schedule_survives_a_restart_through_sandbox_mtimes() {
    capture_logs();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("gc-restart");
    // Sandboxes a previous agent left: one completed two days ago, one just now.
    let run = |executor: &str| {
        work_dir.join(format!(
            "slaves/OLD-S0/frameworks/F0/executors/{executor}/runs/c-{executor}"
        ))
    };
    let (old, fresh) = (run("old"), run("fresh"));
    for dir in [&old, &fresh] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("stdout"), "x").unwrap();
    }
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(two_days_ago))
        .unwrap();

    let launcher = IsolatedLauncher::start(&work_dir);
    let agent = RunningAgent::start_in(&master, &work_dir, |f| {
        f.gc_delay = "1days".into();
        f.gc_disk_headroom = 0.0;
    });
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    eventually("the two-day-old sandbox to be collected", WAIT, || {
        (!old.exists()).then_some(())
    })
    .await;
    assert!(!work_dir
        .join("slaves/OLD-S0/frameworks/F0/executors/old")
        .exists());
    assert!(fresh.is_dir(), "a sandbox completed just now stays");

    agent.stop().await.unwrap();
    launcher.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stopped_at_its_memory_limit_while_the_agent_was_down_is_reported_with_the_limitation(
) {
    capture_logs();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("oom-downtime");
    let launcher = IsolatedLauncher::start(&work_dir);
    // Its own cgroup root: a recovering agent removes the groups under its root that no task of
    // its own claims, and the other tests of this file run beside it.
    let cgroups = |f: &mut agent::AgentFlags| {
        f.isolation = "cgroups/cpu,cgroups/mem".into();
        f.cgroups_root = "tepui-test-oom-downtime".into();
    };
    let first = KillableAgent::start(&master, &work_dir, cgroups);
    eventually("registration", WAIT, || master.agent_endpoint()).await;

    // The hog waits for a file in its sandbox, so it outgrows its limit only once the agent is gone.
    let hog_later = format!("while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.01; done; {HOG}");
    master.send(task("late-hog", 0.5, 64.0, &hog_later));
    running(&master, "late-hog").await;
    first.kill();

    let sandbox = work_dir.join(format!(
        "slaves/{AGENT_ID}/frameworks/F1/executors/late-hog/runs/latest"
    ));
    std::fs::write(sandbox.join("go"), b"").unwrap();
    let exit_recorded = || {
        let runs = work_dir.join(format!(
            "meta/slaves/{AGENT_ID}/frameworks/F1/executors/late-hog/runs"
        ));
        std::fs::read_dir(&runs)
            .ok()?
            .flatten()
            .find(|run| run.path().join("exit_status").exists())
    };
    eventually("the launcher to record the hog's exit", WAIT, exit_recorded).await;

    let second = KillableAgent::start(&master, &work_dir, cgroups);
    let failed = terminal(&master, "late-hog").await;
    assert_eq!(failed.state, TaskFailed, "{failed:?}");
    assert_eq!(
        failed.reason.as_deref(),
        Some(REASON_CONTAINER_LIMITATION_MEMORY),
        "{failed:?}"
    );
    second.kill();
    drop(launcher);
    let _ = std::fs::remove_dir_all(&work_dir);
}
