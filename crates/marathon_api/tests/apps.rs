//! `/v2/apps` over real HTTP (marathon-api.md §3, §4, §1 error model).

mod common;
use common::*;
use marathon_api::service::{AppChange, CommandError, ServiceView};
use marathon_model::PathId;
use serde_json::json;

#[tokio::test]
async fn post_hello2_answers_201_with_location_deployment_and_normalized_app() {
    let h = leading(ServiceView::default()).await;
    let body = r#"{"id":"hello2","cmd":"echo hello; sleep 10","mem":16,"cpus":0.1,"instances":1,"disk":0.0,"ports":[0]}"#;
    let (status, headers, v) = h.send("POST", "/v2/apps", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/v2/apps/hello2"));
    assert_eq!(headers["marathon-deployment-id"], "dep-1");
    assert!(headers["x-marathon-leader"]
        .to_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(v["id"], "/hello2");
    assert_eq!(v["deployments"], json!([{"id": "dep-1"}]));
    assert_eq!(v["tasksRunning"], 0);
    assert_eq!(
        v["portDefinitions"],
        json!([{"port": 0, "protocol": "tcp", "labels": {}}])
    );
    assert!(v.get("tasks").is_none() && v.get("versionInfo").is_none() && v.get("ports").is_none());
    assert_eq!(v["version"], "2024-05-01T12:00:01.123Z");
    match &h.recorded()[..] {
        [Recorded::Deploy {
            changes,
            force: false,
            create_only: true,
        }] => {
            assert!(matches!(&changes[..], [AppChange::Put(a)] if a.id.to_string() == "/hello2"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn get_one_app_has_the_exact_spec_key_set() {
    let h = leading(sample_view()).await;
    let (status, _, v) = h.send("GET", "/v2/apps/hello2", None).await;
    assert_eq!(status, 200);
    let app = &v["app"];
    let expected = [
        "backoffFactor",
        "backoffSeconds",
        "cmd",
        "cpus",
        "deployments",
        "disk",
        "executor",
        "gpus",
        "id",
        "instances",
        "killSelection",
        "labels",
        "maxLaunchDelaySeconds",
        "mem",
        "networks",
        "portDefinitions",
        "requirePorts",
        "role",
        "tasks",
        "tasksHealthy",
        "tasksRunning",
        "tasksStaged",
        "tasksUnhealthy",
        "unreachableStrategy",
        "upgradeStrategy",
        "version",
        "versionInfo",
    ];
    assert_eq!(keys(app), expected);
    assert_eq!(app["tasksRunning"], 1);
    assert_eq!(app["deployments"], json!([]));
    let task = &app["tasks"][0];
    assert_eq!(task["servicePorts"], json!([10000]));
    assert_eq!(task["stagedAt"], "2024-05-01T12:00:00.512Z");
    assert_eq!(
        keys(task),
        [
            "appId",
            "healthCheckResults",
            "host",
            "id",
            "ipAddresses",
            "localVolumes",
            "ports",
            "role",
            "servicePorts",
            "slaveId",
            "stagedAt",
            "startedAt",
            "state",
            "version"
        ]
    );
    // lastTaskFailure is always embedded on the single GET.
    let (_, _, v) = h.send("GET", "/v2/apps/prod/db", None).await;
    assert_eq!(v["app"]["lastTaskFailure"]["message"], "boom");
}

#[tokio::test]
async fn ids_with_double_slashes_groups_and_reserved_suffixes() {
    let h = leading(sample_view()).await;
    let (s, _, v) = h.send("GET", "/v2/apps//prod/web", None).await;
    assert_eq!((s, v["app"]["id"].as_str()), (200, Some("/prod/web")));
    let (s, _, v) = h.send("GET", "/v2/apps/prod/*", None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["*"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["/prod/db", "/prod/web"]);
    let (s, _, v) = h.send("GET", "/v2/apps/hello2/tasks", None).await;
    assert_eq!((s, v["tasks"][0]["id"].as_str()), (200, Some(HELLO_TASK)));
    let (s, _, v) = h.send("GET", "/v2/apps/prod/*/tasks", None).await;
    assert_eq!((s, v["tasks"].as_array().unwrap().len()), (200, 1));
    // A lone reserved word is an app id, which cannot exist.
    let (s, _, v) = h.send("GET", "/v2/apps/tasks", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("App '/tasks' does not exist"))
    );
    let (s, _, v) = h
        .send("PUT", "/v2/apps/tasks", Some(r#"{"cmd":"x"}"#))
        .await;
    assert_eq!((s, v["details"][0]["path"].as_str()), (422, Some("/id")));
    let (s, _, v) = h.send("GET", "/v2/apps/nope/tasks", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("App '/nope' does not exist"))
    );
    let (s, _, v) = h.send("GET", "/v2/apps/hello2/versions", None).await;
    assert_eq!(
        (s, v["versions"][0].as_str()),
        (200, Some("2024-05-01T12:00:00.123Z"))
    );
    let (s, _, v) = h
        .send(
            "GET",
            "/v2/apps/hello2/versions/2024-05-01T12:00:00.123Z",
            None,
        )
        .await;
    assert_eq!(
        (s, v["id"].as_str(), v.get("app")),
        (200, Some("/hello2"), None)
    );
    let (s, _, v) = h
        .send(
            "GET",
            "/v2/apps/hello2/versions/2024-05-01T11:46:40.000Z",
            None,
        )
        .await;
    assert_eq!(
        (s, v["instances"].as_i64()),
        (200, Some(7)),
        "older versions come from the leader"
    );
}

#[tokio::test]
async fn list_filters_and_embeds() {
    let h = leading(sample_view()).await;
    let (_, _, v) = h.send("GET", "/v2/apps?label=tier==web", None).await;
    let apps = v["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["id"], "/prod/web");
    assert_eq!(apps[0]["deployments"], json!([{"id": DEPLOYMENT}]));
    assert_eq!(apps[0]["tasksHealthy"], 1);
    assert!(apps[0].get("tasks").is_none());
    let (_, _, v) = h.send("GET", "/v2/apps?id=PROD&cmd=d", None).await;
    assert_eq!(v["apps"].as_array().unwrap().len(), 1);
    for q in [
        "embed=apps.tasks",
        "embed=app.tasks",
        "embed=tasks",
        "embed=apps.failures",
    ] {
        let (_, _, v) = h
            .send("GET", &format!("/v2/apps?id=hello2&{q}"), None)
            .await;
        assert_eq!(v["apps"][0]["tasks"][0]["id"], HELLO_TASK, "{q}");
    }
    let (_, _, v) = h
        .send(
            "GET",
            "/v2/apps?id=db&embed=apps.lastTaskFailure&embed=apps.taskStats",
            None,
        )
        .await;
    assert_eq!(v["apps"][0]["lastTaskFailure"]["state"], "TASK_FAILED");
    assert!(v["apps"][0]["taskStats"].is_object());
    assert!(v["apps"][0].get("tasksStats").is_none());
    let (s, _, v) = h.send("GET", "/v2/apps?label=a%20in%20(", None).await;
    assert_eq!(s, 400);
    assert!(v["message"].is_string());
}

#[tokio::test]
async fn error_bodies_follow_the_error_model() {
    let h = leading(sample_view()).await;
    let (s, _, v) = h
        .send(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"x","cmd":"c","cpus":"many"}"#),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"message":"Invalid JSON","details":[{"path":"/cpus","errors":["error.expected.jsnumber"]}]})
    );
    let (s, _, v) = h.send("POST", "/v2/apps", Some("{not json")).await;
    assert_eq!((s, v["message"].as_str()), (400, Some("Invalid JSON")));
    let (s, _, v) = h
        .send(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"x","cmd":"c","upgradeStrategy":{"minimumHealthCapacity":2}}"#),
        )
        .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (422, Some("Object is not valid"))
    );
    assert_eq!(
        v["details"][0]["path"],
        "/upgradeStrategy/minimumHealthCapacity"
    );
    // Tree rules: an app may not take a group's id nor sit under an app.
    let (s, _, v) = h
        .send("POST", "/v2/apps", Some(r#"{"id":"/prod","cmd":"c"}"#))
        .await;
    assert_eq!((s, v["details"][0]["path"].as_str()), (422, Some("/id")));
    let (s, _, _) = h
        .send(
            "POST",
            "/v2/apps",
            Some(r#"{"id":"/hello2/sub","cmd":"c"}"#),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _, v) = h
        .send("POST", "/v2/apps", Some(r#"{"id":"/hello2","cmd":"c"}"#))
        .await;
    assert_eq!(
        (s, v),
        (
            409,
            json!({"message": "An app with id [/hello2] already exists."})
        )
    );
    let (s, _, v) = h.send("DELETE", "/v2/apps/nope", None).await;
    assert_eq!(
        (s, v),
        (404, json!({"message": "App '/nope' does not exist"}))
    );
    assert!(
        h.recorded().is_empty(),
        "no invalid request reached the leader"
    );
    h.behaviour.lock().unwrap().deploy_error = Some(CommandError::Locked {
        deployment_ids: vec![DEPLOYMENT.into()],
    });
    let (s, _, v) = h
        .send("PUT", "/v2/apps/prod/web", Some(r#"{"cmd":"new"}"#))
        .await;
    assert_eq!(s, 409);
    assert_eq!(v["message"], "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.");
    assert_eq!(v["deployments"], json!([{"id": DEPLOYMENT}]));
}

#[tokio::test]
async fn put_patch_delete_restart_become_the_right_changes() {
    let h = leading(sample_view()).await;
    let web = PathId::parse("/prod/web").unwrap();
    // GET → PUT round trip of the full AppInfo (read-only keys ignored), force=True.
    let (_, _, v) = h.send("GET", "/v2/apps/prod/web", None).await;
    let (s, headers, r) = h
        .send(
            "PUT",
            "/v2/apps/prod/web?force=True",
            Some(&v["app"].to_string()),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(headers["marathon-deployment-id"], "dep-1");
    assert_eq!(
        r,
        json!({"version": "2024-05-01T12:00:01.123Z", "deploymentId": "dep-1"})
    );
    let (s, _, _) = h
        .send("PUT", "/v2/apps/prod/web", Some(r#"{"instances":3}"#))
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = h
        .send(
            "PUT",
            "/v2/apps/prod/web",
            Some(r#"{"version":"2024-05-01T11:46:40.000Z"}"#),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = h
        .send("PUT", "/v2/apps/new/one", Some(r#"{"cmd":"c"}"#))
        .await;
    assert_eq!(s, 201);
    let (s, _, _) = h
        .send("PATCH", "/v2/apps/prod/web", Some(r#"{"mem":64}"#))
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = h
        .send("PATCH", "/v2/apps/missing", Some(r#"{"mem":64}"#))
        .await;
    assert_eq!(s, 404);
    let (s, _, _) = h.send("DELETE", "/v2/apps/prod/web", None).await;
    assert_eq!(s, 200);
    let (s, _, _) = h.send("POST", "/v2/apps/prod/web/restart", None).await;
    assert_eq!(s, 200);
    let (s, _, _) = h
        .send(
            "PUT",
            "/v2/apps",
            Some(r#"[{"id":"/prod/web","cmd":"x"},{"id":"fresh","cmd":"y"}]"#),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, v) = h
        .send(
            "PUT",
            "/v2/apps",
            Some(r#"[{"id":"/a","cmd":"x"},{"id":"b","cmd":"y","cpus":0}]"#),
        )
        .await;
    assert_eq!(
        (s, v["details"][0]["path"].as_str()),
        (422, Some("(1)/cpus"))
    );
    let (s, _, _) = h
        .send("PATCH", "/v2/apps", Some(r#"[{"id":"/nope","cmd":"x"}]"#))
        .await;
    assert_eq!(s, 404);
    let rec = h.recorded();
    let changes: Vec<&Vec<AppChange>> = rec
        .iter()
        .map(|r| match r {
            Recorded::Deploy { changes, .. } => changes,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(matches!(
        rec[0],
        Recorded::Deploy {
            force: true,
            create_only: false,
            ..
        }
    ));
    assert!(
        matches!(&changes[0][..], [AppChange::Put(a)] if a.id == web && a.cmd.as_deref() == Some("web"))
    );
    assert!(matches!(
        &changes[1][..],
        [AppChange::Scale { instances: 3, .. }]
    ));
    assert!(matches!(&changes[2][..], [AppChange::Rollback { version, .. }] if *version == V0));
    assert!(matches!(&changes[3][..], [AppChange::Put(a)] if a.id.to_string() == "/new/one"));
    assert!(
        matches!(&changes[4][..], [AppChange::Put(a)] if a.mem == 64.0 && a.cmd.as_deref() == Some("web"))
    );
    assert!(matches!(&changes[5][..], [AppChange::Delete(id)] if *id == web));
    assert!(
        matches!(rec[5], Recorded::Deploy { force: true, .. }),
        "DELETE forces by default"
    );
    assert!(matches!(&changes[6][..], [AppChange::Restart(id)] if *id == web));
    assert_eq!(changes[7].len(), 2);
    assert_eq!(changes.len(), 8);
}
