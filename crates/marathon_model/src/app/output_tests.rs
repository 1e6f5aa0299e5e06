//! AppInfo output: the spec's `hello2` example key for key, optional keys, round trips.

use serde_json::{json, Value};

use super::defaults::ParseContext;
use super::output::{AppStatus, LifeTime, Stats, TaskCounts, TaskStats, VersionInfo};
use super::*;
use crate::task::{IpAddress, Task};

const V: Timestamp = Timestamp(1_714_564_800_123);

fn hello2() -> AppDefinition {
    let body = json!({"id":"hello2","cmd":"echo hello; sleep 10","mem":16,"cpus":0.1,"instances":1,"disk":0.0,"ports":[0]});
    let mut app = AppDefinition::from_json(&body, &ParseContext::post()).unwrap();
    super::validate::validate(&app).unwrap();
    // What the service does on POST: assign the service port, stamp the version.
    app.port_definitions[0].port = 10000;
    app.version = Some(V);
    app
}

#[test]
fn hello2_matches_the_spec_example() {
    let task = Task {
        id: "hello2.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1".into(),
        app_id: PathId::parse("/hello2").unwrap(),
        host: "agent-1".into(),
        state: "TASK_RUNNING".into(),
        slave_id: "7c1e…-S0".into(),
        staged_at: Some(Timestamp::parse("2024-05-01T12:00:00.512Z").unwrap()),
        started_at: Some(Timestamp::parse("2024-05-01T12:00:01.040Z").unwrap()),
        version: V,
        ports: vec![31742],
        service_ports: vec![10000],
        ip_addresses: vec![IpAddress::new("10.0.0.11")],
        health_check_results: vec![],
        local_volumes: vec![],
        role: "*".into(),
        region: None,
        zone: None,
    };
    let status = AppStatus {
        version_info: Some(VersionInfo {
            last_scaling_at: V,
            last_config_change_at: V,
        }),
        counts: Some(TaskCounts {
            staged: 0,
            running: 1,
            healthy: 0,
            unhealthy: 0,
        }),
        deployments: Some(vec![]),
        tasks: Some(vec![task]),
        ..AppStatus::default()
    };
    let got = json!({ "app": hello2().to_app_info(&status) });
    let want: Value = serde_json::from_str(r#"{"app":{"id":"/hello2","cmd":"echo hello; sleep 10","instances":1,"cpus":0.1,"mem":16,"disk":0,"gpus":0,
     "executor":"","labels":{},"backoffSeconds":1,"backoffFactor":1.15,"maxLaunchDelaySeconds":300,
     "portDefinitions":[{"port":10000,"protocol":"tcp","labels":{}}],"requirePorts":false,
     "networks":[{"mode":"host"}],"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":1},
     "unreachableStrategy":{"inactiveAfterSeconds":0,"expungeAfterSeconds":0},"killSelection":"YOUNGEST_FIRST",
     "role":"*","version":"2024-05-01T12:00:00.123Z",
     "versionInfo":{"lastScalingAt":"2024-05-01T12:00:00.123Z","lastConfigChangeAt":"2024-05-01T12:00:00.123Z"},
     "tasksStaged":0,"tasksRunning":1,"tasksHealthy":0,"tasksUnhealthy":0,"deployments":[],
     "tasks":[{"id":"hello2.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1","appId":"/hello2","host":"agent-1",
       "slaveId":"7c1e…-S0","state":"TASK_RUNNING","stagedAt":"2024-05-01T12:00:00.512Z","startedAt":"2024-05-01T12:00:01.040Z",
       "version":"2024-05-01T12:00:00.123Z","ports":[31742],"servicePorts":[10000],
       "ipAddresses":[{"ipAddress":"10.0.0.11","protocol":"IPv4"}],"healthCheckResults":[],"localVolumes":[],"role":"*"}]}}"#).unwrap();
    assert_eq!(got, want);
}

#[test]
fn post_body_has_no_version_info_and_no_tasks() {
    let status = AppStatus {
        counts: Some(TaskCounts::default()),
        deployments: Some(vec!["d1".into()]),
        ..AppStatus::default()
    };
    let v = hello2().to_app_info(&status);
    assert!(v.get("versionInfo").is_none() && v.get("tasks").is_none());
    assert_eq!(v["deployments"], json!([{"id": "d1"}]));
    assert_eq!(v["tasksRunning"], json!(0));
}

#[test]
fn never_writes_deprecated_keys_or_nulls() {
    let body = json!({"id":"a","cmd":"x","ports":[0],"uris":["http://x/a.zip"],"ipAddress":null,"user":null});
    let v = AppDefinition::from_json(&body, &ParseContext::post())
        .unwrap()
        .to_json();
    let m = v.as_object().unwrap();
    for k in [
        "ports",
        "uris",
        "ipAddress",
        "user",
        "args",
        "constraints",
        "container",
        "env",
        "healthChecks",
        "version",
        "tty",
    ] {
        assert!(!m.contains_key(k), "{k}");
    }
    assert!(m.contains_key("fetch"));
    fn no_nulls(v: &Value) {
        match v {
            Value::Null => panic!("null written"),
            Value::Array(a) => a.iter().for_each(no_nulls),
            Value::Object(o) => o.values().for_each(no_nulls),
            _ => {}
        }
    }
    no_nulls(&v);
}

#[test]
fn container_networking_omits_port_definitions() {
    let body = json!({"id":"a","container":{"type":"DOCKER","docker":{"image":"nginx","parameters":[{"key":"k","value":"v"}]},
        "portMappings":[{"containerPort":80,"name":"http"}],"volumes":[{"containerPath":"/d","hostPath":"/h","mode":"RO"}]},
        "networks":[{"mode":"container/bridge"}]});
    let v = AppDefinition::from_json(&body, &ParseContext::post())
        .unwrap()
        .to_json();
    assert!(v.get("portDefinitions").is_none());
    assert_eq!(
        v["container"],
        json!({"type":"DOCKER","docker":{"image":"nginx","forcePullImage":false,"privileged":false,
               "parameters":[{"key":"k","value":"v"}]},
               "portMappings":[{"containerPort":80,"hostPort":0,"servicePort":0,"protocol":"tcp","name":"http","labels":{}}],
               "volumes":[{"containerPath":"/d","hostPath":"/h","mode":"RO"}]})
    );
}

#[test]
fn optional_keys_are_written_when_set() {
    let body = json!({"id":"/g/a","args":["run"],"constraints":[["hostname","UNIQUE"]],"dependencies":["b"],
        "env":{"A":"1","S":{"secret":"s"}},"secrets":{"s":{"source":"vault"}},"healthChecks":[{"protocol":"TCP"}],
        "readinessChecks":[{"name":"r"}],"acceptedResourceRoles":["*"],"taskKillGracePeriodSeconds":5,"user":"nobody",
        "residency":{"taskLostBehavior":"WAIT_FOREVER"},"unreachableStrategy":"disabled","killSelection":"OLDEST_FIRST"});
    let v = AppDefinition::from_json(&body, &ParseContext::post())
        .unwrap()
        .to_json();
    assert_eq!(v["args"], json!(["run"]));
    assert_eq!(v["dependencies"], json!(["/g/b"]));
    assert_eq!(v["env"], json!({"A":"1","S":{"secret":"s"}}));
    assert_eq!(v["healthChecks"][0]["portIndex"], json!(0));
    assert_eq!(v["healthChecks"][0]["protocol"], json!("TCP"));
    assert_eq!(v["unreachableStrategy"], json!("disabled"));
    assert_eq!(v["killSelection"], json!("OLDEST_FIRST"));
    for k in [
        "secrets",
        "readinessChecks",
        "acceptedResourceRoles",
        "taskKillGracePeriodSeconds",
        "user",
        "residency",
        "constraints",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn get_put_round_trip_is_identity() {
    let bodies = [
        json!({"id":"hello2","cmd":"echo hello; sleep 10","mem":16,"cpus":0.1,"ports":[0]}),
        json!({"id":"/g/a","args":["run"],"constraints":[["rack","GROUP_BY","2"]],"healthChecks":[{"path":"/h"}],
               "fetch":[{"uri":"http://x/y.tgz","cache":true}],"labels":{"l":"v"},"upgradeStrategy":{"minimumHealthCapacity":0.5,"maximumOverCapacity":0.2}}),
        json!({"id":"d","container":{"docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80}]}},
               "healthChecks":[{"protocol":"MESOS_HTTP"}]}),
        json!({"id":"r","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"data","mode":"RW","persistent":{"size":1}}]}}),
    ];
    for body in bodies {
        let mut app = AppDefinition::from_json(&body, &ParseContext::post()).unwrap();
        app.version = Some(V);
        let status = AppStatus {
            version_info: Some(VersionInfo {
                last_scaling_at: V,
                last_config_change_at: V,
            }),
            counts: Some(TaskCounts::default()),
            deployments: Some(vec![]),
            tasks: Some(vec![]),
            task_stats: Some(TaskStats::default()),
            ..AppStatus::default()
        };
        let got = app.to_app_info(&status);
        let back = AppDefinition::from_json(&got, &ParseContext::put(app.id.clone())).unwrap();
        super::validate::validate(&back).unwrap();
        assert_eq!(
            back,
            AppDefinition {
                version: None,
                ..app.clone()
            }
        );
    }
}

#[test]
fn task_stats_use_the_compat_spelling() {
    let stats = Stats {
        counts: TaskCounts {
            staged: 1,
            running: 2,
            healthy: 0,
            unhealthy: 0,
        },
        life_time: Some(LifeTime {
            average_seconds: 1.5,
            median_seconds: 2.0,
        }),
    };
    let status = AppStatus {
        task_stats: Some(TaskStats {
            total_summary: Some(stats),
            ..TaskStats::default()
        }),
        ..AppStatus::default()
    };
    let v = hello2().to_app_info(&status);
    assert!(v.get("tasksStats").is_none());
    assert_eq!(
        v["taskStats"],
        json!({"totalSummary":{"stats":{"counts":{"staged":1,"running":2,"healthy":0,"unhealthy":0},
               "lifeTime":{"averageSeconds":1.5,"medianSeconds":2}}}})
    );
}
