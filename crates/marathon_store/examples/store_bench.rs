//! Measures the store on a real ZooKeeper: 1,000 apps (~2 KB JSON each) and 1,000 instances, then
//! the time for a fresh `load()`, for a `StoreView` to catch up from cold, and for
//! `wait_caught_up()` on a warm view. Prints figures; asserts nothing about time.
//!
//! Run against a ZooKeeper you started: `cargo run -p marathon_store --example store_bench --release
//! -- zk://127.0.0.1:2181/marathon-bench` (the root is wiped first).

use marathon_store::{connect, version_from_millis, StateStore, StoreOp, StoreView, ZkStore};
use serde_json::json;
use std::time::{Duration, Instant};

const APPS: usize = 1000;
const INSTANCES: usize = 1000;
/// Ops per commit, to stay under one ZooKeeper request's size.
const BATCH: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "zk://127.0.0.1:2181/marathon-bench".to_string());
    let url = election::ZkUrl::parse(&url)?;
    let timeout = Duration::from_secs(10);
    let connection = connect(&url, timeout).await?;
    wipe(&connection.client, &url.path).await;
    let connection = connect(&url, timeout).await?;
    let store = ZkStore::new(connection, 50);
    store.fence().await?;

    let filler = "x".repeat(1900);
    let mut ops = Vec::new();
    for i in 0..APPS {
        let value = json!({"id": format!("/bench/app-{i}"), "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "env": {"FILLER": filler}});
        ops.push(StoreOp::PutApp {
            app_id: format!("/bench/app-{i}"),
            version: version_from_millis(1_700_000_000_000 + i as u64),
            value,
        });
    }
    for i in 0..INSTANCES {
        ops.push(StoreOp::PutInstance {
            id: format!("bench_app-{i}.instance-{i}"),
            value: json!({"state": "running", "agent": "a1", "ports": [31000 + i]}),
        });
    }
    let started = Instant::now();
    let total = ops.len();
    while !ops.is_empty() {
        let rest = ops.split_off(ops.len().min(BATCH));
        store.commit(std::mem::replace(&mut ops, rest)).await?;
    }
    println!(
        "write {APPS} apps + {INSTANCES} instances in commits of {BATCH}: {:?} ({total} records)",
        started.elapsed()
    );

    let fresh = ZkStore::new(connect(&url, timeout).await?, 50);
    let started = Instant::now();
    let snapshot = fresh.load().await?;
    println!(
        "fresh load(): {:?} ({} apps, {} instances)",
        started.elapsed(),
        snapshot.apps.len(),
        snapshot.instances.len()
    );

    let started = Instant::now();
    let view = StoreView::start(connect(&url, timeout).await?);
    let caught = view.wait_caught_up().await?;
    println!(
        "StoreView cold catch-up: {:?} ({} apps, {} instances)",
        started.elapsed(),
        caught.apps.len(),
        caught.instances.len()
    );

    for _ in 0..3 {
        let started = Instant::now();
        view.wait_caught_up().await?;
        println!("wait_caught_up() on a warm view: {:?}", started.elapsed());
    }

    store
        .commit(vec![StoreOp::PutInstance {
            id: "bench_app-0.instance-0".into(),
            value: json!({"state": "killed"}),
        }])
        .await?;
    let started = Instant::now();
    let caught = view.wait_caught_up().await?;
    println!(
        "wait_caught_up() after one change: {:?} (state {})",
        started.elapsed(),
        caught.instances["bench_app-0.instance-0"]["state"]
    );
    Ok(())
}

/// Deletes `root` recursively (the bench's own root only).
async fn wipe(client: &zookeeper_client::Client, root: &str) {
    let mut stack = vec![root.to_string()];
    let mut order = Vec::new();
    while let Some(path) = stack.pop() {
        if let Ok(children) = client.list_children(&path).await {
            stack.extend(
                children
                    .into_iter()
                    .map(|c| format!("{}/{c}", path.trim_end_matches('/'))),
            );
            order.push(path);
        }
    }
    for path in order.into_iter().rev() {
        let _ = client.delete(&path, None).await;
    }
}
