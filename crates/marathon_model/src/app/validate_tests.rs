//! One test per 422 rule of marathon-api.md §2.

use serde_json::{json, Value};

use super::defaults::ParseContext;
use super::validate::{parse_and_validate, validate};
use super::*;
use crate::error::AppError;

/// `{"id":"a","cmd":"x"}` with `extra` laid over it; returns (path, first error) pairs.
fn violations(extra: Value) -> Vec<(String, String)> {
    let mut v = json!({"id": "a", "cmd": "x"});
    for (k, x) in extra.as_object().unwrap() {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    match parse_and_validate(&v, &ParseContext::post()) {
        Ok(_) => vec![],
        Err(AppError::Invalid(d)) => d
            .into_iter()
            .flat_map(|v| v.errors.into_iter().map(move |e| (v.path.clone(), e)))
            .collect(),
        Err(e) => panic!("expected 422, got {e:?}"),
    }
}

fn paths(extra: Value) -> Vec<String> {
    violations(extra).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn a_plain_app_is_valid() {
    assert!(violations(json!({})).is_empty());
    assert!(violations(json!({"cmd": null, "args": ["a"]})).is_empty());
    assert!(violations(json!({"cmd": null, "container": {"docker": {"image": "i"}}})).is_empty());
    assert!(
        violations(json!({"container": {"docker": {"image": "i"}}})).is_empty(),
        "cmd + container is fine"
    );
}

#[test]
fn cmd_args_container_rules() {
    let e = violations(json!({"args": ["a"]}));
    assert_eq!(
        e,
        [(
            "/".to_string(),
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
                .to_string()
        )]
    );
    assert_eq!(paths(json!({"cmd": null})), ["/"]);
    assert_eq!(paths(json!({"cmd": ""})), ["/cmd"]);
}

#[test]
fn resource_minimums() {
    assert_eq!(
        violations(json!({"cpus": 0})),
        [("/cpus".into(), "got 0.0, expected 0.001 or more".into())]
    );
    assert!(violations(json!({"cpus": 0.001})).is_empty());
    assert_eq!(
        violations(json!({"mem": -1})),
        [("/mem".into(), "got -1.0, expected 0.0 or more".into())]
    );
    assert_eq!(paths(json!({"disk": -0.5})), ["/disk"]);
    assert_eq!(
        violations(json!({"gpus": -1})),
        [("/gpus".into(), "got -1, expected 0 or more".into())]
    );
    assert_eq!(paths(json!({"instances": -1})), ["/instances"]);
    assert!(violations(json!({"instances": 0, "mem": 0, "disk": 0, "gpus": 0})).is_empty());
    assert_eq!(
        paths(json!({"backoffSeconds": -1, "maxLaunchDelaySeconds": -1})),
        ["/backoffSeconds", "/maxLaunchDelaySeconds"]
    );
    assert_eq!(
        violations(json!({"backoffFactor": 0.5})),
        [(
            "/backoffFactor".into(),
            "got 0.5, expected 1.0 or more".into()
        )]
    );
    assert!(violations(json!({"backoffFactor": 1.0})).is_empty());
}

#[test]
fn port_definition_rules() {
    assert_eq!(
        paths(json!({"portDefinitions": [{"port": 1, "name": "a"}, {"port": 2, "name": "a"}]})),
        ["/portDefinitions"]
    );
    assert_eq!(
        paths(json!({"portDefinitions": [{"port": 1, "protocol": "sctp"}]})),
        ["/portDefinitions(0)/protocol"]
    );
    assert!(
        violations(json!({"portDefinitions": [{"port": 1, "protocol": "udp,tcp"}]})).is_empty()
    );
    assert_eq!(
        paths(json!({"portDefinitions": [{"port": 70000}]})),
        ["/portDefinitions(0)/port"]
    );
    assert_eq!(paths(json!({"ports": [80, 80]})), ["/portDefinitions"]);
    assert!(violations(json!({"ports": [0, 0]})).is_empty());
}

#[test]
fn strategy_rules() {
    assert_eq!(
        violations(
            json!({"upgradeStrategy": {"minimumHealthCapacity": 1.5, "maximumOverCapacity": -0.1}})
        ),
        [
            (
                "/upgradeStrategy/minimumHealthCapacity".into(),
                "is greater than 1".into()
            ),
            (
                "/upgradeStrategy/maximumOverCapacity".into(),
                "is less than 0".into()
            ),
        ]
    );
    assert_eq!(
        paths(
            json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}})
        ),
        ["/unreachableStrategy"]
    );
    assert!(violations(
        json!({"unreachableStrategy": {"inactiveAfterSeconds": 5, "expungeAfterSeconds": 5}})
    )
    .is_empty());
}

#[test]
fn constraint_rules() {
    let ok = json!([
        ["hostname", "UNIQUE"],
        ["rack", "CLUSTER"],
        ["rack", "GROUP_BY", "2"],
        ["rack", "LIKE", "a.*"],
        ["rack", "UNLIKE", "b"],
        ["rack", "MAX_PER", "2"],
        ["rack", "IS", "x-1"],
        ["@zone", "GROUP_BY"]
    ]);
    assert!(violations(json!({"constraints": ok})).is_empty());
    for bad in [
        json!(["hostname"]),
        json!(["a", "b", "c", "d"]),
        json!(["hostname", "NOPE"]),
        json!(["hostname", "UNIQUE", "x"]),
        json!(["rack", "LIKE"]),
        json!(["rack", "LIKE", "("]),
        json!(["rack", "MAX_PER"]),
        json!(["rack", "MAX_PER", "two"]),
        json!(["rack", "GROUP_BY", "x"]),
        json!(["rack", "IS", "a b"]),
    ] {
        assert_eq!(
            paths(json!({"constraints": [bad.clone()]})),
            ["/constraints(0)"],
            "{bad}"
        );
    }
}

#[test]
fn health_check_rules() {
    assert_eq!(
        paths(json!({"healthChecks": [{"portIndex": 1}]})),
        ["/healthChecks(0)/portIndex"]
    );
    assert!(violations(json!({"healthChecks": [{"portIndex": 0}]})).is_empty());
    assert_eq!(
        paths(json!({"portDefinitions": [], "healthChecks": [{}]})),
        ["/healthChecks(0)"]
    );
    assert!(
        violations(json!({"portDefinitions": [], "healthChecks": [{"port": 8080}]})).is_empty()
    );
    assert_eq!(
        paths(json!({"healthChecks": [{"protocol": "COMMAND"}]})),
        ["/healthChecks(0)/command"]
    );
    assert!(violations(
        json!({"healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]})
    )
    .is_empty());
    assert_eq!(
        paths(json!({"healthChecks": [{"port": 1, "portIndex": 0}]})),
        ["/healthChecks(0)"]
    );
    assert_eq!(
        paths(json!({"healthChecks": [{"timeoutSeconds": 60, "intervalSeconds": 60}]})),
        ["/healthChecks(0)"]
    );
    assert_eq!(
        paths(json!({"healthChecks": [{"gracePeriodSeconds": -1}]})),
        ["/healthChecks(0)/gracePeriodSeconds"]
    );
    // Container networking: portIndex addresses port mappings.
    let c = json!({"docker": {"image": "i"}, "portMappings": [{"containerPort": 80}]});
    assert!(violations(
        json!({"container": c, "networks": [{"mode": "container/bridge"}], "healthChecks": [{}]})
    )
    .is_empty());
}

#[test]
fn container_rules() {
    assert_eq!(
        paths(json!({"container": {"type": "DOCKER"}})),
        ["/container/docker"]
    );
    assert_eq!(
        paths(json!({"container": {"docker": {"image": ""}}})),
        ["/container/docker/image"]
    );
    assert!(violations(json!({"container": {"type": "MESOS"}})).is_empty());
    assert_eq!(
        paths(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": ""}]}})),
        ["/container/volumes(0)/containerPath"]
    );
    assert_eq!(
        paths(
            json!({"container": {"docker": {"image": "i"}, "portMappings": [{"containerPort": 1, "protocol": "x"}]},
            "networks": [{"mode": "container/bridge"}]})
        ),
        ["/container/portMappings(0)/protocol"]
    );
}

#[test]
fn misc_rules() {
    assert_eq!(
        paths(json!({"networks": [{"mode": "host"}, {"mode": "container", "name": "n"}]})),
        ["/networks"]
    );
    assert_eq!(paths(json!({"networks": []})), ["/networks"]);
    assert_eq!(paths(json!({"env": {"A": {"secret": "nope"}}})), ["/env/A"]);
    assert_eq!(paths(json!({"dependencies": ["/a"]})), ["/dependencies"]);
    assert_eq!(paths(json!({"fetch": [{"uri": ""}]})), ["/fetch(0)/uri"]);
}

#[test]
fn programmatic_definitions_are_checked_too() {
    let mut app = AppDefinition::with_defaults(PathId::parse("/a").unwrap(), "*");
    assert_eq!(validate(&app).unwrap_err()[0].path, "/");
    app.cmd = Some("x".into());
    validate(&app).unwrap();
    app.id = PathId::root();
    assert_eq!(validate(&app).unwrap_err()[0].path, "/id");
}

#[test]
fn all_violations_are_reported_together() {
    let e = paths(json!({"cpus": 0, "mem": -1, "instances": -1, "backoffFactor": 0}));
    assert_eq!(e, ["/cpus", "/mem", "/instances", "/backoffFactor"]);
}
