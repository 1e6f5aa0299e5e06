//! Reading app definitions: defaults, legacy migrations, strict types, and a corpus of
//! malformed documents that must fail cleanly.

use serde_json::{json, Value};

use super::defaults::{self, IdSource, ParseContext};
use super::*;
use crate::error::AppError;
use crate::health::HealthProtocol;

fn parse(v: Value) -> AppDefinition {
    AppDefinition::from_json(&v, &ParseContext::post()).unwrap()
}

fn json_errors(v: Value) -> Vec<(String, Vec<String>)> {
    match AppDefinition::from_json(&v, &ParseContext::post()) {
        Err(AppError::InvalidJson(d)) => d.into_iter().map(|v| (v.path, v.errors)).collect(),
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

fn semantic_errors(v: Value) -> Vec<(String, Vec<String>)> {
    match AppDefinition::from_json(&v, &ParseContext::post()) {
        Err(AppError::Invalid(d)) => d.into_iter().map(|v| (v.path, v.errors)).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn every_default_is_filled() {
    let app = parse(json!({"id": "web", "cmd": "sleep 1"}));
    assert_eq!(app.id.to_string(), "/web");
    assert_eq!(app.cpus, 1.0);
    assert_eq!(app.mem, 128.0);
    assert_eq!(app.disk, 0.0);
    assert_eq!(app.gpus, 0);
    assert_eq!(app.instances, 1);
    assert_eq!(app.executor, "");
    assert!(app.args.is_empty() && app.env.is_empty() && app.labels.is_empty());
    assert!(app.constraints.is_empty() && app.health_checks.is_empty() && app.fetch.is_empty());
    assert_eq!(
        app.port_definitions,
        [PortDefinition {
            port: 0,
            protocol: "tcp".into(),
            name: Some("default".into()),
            labels: Default::default()
        }]
    );
    assert!(!app.require_ports);
    assert_eq!(app.backoff_seconds, 1);
    assert_eq!(app.backoff_factor, 1.15);
    assert_eq!(app.max_launch_delay_seconds, 300);
    assert_eq!(app.upgrade_strategy, defaults::UPGRADE_STRATEGY);
    assert_eq!(app.kill_selection, KillSelection::YoungestFirst);
    assert_eq!(
        app.unreachable_strategy,
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0
        }
    );
    assert_eq!(
        app.networks,
        [Network {
            mode: NetworkMode::Host,
            name: None,
            labels: Default::default()
        }]
    );
    assert_eq!(app.role, "*");
    assert_eq!(app.version, None);
    assert!(
        app.container.is_none()
            && app.user.is_none()
            && app.task_kill_grace_period_seconds.is_none()
    );
}

#[test]
fn role_comes_from_the_context_unless_given() {
    let ctx = ParseContext::post().with_role("marathon");
    let app = AppDefinition::from_json(&json!({"id": "a", "cmd": "x"}), &ctx).unwrap();
    assert_eq!(app.role, "marathon");
    let app =
        AppDefinition::from_json(&json!({"id": "a", "cmd": "x", "role": "other"}), &ctx).unwrap();
    assert_eq!(app.role, "other");
}

#[test]
fn ids_resolve_and_bad_ids_are_422_at_id() {
    let ctx = ParseContext {
        id: IdSource::Body {
            base: PathId::parse("/prod").unwrap(),
        },
        ..ParseContext::post()
    };
    let app = AppDefinition::from_json(&json!({"id": "../dev/web", "cmd": "x"}), &ctx).unwrap();
    assert_eq!(app.id.to_string(), "/dev/web");
    for bad in ["Web", "/a/tasks", "/", "a_b", "../.."] {
        let e = semantic_errors(json!({"id": bad, "cmd": "x"}));
        assert_eq!(e[0].0, "/id", "{bad}");
    }
    assert_eq!(
        json_errors(json!({"cmd": "x"})),
        [("/id".into(), vec!["error.path.missing".into()])]
    );
    // PUT: the URL id wins over the body.
    let ctx = ParseContext::put(PathId::parse("/url/id").unwrap());
    let app = AppDefinition::from_json(&json!({"id": "/other", "cmd": "x"}), &ctx).unwrap();
    assert_eq!(app.id.to_string(), "/url/id");
    let app = AppDefinition::from_json(&json!({"cmd": "x"}), &ctx).unwrap();
    assert_eq!(app.id.to_string(), "/url/id");
}

#[test]
fn deprecated_ports_become_unnamed_port_definitions() {
    let app = parse(json!({"id": "a", "cmd": "x", "ports": [0, 8080]}));
    let ports: Vec<(i64, Option<String>)> = app
        .port_definitions
        .iter()
        .map(|p| (p.port, p.name.clone()))
        .collect();
    assert_eq!(ports, [(0, None), (8080, None)]);
    let e = semantic_errors(json!({"id": "a", "cmd": "x", "ports": [0], "portDefinitions": []}));
    assert_eq!(e[0].0, "/");
    let app = parse(json!({"id": "a", "cmd": "x", "portDefinitions": []}));
    assert!(app.port_definitions.is_empty());
    let app = parse(
        json!({"id": "a", "cmd": "x", "portDefinitions": [{"port": 80, "protocol": "udp", "name": "dns", "labels": {"a": "b"}}]}),
    );
    assert_eq!(app.port_definitions[0].protocol, "udp");
    assert_eq!(app.port_definitions[0].labels["a"], "b");
}

#[test]
fn uris_become_fetch() {
    let app = parse(json!({"id": "a", "cmd": "x", "uris": ["http://x/a.tgz", "http://x/run.sh"]}));
    assert_eq!(app.fetch.len(), 2);
    assert!(app.fetch[0].extract && !app.fetch[1].extract);
    assert!(!app.fetch[1].executable && !app.fetch[1].cache);
    let e = semantic_errors(json!({"id": "a", "cmd": "x", "uris": [], "fetch": []}));
    assert_eq!(e[0].0, "/");
    let app = parse(
        json!({"id": "a", "cmd": "x", "fetch": [{"uri": "http://x/y", "executable": true, "destPath": "z"}]}),
    );
    assert_eq!(
        app.fetch[0],
        FetchUri {
            uri: "http://x/y".into(),
            extract: true,
            executable: true,
            cache: false,
            dest_path: Some("z".into())
        }
    );
}

#[test]
fn legacy_docker_network_is_migrated() {
    let app = parse(
        json!({"id": "a", "container": {"type": "DOCKER", "docker": {"image": "nginx",
        "network": "BRIDGE", "portMappings": [{"containerPort": 80}]}}}),
    );
    assert_eq!(app.networks[0].mode, NetworkMode::ContainerBridge);
    assert!(
        app.port_definitions.is_empty(),
        "non-host networking drops portDefinitions"
    );
    let c = app.container.as_ref().unwrap();
    assert_eq!(c.port_mappings[0].container_port, 80);
    assert_eq!(
        c.port_mappings[0].host_port,
        Some(0),
        "bridge fills hostPort"
    );
    assert_eq!(c.port_mappings[0].protocol, "tcp");
    assert!(!app.to_json()["container"]["docker"]
        .as_object()
        .unwrap()
        .contains_key("network"));

    let app = parse(
        json!({"id": "a", "requirePorts": true, "container": {"docker": {"image": "i", "network": "USER"},
        "portMappings": [{"containerPort": 80}]}}),
    );
    assert_eq!(app.networks[0].mode, NetworkMode::Container);
    assert_eq!(
        app.container.as_ref().unwrap().port_mappings[0].host_port,
        None
    );
    assert!(!app.require_ports);

    let app = parse(json!({"id": "a", "container": {"docker": {"image": "i", "network": "HOST"}}}));
    assert_eq!(app.networks[0].mode, NetworkMode::Host);
    assert_eq!(app.port_definitions.len(), 1);

    let e = semantic_errors(
        json!({"id": "a", "container": {"docker": {"image": "i", "network": "WEIRD"}}}),
    );
    assert_eq!(e[0].0, "/container/docker/network");

    let app = parse(json!({"id": "a", "cmd": "x", "ipAddress": {"networkName": "overlay"}}));
    assert_eq!(
        app.networks,
        [Network {
            mode: NetworkMode::Container,
            name: Some("overlay".into()),
            labels: Default::default()
        }]
    );
}

#[test]
fn explicit_networks_win() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "networks": [{"mode": "container", "name": "n1"}],
        "container": {"docker": {"image": "i", "network": "BRIDGE"}}}),
    );
    assert_eq!(app.networks[0].mode, NetworkMode::Container);
    let e = semantic_errors(json!({"id": "a", "cmd": "x", "networks": [{"mode": "bogus"}]}));
    assert_eq!(e[0].0, "/networks(0)/mode");
}

#[test]
fn health_checks_get_port_index_when_the_app_has_ports() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "healthChecks": [{}, {"port": 1}, {"protocol": "COMMAND", "command": {"value": "true"}}]}),
    );
    assert_eq!(app.health_checks[0].port_index, Some(0));
    assert_eq!(app.health_checks[1].port_index, None);
    assert_eq!(app.health_checks[2].port_index, None);
    assert_eq!(app.health_checks[2].protocol, HealthProtocol::Command);
    let app = parse(json!({"id": "a", "cmd": "x", "portDefinitions": [], "healthChecks": [{}]}));
    assert_eq!(app.health_checks[0].port_index, None);
}

#[test]
fn constraints_are_upper_cased_and_typed() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "constraints": [["hostname", "unique"], ["rack", "like", "r.*"]]}),
    );
    assert_eq!(
        app.constraints,
        [vec!["hostname", "UNIQUE"], vec!["rack", "LIKE", "r.*"]]
    );
    assert_eq!(app.typed_constraints().len(), 2);
    assert_eq!(
        json_errors(json!({"id": "a", "cmd": "x", "constraints": [["hostname", 1]]})),
        [(
            "/constraints(0)(1)".into(),
            vec!["error.expected.jsstring".into()]
        )]
    );
}

#[test]
fn persistent_volumes_change_strategy_defaults() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "container": {"type": "MESOS", "volumes": [
        {"containerPath": "data", "mode": "RW", "persistent": {"size": 10}}]}}),
    );
    assert_eq!(app.upgrade_strategy, defaults::UPGRADE_STRATEGY_RESIDENT);
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
    let app = parse(json!({"id": "a", "cmd": "x", "unreachableStrategy": "disabled"}));
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
    let e = semantic_errors(json!({"id": "a", "cmd": "x", "unreachableStrategy": "sometimes"}));
    assert_eq!(e[0].0, "/unreachableStrategy");
}

#[test]
fn env_accepts_strings_and_secrets() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "env": {"A": "1", "B": {"secret": "s"}}, "secrets": {"s": {"source": "x"}}}),
    );
    assert_eq!(app.env["A"], EnvValue::Value("1".into()));
    assert_eq!(app.env["B"], EnvValue::Secret("s".into()));
    assert_eq!(
        json_errors(json!({"id": "a", "cmd": "x", "env": {"A": 1}}))[0].0,
        "/env/A"
    );
}

#[test]
fn dependencies_resolve_against_the_group() {
    let app = parse(
        json!({"id": "/prod/web", "cmd": "x", "dependencies": ["db", "/infra/cache", "../x"]}),
    );
    let deps: Vec<String> = app.dependencies.iter().map(ToString::to_string).collect();
    assert_eq!(deps, ["/prod/db", "/infra/cache", "/x"]);
}

#[test]
fn enums_outside_their_sets_are_422() {
    let cases = [
        (json!({"killSelection": "RANDOM"}), "/killSelection"),
        (json!({"container": {"type": "RKT"}}), "/container/type"),
        (
            json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "a", "mode": "RWX"}]}}),
            "/container/volumes(0)/mode",
        ),
        (
            json!({"healthChecks": [{"protocol": "SMTP"}]}),
            "/healthChecks(0)/protocol",
        ),
    ];
    for (extra, path) in cases {
        let mut v = json!({"id": "a", "cmd": "x"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        assert_eq!(semantic_errors(v)[0].0, path);
    }
    assert_eq!(
        parse(json!({"id": "a", "cmd": "x", "killSelection": "OLDEST_FIRST"})).kill_selection,
        KillSelection::OldestFirst
    );
}

#[test]
fn wrong_types_are_400_with_play_keys() {
    assert_eq!(
        json_errors(json!({"id": "a", "cpus": "x"})),
        [("/cpus".into(), vec!["error.expected.jsnumber".into()])]
    );
    let errs = json_errors(
        json!({"id": "a", "cmd": 1, "args": "x", "env": [], "requirePorts": "yes",
        "instances": 1.5, "container": {"docker": {}}, "healthChecks": [{"portIndex": "0"}]}),
    );
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|(p, e)| (p.as_str(), e[0].as_str()))
        .collect();
    for want in [
        ("/cmd", "error.expected.jsstring"),
        ("/args", "error.expected.jsarray"),
        ("/env", "error.expected.jsobject"),
        ("/requirePorts", "error.expected.jsboolean"),
        ("/instances", "error.expected.int"),
        ("/container/docker/image", "error.path.missing"),
        ("/healthChecks(0)/portIndex", "error.expected.jsnumber"),
    ] {
        assert!(got.contains(&want), "{want:?} not in {got:?}");
    }
    assert_eq!(
        json_errors(json!([1])),
        [("/".into(), vec!["error.expected.jsobject".into()])]
    );
}

#[test]
fn unknown_and_read_only_keys_are_ignored() {
    let app = parse(
        json!({"id": "a", "cmd": "x", "whatever": {"deep": [1]}, "tasks": [1], "tasksRunning": "x",
        "deployments": 5, "versionInfo": null, "lastTaskFailure": {}, "version": null, "ports": null}),
    );
    assert_eq!(app.port_definitions.len(), 1);
    let app2 = parse(json!({"id": "a", "cmd": "x", "version": "2024-05-01T12:00:00.123Z"}));
    assert_eq!(app2.version, None);
}

#[test]
fn from_slice_reports_syntax_errors() {
    let ctx = ParseContext::post();
    assert!(matches!(
        AppDefinition::from_slice(b"{\"id\":", &ctx),
        Err(AppError::Malformed(_))
    ));
    assert!(matches!(
        AppDefinition::from_slice(b"\xff\xfe", &ctx),
        Err(AppError::Malformed(_))
    ));
    assert!(AppDefinition::from_slice(br#"{"id":"a","cmd":"x"}"#, &ctx).is_ok());
}

/// Never panic: a corpus of malformed documents must produce clean errors (or, where
/// the document happens to be acceptable, a value).
#[test]
fn malformed_documents_fail_cleanly() {
    let big = "9".repeat(400);
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let raw: Vec<String> = vec![
        "".into(),
        "null".into(),
        "1".into(),
        "\"str\"".into(),
        "[]".into(),
        "{".into(),
        "}".into(),
        "{\"id\":}".into(),
        format!("{{\"id\":\"a\",\"cmd\":\"x\",\"cpus\":{big}}}"),
        format!("{{\"id\":\"a\",\"cmd\":\"x\",\"instances\":{big}}}"),
        format!("{{\"id\":\"a\",\"cmd\":\"x\",\"labels\":{deep}}}"),
        "{\"id\":\"a\",\"cmd\":\"x\",\"cpus\":1e308}".into(),
        "{\"id\":\"a\",\"cmd\":\"x\",\"mem\":-1e308}".into(),
        "{\"id\":\"a\",\"cmd\":\"x\",\"instances\":-9223372036854775808}".into(),
        "{\"id\":\"a\",\"cmd\":\"x\",\"instances\":18446744073709551615}".into(),
        "{\"id\":\"\\u0000\",\"cmd\":\"x\"}".into(),
        "{\"id\":\"a\",\"cmd\":\"\\ud800\"}".into(),
    ];
    let values = vec![
        json!(null),
        json!({}),
        json!({"id": null}),
        json!({"id": 5}),
        json!({"id": []}),
        json!({"id": {}}),
        json!({"id": "a", "cmd": null, "args": null, "container": null}),
        json!({"id": "a", "cmd": "x", "portDefinitions": [null, 1, "x", [], {"port": "80"}]}),
        json!({"id": "a", "cmd": "x", "portDefinitions": {"port": 1}}),
        json!({"id": "a", "cmd": "x", "ports": [null, "1", 1.5, -1, 70000]}),
        json!({"id": "a", "cmd": "x", "healthChecks": [null, 1, [], {"command": "ls"}, {"command": {}}]}),
        json!({"id": "a", "cmd": "x", "healthChecks": {"a": 1}}),
        json!({"id": "a", "cmd": "x", "constraints": [null, 1, "x", [[]], [null], []]}),
        json!({"id": "a", "cmd": "x", "constraints": "hostname:UNIQUE"}),
        json!({"id": "a", "cmd": "x", "container": []}),
        json!({"id": "a", "cmd": "x", "container": {"docker": "nginx", "volumes": {}, "portMappings": 1}}),
        json!({"id": "a", "cmd": "x", "container": {"docker": {"image": 1, "parameters": [{"key": 1}, null]}}}),
        json!({"id": "a", "cmd": "x", "container": {"volumes": [null, {}, {"containerPath": []}]}}),
        json!({"id": "a", "cmd": "x", "upgradeStrategy": 1}),
        json!({"id": "a", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": "1"}}),
        json!({"id": "a", "cmd": "x", "unreachableStrategy": 5}),
        json!({"id": "a", "cmd": "x", "unreachableStrategy": {"inactiveAfterSeconds": true}}),
        json!({"id": "a", "cmd": "x", "networks": [null, "host", {"mode": 1}]}),
        json!({"id": "a", "cmd": "x", "networks": {}}),
        json!({"id": "a", "cmd": "x", "fetch": [null, {"uri": 1}, {}]}),
        json!({"id": "a", "cmd": "x", "uris": [1, null]}),
        json!({"id": "a", "cmd": "x", "env": {"A": {"secret": 1}}, "labels": {"a": {"b": "c"}}}),
        json!({"id": "a", "cmd": "x", "dependencies": [1, "UPPER", "../../.."]}),
        json!({"id": "a", "cmd": "x", "secrets": [], "residency": "x", "tty": "yes", "readinessChecks": {}}),
        json!({"id": "a", "cmd": "x", "ipAddress": [], "killSelection": 1, "role": {}}),
        json!({"id": "a", "cmd": "x", "backoffFactor": [], "backoffSeconds": 1.5, "maxLaunchDelaySeconds": 1e12}),
        json!({"id": "a", "cmd": "x", "gpus": true, "disk": "0", "executor": 0, "user": false}),
        json!({"id": "a", "cmd": "x", "acceptedResourceRoles": [1], "taskKillGracePeriodSeconds": "3"}),
        json!({"id": "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z", "cmd": "x"}),
        json!({"id": "a".repeat(10_000), "cmd": "x"}),
        json!({"id": "a", "cmd": "x", "constraints": [["a", "LIKE", "(".repeat(5000)]]}),
        json!({"id": "a", "cmd": "x", "constraints": [["a", "LIKE", "a{1000}{1000}"]]}),
    ];
    let mut docs: Vec<Result<Value, String>> = raw
        .iter()
        .map(|s| serde_json::from_str(s).map_err(|e| e.to_string()))
        .collect();
    docs.extend(values.into_iter().map(Ok));
    assert!(docs.len() >= 50, "{} documents", docs.len());
    for doc in docs {
        let Ok(v) = doc else { continue };
        let r = super::validate::parse_and_validate(&v, &ParseContext::post());
        match r {
            Ok(app) => {
                // Anything accepted must survive a round trip.
                let back = AppDefinition::from_json(&app.to_json(), &ParseContext::post()).unwrap();
                assert_eq!(back, app, "{v}");
            }
            Err(e) => {
                assert!(e.status() == 400 || e.status() == 422);
                assert!(e.body().is_object());
            }
        }
    }
    for s in &raw {
        let r = AppDefinition::from_slice(s.as_bytes(), &ParseContext::post());
        if let Err(e) = r {
            assert!(e.status() == 400 || e.status() == 422, "{s}");
        }
    }
}
