//! Tasks, deployments, groups, queue, info, leader, ping, metrics over real HTTP (§4, §8.3).

mod common;
use common::*;
use marathon_api::service::{AppChange, LeaderState};
use serde_json::json;

#[tokio::test]
async fn tasks_list_kill_and_delete_many() {
    let h = leading(sample_view()).await;
    let (_, _, v) = h.send("GET", "/v2/tasks?status[]=running", None).await;
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(
        |t| t["servicePorts"].as_array().unwrap().len() >= t["ports"].as_array().unwrap().len()
    ));
    let (_, _, v) = h.send("GET", "/v2/tasks?status=staging", None).await;
    assert_eq!(v["tasks"], json!([]));
    let (s, _, v) = h
        .send(
            "POST",
            "/v2/tasks/delete",
            Some(&json!({"ids": [HELLO_TASK]}).to_string()),
        )
        .await;
    assert_eq!((s, v["tasks"][0]["id"].as_str()), (200, Some(HELLO_TASK)));
    let (s, _, v) = h
        .send(
            "POST",
            "/v2/tasks/delete?scale=true",
            Some(&json!({"ids": [HELLO_TASK]}).to_string()),
        )
        .await;
    assert_eq!((s, v["deploymentId"].as_str()), (200, Some("dep-1")));
    let (s, _, v) = h
        .send("POST", "/v2/tasks/delete", Some(r#"{"ids":["garbage"]}"#))
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].is_string());
    let (s, _, _) = h
        .send("DELETE", "/v2/apps/hello2/tasks?scale=true&wipe=true", None)
        .await;
    assert_eq!(s, 400);
    let (s, _, v) = h
        .send("DELETE", "/v2/apps/hello2/tasks?host=agent-1", None)
        .await;
    assert_eq!((s, v["tasks"][0]["id"].as_str()), (200, Some(HELLO_TASK)));
    let (s, _, v) = h
        .send("DELETE", "/v2/apps/hello2/tasks?host=elsewhere", None)
        .await;
    assert_eq!((s, v["tasks"].clone()), (200, json!([])));
    let (s, _, v) = h
        .send(
            "DELETE",
            &format!("/v2/apps/hello2/tasks/{HELLO_TASK}?wipe=True"),
            None,
        )
        .await;
    assert_eq!((s, v["task"]["id"].as_str()), (200, Some(HELLO_TASK)));
    let (s, _, v) = h
        .send(
            "DELETE",
            "/v2/apps/hello2/tasks/hello2.instance-00000000-07b3-11ef-9a8e-0242ac110002._app.1",
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert!(v["message"].as_str().unwrap().starts_with("Task '"));
    let kills: Vec<_> = h
        .recorded()
        .into_iter()
        .filter_map(|r| match r {
            Recorded::Kill {
                ids, scale, wipe, ..
            } => Some((ids.len(), scale, wipe)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kills,
        [
            (1, false, false),
            (1, true, false),
            (1, false, false),
            (0, false, false),
            (1, false, true)
        ]
    );
}

#[tokio::test]
async fn deployments_list_and_cancel_both_ways() {
    let h = leading(sample_view()).await;
    let (s, _, v) = h.send("GET", "/v2/deployments", None).await;
    assert_eq!((s, v[0]["id"].as_str()), (200, Some(DEPLOYMENT)));
    let (s, headers, v) = h
        .send("DELETE", &format!("/v2/deployments/{DEPLOYMENT}"), None)
        .await;
    assert_eq!((s, v["deploymentId"].as_str()), (200, Some("dep-1")));
    assert_eq!(headers["marathon-deployment-id"], "dep-1");
    let r = h
        .http
        .delete(h.url(&format!("/v2/deployments/{DEPLOYMENT}?force=True")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.bytes().await.unwrap().is_empty());
    let (s, _, v) = h.send("DELETE", "/v2/deployments/unknown", None).await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"message": "DeploymentPlan unknown does not exist"})
        )
    );
    let cancels: Vec<_> = h
        .recorded()
        .into_iter()
        .filter_map(|r| match r {
            Recorded::Cancel { force, .. } => Some(force),
            _ => None,
        })
        .collect();
    assert_eq!(cancels, [false, true]);
}

#[tokio::test]
async fn groups_tree_and_changes() {
    let h = leading(sample_view()).await;
    let (s, _, v) = h.send("GET", "/v2/groups", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        keys(&v),
        ["apps", "dependencies", "groups", "id", "pods", "version"]
    );
    assert_eq!(v["id"], "/");
    assert_eq!(v["apps"][0]["id"], "/hello2");
    assert_eq!(v["groups"][0]["id"], "/prod");
    assert_eq!(v["groups"][0]["apps"].as_array().unwrap().len(), 2);
    let (s, _, v) = h
        .send("GET", "/v2/groups/prod?embed=group.apps", None)
        .await;
    assert_eq!((s, v.get("groups")), (200, None));
    let (s, _, v) = h.send("GET", "/v2/groups/nope", None).await;
    assert_eq!(
        (s, v),
        (404, json!({"message": "Group '/nope' does not exist"}))
    );
    let empty = start(Default::default(), |a| LeaderState::Leading(a.into())).await;
    let (s, _, v) = empty.send("GET", "/v2/groups/", None).await;
    assert_eq!(
        (s, v["apps"].clone()),
        (200, json!([])),
        "the root always exists"
    );
    let (s, _, _) = h
        .send("PUT", "/v2/groups/prod", Some(r#"{"scaleBy":2}"#))
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = h.send("DELETE", "/v2/groups/prod", None).await;
    assert_eq!(s, 200);
    let (s, headers, _) = h.send("POST", "/v2/groups", Some(r#"{"id":"stage","apps":[{"id":"a","cmd":"x"}],"groups":[{"id":"sub","apps":[{"id":"b","cmd":"y"}]}]}"#)).await;
    assert_eq!(s, 201);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/v2/groups/stage"));
    let (s, _, _) = h
        .send("POST", "/v2/groups", Some(r#"{"id":"prod","apps":[]}"#))
        .await;
    assert_eq!(s, 409);
    let (s, _, v) = h
        .send(
            "PUT",
            "/v2/groups/prod?dryRun=true",
            Some(r#"{"apps":[{"id":"web","cmd":"new"}]}"#),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["steps"][0]["actions"].as_array().unwrap().len(),
        2,
        "db stopped, web changed"
    );
    let rec = h.recorded();
    let changes: Vec<Vec<AppChange>> = rec
        .into_iter()
        .filter_map(|r| match r {
            Recorded::Deploy { changes, .. } => Some(changes),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 3);
    assert!(changes[0]
        .iter()
        .any(|c| matches!(c, AppChange::Scale { instances: 2, .. })));
    assert!(changes[1].iter().all(|c| matches!(c, AppChange::Delete(_))) && changes[1].len() == 2);
    let ids: Vec<String> = changes[2]
        .iter()
        .map(|c| match c {
            AppChange::Put(a) => a.id.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["/stage/a", "/stage/sub/b"]);
}

#[tokio::test]
async fn queue_and_delay_reset() {
    let h = leading(sample_view()).await;
    let (_, _, v) = h.send("GET", "/v2/queue", None).await;
    assert_eq!(v["queue"][0]["count"], 1);
    assert!(v["queue"][0].get("lastUnusedOffers").is_none());
    let (_, _, v) = h
        .send("GET", "/v2/queue?embed=lastUnusedOffers", None)
        .await;
    assert_eq!(v["queue"][0]["lastUnusedOffers"][0]["offer"]["id"], "o1");
    let r = h
        .http
        .delete(h.url("/v2/queue//prod/db/delay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _, v) = h.send("DELETE", "/v2/queue/hello2/delay", None).await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"message": "Application /hello2 not found in tasks queue."})
        )
    );
}

#[tokio::test]
async fn info_leader_ping_metrics_root() {
    let h = leading(sample_view()).await;
    let (s, _, v) = h.send("GET", "/v2/info", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        keys(&v),
        [
            "buildref",
            "elected",
            "frameworkId",
            "http_config",
            "leader",
            "marathon_config",
            "name",
            "version",
            "zookeeper_config"
        ]
    );
    assert_eq!(
        (v["version"].as_str(), v["elected"].as_bool()),
        (Some("1.10.0"), Some(true))
    );
    assert_eq!(v["frameworkId"], json!(null));
    assert_eq!(v["leader"], h.addr);
    assert_eq!(
        keys(&v["zookeeper_config"]),
        [
            "zk",
            "zk_connection_timeout",
            "zk_max_versions",
            "zk_session_timeout",
            "zk_timeout"
        ]
    );
    assert_eq!(keys(&v["http_config"]), ["http_port", "https_port"]);
    assert!(v["marathon_config"]["features"].is_array());
    let (s, _, v) = h.send("GET", "/v2/leader", None).await;
    assert_eq!((s, v), (200, json!({"leader": h.addr})));
    let (s, _, v) = h.send("DELETE", "/v2/leader", None).await;
    assert_eq!((s, v), (200, json!({"message": "Leadership abdicated"})));
    assert!(matches!(h.recorded()[..], [Recorded::Abdicate]));
    let r = h.http.get(h.url("/ping")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "pong");
    let r = h
        .http
        .get(h.url("/ping"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "\"pong\"");
    let (_, _, v) = h.send("GET", "/metrics", None).await;
    assert_eq!(
        keys(&v),
        [
            "counters",
            "gauges",
            "histograms",
            "meters",
            "timers",
            "version"
        ]
    );
    let (_, samples) = h.prometheus_matching_metrics().await;
    assert_eq!(samples.value("marathon_apps_active_gauge"), Some(3.0));
    let r = h.http.get(h.url("/")).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (302, "/ui/")
    );
    let (s, _, v) = h.send("GET", "/v2/nothing", None).await;
    assert_eq!(s, 404);
    assert!(v["message"].is_string());
    // No leader: GET /v2/leader answers 404 at once.
    h.leader.send(LeaderState::Unknown).unwrap();
    let (s, _, v) = h.send("GET", "/v2/leader", None).await;
    assert_eq!((s, v), (404, json!({"message": "There is no leader"})));
}
