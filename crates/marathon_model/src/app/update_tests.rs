//! Partial updates, replace, rollback/scale recognition and change classification.

use serde_json::json;

use super::change::{change_kind, Change};
use super::defaults::ParseContext;
use super::patch::{
    classify_update, merge_patch, replace, rollback_version, scale_instances, UpdateKind,
};
use super::*;
use crate::error::AppError;

fn stored() -> AppDefinition {
    let body = json!({"id": "/web", "cmd": "serve", "cpus": 0.5, "mem": 64, "instances": 2, "ports": [10000],
        "labels": {"tier": "web"}, "env": {"A": "1"}});
    let mut app = AppDefinition::from_json(&body, &ParseContext::post()).unwrap();
    app.version = Some(Timestamp(1000));
    app
}

#[test]
fn merge_keeps_unmentioned_fields() {
    let app = merge_patch(
        &stored(),
        &json!({"mem": 256, "id": "/ignored", "version": "2020-01-01T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(app.mem, 256.0);
    assert_eq!(app.cpus, 0.5);
    assert_eq!(app.instances, 2);
    assert_eq!(app.cmd.as_deref(), Some("serve"));
    assert_eq!(app.labels["tier"], "web");
    assert_eq!(app.port_definitions[0].port, 10000);
    assert_eq!(app.id.to_string(), "/web");
    assert_eq!(app.version, None);
}

#[test]
fn merge_replaces_exclusive_partners() {
    let app = merge_patch(&stored(), &json!({"args": ["run"]})).unwrap();
    assert_eq!(app.cmd, None);
    assert_eq!(app.args, ["run"]);
    let app = merge_patch(&stored(), &json!({"ports": [0, 0]})).unwrap();
    assert_eq!(app.port_definitions.len(), 2);
    let app = merge_patch(&stored(), &json!({"uris": ["http://x/y"]})).unwrap();
    assert_eq!(app.fetch.len(), 1);
    let app = merge_patch(
        &stored(),
        &json!({"container": {"docker": {"image": "i", "network": "BRIDGE"}}}),
    )
    .unwrap();
    assert_eq!(app.networks[0].mode, NetworkMode::ContainerBridge);
    assert!(app.port_definitions.is_empty());
}

#[test]
fn merge_null_resets_to_default_and_errors_keep_their_class() {
    let app = merge_patch(&stored(), &json!({"mem": null, "labels": null})).unwrap();
    assert_eq!(app.mem, 128.0);
    assert!(app.labels.is_empty());
    assert!(matches!(
        merge_patch(&stored(), &json!({"cpus": "x"})),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        merge_patch(&stored(), &json!([1])),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        merge_patch(&stored(), &json!({"killSelection": "X"})),
        Err(AppError::Invalid(_))
    ));
}

#[test]
fn replace_takes_defaults_for_omitted_fields() {
    let old = stored();
    let app = replace(old.id.clone(), &json!({"cmd": "other"}), "*").unwrap();
    assert_eq!(app.mem, 128.0);
    assert_eq!(app.instances, 1);
    assert!(app.labels.is_empty());
    assert_eq!(app.id, old.id);
}

#[test]
fn rollback_and_scale_are_recognised() {
    assert_eq!(
        classify_update(&json!({"version": "2024-05-01T12:00:00.123Z"})).unwrap(),
        UpdateKind::Rollback(Timestamp(1_714_564_800_123))
    );
    assert_eq!(
        rollback_version(&json!({"id": "/web", "version": "2024-05-01T12:00:00Z"})),
        Some(Timestamp(1_714_564_800_000))
    );
    assert_eq!(
        classify_update(&json!({"instances": 3})).unwrap(),
        UpdateKind::Scale(3)
    );
    assert_eq!(
        scale_instances(&json!({"instances": 0, "id": "web"})),
        Some(0)
    );
    assert_eq!(
        classify_update(&json!({"instances": 3, "cmd": "x"})).unwrap(),
        UpdateKind::Update
    );
    assert_eq!(
        classify_update(&json!({"version": "2024-05-01T12:00:00Z", "cmd": "x"})).unwrap(),
        UpdateKind::Update
    );
    assert_eq!(classify_update(&json!({})).unwrap(), UpdateKind::Update);
    assert_eq!(
        classify_update(&json!({"version": null})).unwrap(),
        UpdateKind::Update
    );
    assert!(matches!(
        classify_update(&json!({"version": "yesterday"})),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        classify_update(&json!({"version": 5})),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        classify_update(&json!({"instances": "3"})),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        classify_update(&json!({"instances": 1.5})),
        Err(AppError::InvalidJson(_))
    ));
    assert!(matches!(
        classify_update(&json!("x")),
        Err(AppError::InvalidJson(_))
    ));
}

#[test]
fn change_kinds() {
    let old = stored();
    let same = merge_patch(&old, &json!({})).unwrap();
    assert_eq!(change_kind(&old, &same), Change::None, "version is ignored");
    let scaled = merge_patch(&old, &json!({"instances": 5})).unwrap();
    assert_eq!(change_kind(&old, &scaled), Change::ScaleOnly);
    for patch in [
        json!({"cmd": "new"}),
        json!({"cpus": 1}),
        json!({"env": {"A": "2"}}),
        json!({"labels": {}}),
        json!({"constraints": [["hostname", "UNIQUE"]]}),
        json!({"healthChecks": [{}]}),
        json!({"upgradeStrategy": {"minimumHealthCapacity": 0.5}}),
        json!({"killSelection": "OLDEST_FIRST"}),
        json!({"backoffSeconds": 2}),
        json!({"user": "nobody"}),
        json!({"instances": 9, "mem": 1}),
    ] {
        let new = merge_patch(&old, &patch).unwrap();
        assert_eq!(change_kind(&old, &new), Change::Restart, "{patch}");
    }
}
