//! Marathon end to end against a real `tepui dev` (master and agent in one child process), with
//! the service in-process over an in-memory store and driven over real HTTP (marathon-api.md §4,
//! §7). Needs the `tepui` binary: `cargo build -p tepui` in the same CARGO_TARGET_DIR (or set
//! TEPUI_BIN); a missing binary fails the tests. Every wait is on a condition with a deadline.

mod support;

use marathon_store::StateStore;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::{
    events, find_sandbox, init_logs, start_dev, task_ids, wait_event, Marathon, TempDir,
};

const WAIT: Duration = Duration::from_secs(60);

/// §3's example: hello2 runs, prints `hello`, and is relaunched (new task id) after it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hello2_runs_prints_and_is_relaunched() {
    init_logs();
    let dir = TempDir::new("hello2");
    let dev = start_dev(&dir);
    let m = Marathon::start(&dev).await;
    let mut stream = events(&m.url).await;

    let app = json!({"id":"hello2","cmd":"echo hello; sleep 10","mem":16,"cpus":0.1,"instances":1,"disk":0.0,"ports":[0]});
    let (status, body) = m.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "/hello2");
    let deployments = m.get("/v2/deployments").await.expect("deployments");
    assert!(
        !deployments.as_array().expect("array").is_empty(),
        "the deployment is listed when POST returns"
    );

    let first = m
        .wait("hello2 TASK_RUNNING", WAIT, |m| async move {
            let app = m.app("hello2").await?;
            let running = task_ids(&app, "TASK_RUNNING");
            (app["tasksRunning"] == 1 && running.len() == 1).then(|| (running[0].clone(), app))
        })
        .await;
    let (task_id, app) = first;
    assert!(
        task_id.starts_with("hello2.instance-") && task_id.ends_with("._app.1"),
        "{task_id}"
    );
    let port = app["portDefinitions"][0]["port"]
        .as_i64()
        .expect("service port");
    assert!((10000..=20000).contains(&port), "service port {port}");
    let task = &app["tasks"][0];
    let host_port = task["ports"][0].as_u64().expect("host port");
    assert!(
        (31000..=31100).contains(&host_port),
        "host port {host_port} comes from the offer"
    );
    assert_eq!(task["servicePorts"][0], port);

    // Its sandbox stdout (through the agent's /files/read) holds "hello".
    let agent = dev.agent_url();
    let stdout = m
        .wait("hello in the sandbox stdout", WAIT, |m| {
            let (agent, task_id) = (agent.clone(), task_id.clone());
            async move {
                let state: Value = m
                    .http
                    .get(format!("{agent}/state"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let sandbox = find_sandbox(&state, &task_id)?;
                let read: Value = m
                    .http
                    .get(format!("{agent}/files/read"))
                    .query(&[
                        ("path", format!("{sandbox}/stdout")),
                        ("offset", "0".into()),
                        ("length", "65536".into()),
                    ])
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let data = read["data"].as_str()?.to_string();
                data.contains("hello").then_some(data)
            }
        })
        .await;
    assert!(stdout.contains("hello"));

    // §6 "Typical create sequence", with the [compat] plan groups.
    let (post, _) = wait_event(&mut stream, "api_post_event", WAIT, |_| true).await;
    assert_eq!(post["appDefinition"]["id"], "/hello2");
    let (info, _) = wait_event(&mut stream, "deployment_info", WAIT, |_| true).await;
    assert!(
        info["plan"]["original"].is_object()
            && info["plan"]["target"]["apps"][0]["id"] == "/hello2",
        "{info}"
    );
    let (update, _) = wait_event(&mut stream, "status_update_event", WAIT, |v| {
        v["taskStatus"] == "TASK_RUNNING"
    })
    .await;
    assert_eq!(update["taskId"], task_id.as_str());
    assert_eq!(update["appId"], "/hello2");
    let (done, seen) = wait_event(&mut stream, "deployment_success", WAIT, |_| true).await;
    assert!(done["plan"]["target"].is_object());
    assert!(
        seen.contains(&"deployment_step_success".to_string()),
        "{seen:?}"
    );

    // The deployment finished; after the task exits (10 s) a new task replaces it.
    m.wait("no deployments", WAIT, |m| async move {
        (m.get("/v2/deployments").await.ok()? == json!([])).then_some(())
    })
    .await;
    let second = m
        .wait("a relaunched hello2 task", WAIT, |m| {
            let old = task_id.clone();
            async move {
                let app = m.app("hello2").await?;
                let running = task_ids(&app, "TASK_RUNNING");
                (running.len() == 1 && running[0] != old).then(|| running[0].clone())
            }
        })
        .await;
    assert_ne!(second, task_id);
    let app = m.app("hello2").await.expect("app");
    assert_eq!(
        app["portDefinitions"][0]["port"], port,
        "service ports are stable"
    );
    // TASK_FINISHED raises the backoff, so the queue may show a delay; either way hello2 runs.
    m.stop().await.expect("clean stop");
    drop(dev);
}

/// Scale 0 → 5 → 2, a rolling restart on a config change, a kill with replacement (§7).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_restart_and_kill() {
    init_logs();
    let dir = TempDir::new("scale");
    let dev = start_dev(&dir);
    let m = Marathon::start(&dev).await;
    let app = json!({"id":"/sleeper","cmd":"sleep 1000","mem":16,"cpus":0.1,"instances":0});
    let (status, body) = m.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{body}");

    let running = |n: usize| {
        move |m: &'static Marathon| async move {
            let app = m.app("sleeper").await?;
            let deployments = m.get("/v2/deployments").await.ok()?;
            let ids = task_ids(&app, "TASK_RUNNING");
            (ids.len() == n && app["tasks"].as_array()?.len() == n && deployments == json!([]))
                .then_some((ids, app))
        }
    };
    let m: &'static Marathon = Box::leak(Box::new(m));
    for n in [5usize, 2] {
        let (status, body) = m
            .send(
                Method::PUT,
                "/v2/apps/sleeper",
                Some(json!({"instances": n})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["deploymentId"].is_string(), "{body}");
        m.wait(
            &format!("{n} sleepers running, deployment done"),
            WAIT,
            running(n),
        )
        .await;
    }
    let (before, app) = m.wait("2 sleepers", WAIT, running(2)).await;
    let scaled_version = app["version"].clone();
    assert_eq!(app["versionInfo"]["lastScalingAt"], scaled_version);
    assert_ne!(
        app["versionInfo"]["lastConfigChangeAt"], scaled_version,
        "scaling is not a config change"
    );

    // Config change → rolling restart: new tasks replace every old one, then the deployment ends.
    let (status, body) = m
        .send(
            Method::PUT,
            "/v2/apps/sleeper",
            Some(json!({"cmd": "sleep 1001"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (after, app) = m
        .wait("restarted sleepers", WAIT, |m| {
            let before = before.clone();
            async move {
                let (ids, app) = running(2)(m).await?;
                ids.iter()
                    .all(|id| !before.contains(id))
                    .then_some((ids, app))
            }
        })
        .await;
    assert_eq!(app["cmd"], "sleep 1001");
    assert_eq!(app["versionInfo"]["lastConfigChangeAt"], app["version"]);
    for task in app["tasks"].as_array().expect("tasks") {
        assert_eq!(
            task["version"], app["version"],
            "every task runs the new config"
        );
    }

    // Kill one task without scale → a replacement.
    let victim = after[0].clone();
    let (status, body) = m
        .send(
            Method::DELETE,
            &format!("/v2/apps/sleeper/tasks/{victim}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"]["id"], victim.as_str(), "{body}");
    m.wait("a replacement for the killed task", WAIT, |m| {
        let victim = victim.clone();
        async move {
            let (ids, _) = running(2)(m).await?;
            (!ids.contains(&victim)).then_some(())
        }
    })
    .await;

    // Stop the app: its tasks go, the app is gone.
    let (status, body) = m.send(Method::DELETE, "/v2/apps/sleeper", None).await;
    assert_eq!(status, 200, "{body}");
    m.wait("sleeper deleted", WAIT, |m| async move {
        let tasks = m.get("/v2/tasks").await.ok()?;
        (m.app("sleeper").await.is_none() && tasks["tasks"] == json!([])).then_some(())
    })
    .await;
    drop(dev);
}

/// §8.1/§8.2: a new leader over the same store takes the framework over with the stored id and
/// keeps the running tasks (no doubling, no relaunch).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_keeps_the_running_tasks() {
    init_logs();
    let dir = TempDir::new("failover");
    let dev = start_dev(&dir);
    let store = marathon_store::InMemoryStore::default();
    let first = Marathon::start_with_store(&dev, store.handle()).await;
    let app = json!({"id":"/keep","cmd":"sleep 1000","mem":16,"cpus":0.1,"instances":2});
    let (status, body) = first.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{body}");
    let running = |m: &Marathon| {
        let m = m.clone_client();
        async move {
            let app = m.app("keep").await?;
            let ids = task_ids(&app, "TASK_RUNNING");
            (ids.len() == 2 && m.get("/v2/deployments").await.ok()? == json!([])).then_some(ids)
        }
    };
    let mut before = first.wait("2 running", WAIT, running).await;
    let framework_id = first.get("/v2/info").await.expect("info")["frameworkId"].clone();
    assert!(framework_id.is_string());
    first.stop().await.expect("clean stop");

    let second = Marathon::start_with_store(&dev, store.handle()).await;
    let mut after = second
        .wait("the same 2 running after failover", WAIT, running)
        .await;
    assert_eq!(
        second.get("/v2/info").await.expect("info")["frameworkId"],
        framework_id
    );
    before.sort();
    after.sort();
    assert_eq!(before, after, "the new leader kept the tasks");
    second.stop().await.expect("clean stop");
    drop(dev);
}

/// §2.1 HTTP checks run by the leader: a healthy server counts as healthy; a config whose check
/// fails gets its new instance killed (`unhealthy_instance_kill_event`) while the old one keeps
/// serving; cancelling that deployment rolls back (§4 DELETE /v2/deployments/{id}).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_health_checks_kill_and_a_cancelled_deployment_rolls_back() {
    init_logs();
    let dir = TempDir::new("health");
    let dev = start_dev(&dir);
    let m = Marathon::start(&dev).await;
    let mut stream = events(&m.url).await;
    let check = |path: &str| json!([{"protocol":"HTTP","path":path,"gracePeriodSeconds":0,"intervalSeconds":2,"timeoutSeconds":1,"maxConsecutiveFailures":2}]);
    let app = json!({"id":"/web","cmd":"exec python3 -m http.server $PORT0 --bind 127.0.0.1","mem":32,"cpus":0.1,"instances":1,
        "ports":[0],"healthChecks": check("/")});
    let (status, body) = m.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{body}");
    let healthy = |m: &Marathon| {
        let m = m.clone_client();
        async move {
            let app = m.app("web").await?;
            let ok = app["tasksHealthy"] == 1
                && app["tasks"].as_array()?.len() == 1
                && m.get("/v2/deployments").await.ok()? == json!([]);
            ok.then_some(app)
        }
    };
    let app = m.wait("web healthy, deployment done", WAIT, healthy).await;
    let result = &app["tasks"][0]["healthCheckResults"][0];
    assert_eq!(result["alive"], true, "{app}");
    let old_task = app["tasks"][0]["id"].as_str().expect("task id").to_string();

    let (status, body) = m
        .send(
            Method::PUT,
            "/v2/apps/web",
            Some(json!({"healthChecks": check("/missing")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deployment = body["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_string();
    let (kill, _) = wait_event(&mut stream, "unhealthy_instance_kill_event", WAIT, |_| true).await;
    assert_eq!(kill["appId"], "/web");
    assert_ne!(
        kill["taskId"],
        old_task.as_str(),
        "the new instance fails, not the old one"
    );
    let app = m.app("web").await.expect("app");
    assert!(
        task_ids(&app, "TASK_RUNNING").contains(&old_task),
        "the old instance keeps serving"
    );

    let (status, body) = m
        .send(
            Method::DELETE,
            &format!("/v2/deployments/{deployment}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let app = m.wait("rolled back and healthy", WAIT, healthy).await;
    assert_eq!(app["healthChecks"][0]["path"], "/", "{app}");
    assert_eq!(
        app["tasks"][0]["id"],
        old_task.as_str(),
        "the rollback keeps the old instance"
    );
    m.stop().await.expect("clean stop");
    drop(dev);
}

/// An app removed by a deployment that is still stopping it is kept in the store for a rollback:
/// a new leader can cancel that deployment and the app comes back with its definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_rolls_back_the_removal_of_an_app() {
    init_logs();
    let dir = TempDir::new("retired");
    let dev = start_dev(&dir);
    let store = marathon_store::InMemoryStore::default();
    let first = Marathon::start_with_store(&dev, store.handle()).await;
    // The task ignores SIGTERM, so stopping it takes the kill grace period: the removal runs on
    // through the failover (20 s is far more than a failover takes here).
    let app = json!({"id":"/stubborn","cmd":"trap '' TERM; sleep 1000","mem":16,"cpus":0.1,"instances":1,
        "taskKillGracePeriodSeconds":20,"env":{"MARK":"kept"}});
    let (status, body) = first.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 201, "{body}");
    first
        .wait("stubborn running", WAIT, |m| async move {
            let app = m.app("stubborn").await?;
            (task_ids(&app, "TASK_RUNNING").len() == 1
                && m.get("/v2/deployments").await.ok()? == json!([]))
            .then_some(())
        })
        .await;
    let (status, body) = first.send(Method::DELETE, "/v2/apps/stubborn", None).await;
    assert_eq!(status, 200, "{body}");
    let removal = body["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_string();
    assert!(first.app("stubborn").await.is_none(), "removed at once");
    assert!(
        store
            .handle()
            .load()
            .await
            .expect("load")
            .retired_apps
            .contains_key("/stubborn"),
        "kept for a rollback"
    );
    first.stop().await.expect("clean stop");

    let second = Marathon::start_with_store(&dev, store.handle()).await;
    let deployments = second.get("/v2/deployments").await.expect("deployments");
    assert_eq!(
        deployments[0]["id"],
        removal.as_str(),
        "the removal still runs: {deployments}"
    );
    let (status, body) = second
        .send(Method::DELETE, &format!("/v2/deployments/{removal}"), None)
        .await;
    assert_eq!(status, 200, "a rollback: {body}");
    let app = second.app("stubborn").await.expect("the app is back");
    assert_eq!(app["env"]["MARK"], "kept");
    assert_eq!(app["instances"], 1);
    let snapshot = store.handle().load().await.expect("load");
    assert!(
        snapshot.apps.contains_key("/stubborn") && !snapshot.retired_apps.contains_key("/stubborn"),
        "{snapshot:?}"
    );
    second.stop().await.expect("clean stop");
    drop(dev);
}
