//! The ZooKeeper store against a real ZooKeeper: round trip, atomicity, pruning, fencing, views.

mod common;

use common::{connect, wait_for, ZkServer};
use marathon_store::{
    version_from_millis, Key, Snapshot, StateStore, StoreError, StoreOp, StoreView, ZkStore,
    RECORD_BYTES_MAX,
};
use serde_json::json;

fn put_app(app: &str, version: u64) -> StoreOp {
    StoreOp::PutApp {
        app_id: app.into(),
        version: version_from_millis(version),
        value: json!({"id": app, "version": version}),
    }
}

#[tokio::test]
async fn commit_and_load_round_trip() {
    let zk = ZkServer::start("roundtrip");
    let connection = connect(&zk, "/marathon").await;
    let store = ZkStore::new(connection.clone(), 50);
    assert_eq!(
        store.commit(vec![put_app("/a", 1)]).await,
        Err(StoreError::NotFenced)
    );
    store.fence().await.unwrap();
    store
        .commit(vec![
            put_app("/prod/web", 1),
            put_app("/prod/web", 2),
            put_app("/db", 7),
            StoreOp::PutInstance {
                id: "prod_web.instance-1".into(),
                value: json!({"state": "running"}),
            },
            StoreOp::PutDeployment {
                id: "d-1".into(),
                value: json!({"steps": []}),
            },
            StoreOp::PutFrameworkId("fw-0001".into()),
        ])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.apps.len(), 2);
    assert_eq!(snapshot.current_app("/prod/web").unwrap().1["version"], 2);
    assert_eq!(
        snapshot.instances["prod_web.instance-1"]["state"],
        "running"
    );
    assert_eq!(snapshot.deployments.len(), 1);
    assert_eq!(snapshot.framework_id.as_deref(), Some("fw-0001"));

    // Replacing, deleting: the app's node goes with its versions.
    store
        .commit(vec![
            StoreOp::DeleteApp {
                app_id: "/prod/web".into(),
            },
            StoreOp::PutInstance {
                id: "prod_web.instance-1".into(),
                value: json!({"state": "killed"}),
            },
            StoreOp::DeleteDeployment { id: "d-1".into() },
        ])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.apps.keys().collect::<Vec<_>>(), vec!["/db"]);
    assert_eq!(snapshot.instances["prod_web.instance-1"]["state"], "killed");
    assert!(snapshot.deployments.is_empty());
    let app_node = connection.layout.path(&Key::App("/prod/web".into()));
    assert_eq!(
        connection.client.check_stat(&app_node).await.unwrap(),
        None,
        "app node removed"
    );

    // A new handle (a new leader) sees the same state.
    let other = ZkStore::new(connect(&zk, "/marathon").await, 50);
    assert_eq!(other.load().await.unwrap(), snapshot);
}

#[tokio::test]
async fn a_failing_commit_writes_nothing() {
    let zk = ZkServer::start("atomic");
    let connection = connect(&zk, "/marathon").await;
    let store = ZkStore::new(connection.clone(), 50);
    store.fence().await.unwrap();
    let big = StoreOp::PutInstance {
        id: "big".into(),
        value: json!("x".repeat(RECORD_BYTES_MAX)),
    };
    match store.commit(vec![put_app("/a", 1), big]).await {
        Err(StoreError::TooLarge { key, bytes }) => {
            assert_eq!(key, "/marathon/state/instances/big");
            assert!(bytes > RECORD_BYTES_MAX);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.load().await.unwrap(), Snapshot::default());

    // A record failing inside ZooKeeper: an instance node exists as a directory with a child, so
    // deleting it fails (NotEmpty) after the app write in the same multi; the app is not written.
    let blocker = connection.layout.path(&Key::Instance("blocker".into()));
    let options =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    connection
        .client
        .create(
            &blocker,
            &marathon_store::ops::encode_record(&json!(1)),
            &options,
        )
        .await
        .unwrap();
    connection
        .client
        .create(&format!("{blocker}/child"), b"", &options)
        .await
        .unwrap();
    let err = store
        .commit(vec![
            put_app("/a", 1),
            StoreOp::DeleteInstance {
                id: "blocker".into(),
            },
        ])
        .await
        .unwrap_err();
    // NotEmpty counts as a race with ourselves: planned again, then reported as a conflict.
    assert!(
        matches!(&err, StoreError::Conflict(why) if why.contains("blocker")),
        "{err:?}"
    );
    assert!(
        store.load().await.unwrap().apps.is_empty(),
        "the multi wrote nothing"
    );
}

#[tokio::test]
async fn commits_keep_at_most_max_versions() {
    let zk = ZkServer::start("versions");
    let store = ZkStore::new(connect(&zk, "/marathon").await, 3);
    store.fence().await.unwrap();
    for v in 1..=4 {
        store.commit(vec![put_app("/a", v)]).await.unwrap();
    }
    store
        .commit((5..=8).map(|v| put_app("/a", v)).collect())
        .await
        .unwrap();
    let versions: Vec<String> = store.load().await.unwrap().apps["/a"]
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        versions,
        (6..=8).map(version_from_millis).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_deposed_leader_is_fenced_and_writes_nothing() {
    let zk = ZkServer::start("fencing");
    let a = ZkStore::new(connect(&zk, "/marathon").await, 50);
    let b = ZkStore::new(connect(&zk, "/marathon").await, 50);
    let epoch_a = a.fence().await.unwrap();
    a.commit(vec![put_app("/from-a", 1)]).await.unwrap();
    let epoch_b = b.fence().await.unwrap();
    assert!(epoch_b > epoch_a);
    let before = b.load().await.unwrap();
    assert_eq!(
        a.commit(vec![
            put_app("/from-a", 2),
            StoreOp::PutFrameworkId("stale".into()),
            StoreOp::DeleteApp {
                app_id: "/from-a".into()
            }
        ])
        .await,
        Err(StoreError::Fenced)
    );
    assert_eq!(
        b.load().await.unwrap(),
        before,
        "the fenced commit changed nothing"
    );
    b.commit(vec![
        put_app("/from-b", 1),
        StoreOp::PutFrameworkId("fw".into()),
    ])
    .await
    .unwrap();
    let after = a.load().await.unwrap();
    assert_eq!(after.apps.len(), 2);
    assert_eq!(after.framework_id.as_deref(), Some("fw"));
}

#[tokio::test]
async fn corrupt_records_are_reported_with_their_path() {
    let zk = ZkServer::start("corrupt");
    let connection = connect(&zk, "/marathon").await;
    let path = connection.layout.path(&Key::Deployment("d/1".into()));
    let options =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    connection
        .client
        .create(&path, b"{not json", &options)
        .await
        .unwrap();
    match ZkStore::new(connection, 50).load().await {
        Err(StoreError::Corrupt { key, .. }) => {
            assert_eq!(key, "/marathon/state/deployments/d%2F1")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_view_follows_another_handles_commits() {
    let zk = ZkServer::start("view");
    let writer = ZkStore::new(connect(&zk, "/marathon").await, 2);
    writer.fence().await.unwrap();
    writer
        .commit(vec![
            put_app("/before", 1),
            StoreOp::PutInstance {
                id: "i1".into(),
                value: json!({"n": 1}),
            },
        ])
        .await
        .unwrap();

    let view = StoreView::start(connect(&zk, "/marathon").await);
    let caught_up = view.wait_caught_up().await.unwrap();
    assert_eq!(
        *caught_up,
        writer.load().await.unwrap(),
        "cold catch-up equals a full load"
    );

    // Changes arrive through watches alone.
    let mut rx = view.subscribe();
    writer
        .commit(vec![
            put_app("/after", 1),
            StoreOp::PutInstance {
                id: "i1".into(),
                value: json!({"n": 2}),
            },
            StoreOp::PutDeployment {
                id: "d1".into(),
                value: json!({}),
            },
            StoreOp::PutFrameworkId("fw-9".into()),
        ])
        .await
        .unwrap();
    wait_for(&mut rx, "the view sees the commit", |s| {
        s.apps.contains_key("/after")
            && s.instances["i1"]["n"] == 2
            && s.deployments.contains_key("d1")
            && s.framework_id.is_some()
    })
    .await;

    // wait_caught_up reflects everything committed before it, at once.
    writer
        .commit(vec![
            StoreOp::DeleteApp {
                app_id: "/before".into(),
            },
            put_app("/after", 2),
            put_app("/after", 3),
            StoreOp::DeleteInstance { id: "i1".into() },
            StoreOp::DeleteDeployment { id: "d1".into() },
        ])
        .await
        .unwrap();
    let snapshot = view.wait_caught_up().await.unwrap();
    assert_eq!(*snapshot, writer.load().await.unwrap());
    assert_eq!(
        snapshot.apps["/after"].len(),
        2,
        "pruned versions leave the view too"
    );
    assert!(snapshot.instances.is_empty());
    assert!(!view.snapshot().apps.contains_key("/before"));
}

#[tokio::test]
async fn a_task_failure_round_trips_and_is_deleted_with_its_app() {
    // (and a retired app's definition round-trips on its own)
    let zk = ZkServer::start("failures");
    let connection = connect(&zk, "/marathon").await;
    // State written before task failures were stored has no such directory: it loads fine.
    let failures_dir = connection.layout.task_failures_dir();
    connection.client.delete(&failures_dir, None).await.unwrap();
    let store = ZkStore::new(connection.clone(), 50);
    assert!(store.load().await.unwrap().task_failures.is_empty());

    store.fence().await.unwrap(); // a new leader's fence creates the directory again
    let failure = json!({"appId": "/prod/web", "taskId": "prod_web.instance-1._app.1", "state": "TASK_FAILED", "message": "exit 1"});
    store
        .commit(vec![
            put_app("/prod/web", 1),
            StoreOp::PutTaskFailure {
                app_id: "/prod/web".into(),
                value: failure.clone(),
            },
        ])
        .await
        .unwrap();
    let view = StoreView::start(connect(&zk, "/marathon").await);
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.task_failures["/prod/web"], failure);
    assert_eq!(
        *view.wait_caught_up().await.unwrap(),
        snapshot,
        "a standby's view has it too"
    );
    let record = connection
        .layout
        .path(&Key::TaskFailure("/prod/web".into()));
    let (bytes, _) = connection.client.get_data(&record).await.unwrap();
    assert!(
        bytes.starts_with(b"{\"format\":1,"),
        "format-versioned: {}",
        String::from_utf8_lossy(&bytes)
    );

    // A later failure replaces it; a failure of an app that does not exist is not written.
    let newer =
        json!({"appId": "/prod/web", "taskId": "prod_web.instance-2._app.1", "state": "TASK_LOST"});
    store
        .commit(vec![
            StoreOp::PutTaskFailure {
                app_id: "/prod/web".into(),
                value: newer.clone(),
            },
            StoreOp::PutTaskFailure {
                app_id: "/never".into(),
                value: json!({}),
            },
        ])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert_eq!(
        snapshot.task_failures.keys().collect::<Vec<_>>(),
        vec!["/prod/web"]
    );
    assert_eq!(snapshot.task_failures["/prod/web"], newer);

    // Deleting the app deletes its failure in the same multi; a definition kept for a rollback is
    // independent of the app's records.
    let kept = json!({"id": "/prod/web", "version": 1});
    store
        .commit(vec![
            StoreOp::DeleteApp {
                app_id: "/prod/web".into(),
            },
            StoreOp::PutRetiredApp {
                app_id: "/prod/web".into(),
                value: kept.clone(),
            },
        ])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert!(snapshot.apps.is_empty() && snapshot.task_failures.is_empty());
    assert_eq!(snapshot.retired_apps["/prod/web"], kept);
    assert_eq!(
        connection.client.check_stat(&record).await.unwrap(),
        None,
        "failure znode removed"
    );
    assert_eq!(*view.wait_caught_up().await.unwrap(), snapshot);
    store
        .commit(vec![StoreOp::DeleteRetiredApp {
            app_id: "/prod/web".into(),
        }])
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), Snapshot::default());
    let mut rx = view.subscribe();
    wait_for(&mut rx, "the view forgets both", |s| {
        **s == Snapshot::default()
    })
    .await;
}
