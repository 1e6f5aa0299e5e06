//! HA with a real ZooKeeper and a real `tepui dev` (marathon-api.md §8): two instances contend,
//! the standby proxies, the leader's state lives in ZooKeeper; after the leader abdicates (exit
//! code 100) the standby takes over from the store with the stored framework id, keeps the
//! running task and shows the same `lastTaskFailure` of an app whose task failed. Needs java and Debian's zookeeper jar (as marathon_store's tests), and the tepui
//! binary; missing ones fail the test.

mod support;
#[path = "../../marathon_store/tests/common/mod.rs"]
mod zk;

use clap::Parser;
use marathon::{MarathonError, MarathonFlags};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use support::{free_port, init_logs, start_dev, task_ids, Client, Dev, TempDir};

const WAIT: Duration = Duration::from_secs(60);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    flags: MarathonFlags,
}

struct Instance {
    client: Client,
    address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), MarathonError>>,
}

fn start(dev: &Dev, zk: &zk::ZkServer) -> Instance {
    let port = free_port();
    let args = [
        "marathon".to_string(),
        format!("--master={}", dev.address()),
        format!("--zk=zk://{}/marathon", zk.address),
        "--hostname=127.0.0.1".into(),
        "--http_address=127.0.0.1".into(),
        format!("--http_port={port}"),
        "--zk_session_timeout=5000".into(),
        "--failover_timeout=60".into(),
    ];
    let flags = Cli::try_parse_from(args).expect("flags").flags;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(marathon::run(flags, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Instance {
        client: Client {
            url: format!("http://127.0.0.1:{port}"),
            http,
        },
        address: format!("127.0.0.1:{port}"),
        stop: Some(stop),
        task,
    }
}

async fn wait<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl Fn() -> Fut,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, not synchronisation
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_proxies_then_takes_over_from_the_store() {
    init_logs();
    let dir = TempDir::new("ha");
    let server = zk::ZkServer::start("marathon-ha");
    let dev = start_dev(&dir);
    let a = start(&dev, &server);
    let leader = |c: Client| async move {
        c.get("/v2/leader").await.ok()?["leader"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        wait("a leads", || leader(a.client.clone())).await,
        a.address
    );
    let mut b = start(&dev, &server);
    assert_eq!(
        wait("b knows the leader", || leader(b.client.clone())).await,
        a.address
    );
    let info = wait("b's info", || async { b.client.get("/v2/info").await.ok() }).await;
    assert_eq!(info["elected"], true, "proxied to the leader: {info}");

    // Through the standby (proxied), the app is created and runs.
    let resp = b
        .client
        .http
        .request(Method::POST, format!("{}/v2/apps", b.client.url))
        .json(&json!({"id":"/ha","cmd":"sleep 1000","mem":16,"cpus":0.1,"instances":1}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    let running = |c: Client| async move {
        let app = c.app("ha").await?;
        let ids = task_ids(&app, "TASK_RUNNING");
        (ids.len() == 1 && c.get("/v2/deployments").await.ok()? == json!([]))
            .then(|| ids[0].clone())
    };
    let task = wait("ha running", || running(a.client.clone())).await;
    let framework_id = a.client.get("/v2/info").await.expect("info")["frameworkId"].clone();
    assert!(framework_id.is_string());

    // An app whose task fails: its lastTaskFailure is recorded. A long backoff, then a scale to 0,
    // keep a relaunch from replacing it before the failover.
    let resp = a
        .client
        .http
        .post(format!("{}/v2/apps", a.client.url))
        .json(&json!({"id":"/fails","cmd":"exit 1","mem":16,"cpus":0.1,"instances":1,"backoffSeconds":600,"maxLaunchDelaySeconds":3600}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    let last_failure = |c: Client| async move {
        let app = c
            .get("/v2/apps/fails?embed=apps.lastTaskFailure")
            .await
            .ok()?;
        let failure = app["app"]["lastTaskFailure"].clone();
        failure.is_object().then_some(failure)
    };
    let failure = wait("the failed task's lastTaskFailure", || {
        last_failure(a.client.clone())
    })
    .await;
    assert_eq!(failure["state"], "TASK_FAILED", "{failure}");
    assert!(
        failure["taskId"]
            .as_str()
            .is_some_and(|t| t.starts_with("fails.")),
        "{failure}"
    );
    let resp = a
        .client
        .http
        .put(format!("{}/v2/apps/fails", a.client.url))
        .json(&json!({"instances": 0}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 200);
    wait("the scale to 0 is done", || async {
        (a.client.get("/v2/deployments").await.ok()? == json!([])).then_some(())
    })
    .await;
    let failure = last_failure(a.client.clone())
        .await
        .expect("still recorded");

    // The leader abdicates: it exits with 100, b leads with the stored state.
    let resp = a
        .client
        .http
        .delete(format!("{}/v2/leader", a.client.url))
        .send()
        .await
        .expect("DELETE /v2/leader");
    assert_eq!(resp.status().as_u16(), 200);
    match tokio::time::timeout(WAIT, a.task)
        .await
        .expect("a exits")
        .expect("join")
    {
        Err(e @ MarathonError::Abdicated) => assert_eq!(e.exit_code(), 100),
        other => panic!("expected Abdicated, got {other:?}"),
    }
    drop(a.stop);
    assert_eq!(
        wait("b leads", || leader(b.client.clone())).await,
        b.address
    );
    let after = wait("the same task running under b", || {
        running(b.client.clone())
    })
    .await;
    assert_eq!(after, task, "the new leader kept the task");
    assert_eq!(
        b.client.get("/v2/info").await.expect("info")["frameworkId"],
        framework_id
    );
    let after = last_failure(b.client.clone())
        .await
        .expect("the new leader shows the lastTaskFailure");
    for field in [
        "taskId",
        "state",
        "message",
        "appId",
        "host",
        "slaveId",
        "timestamp",
        "version",
    ] {
        assert_eq!(
            after[field], failure[field],
            "{field}: {after} vs {failure}"
        );
    }

    if let Some(stop) = b.stop.take() {
        let _ = stop.send(());
    }
    let result = tokio::time::timeout(WAIT, &mut b.task)
        .await
        .expect("b stops")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
    drop(dev);
}
