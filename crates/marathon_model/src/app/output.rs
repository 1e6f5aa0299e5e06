//! [`AppDefinition`] → JSON (marathon-api.md §3 "App output (AppInfo)").
//!
//! [`AppDefinition::to_json`] writes the definition alone (what `GET
//! /v2/apps/{id}/versions/{ts}` and events carry): the "always written" keys, the
//! "written when non-empty/set" keys only when they are, never `ports`, `uris`,
//! `ipAddress`, and never `null`. [`AppDefinition::to_app_info`] adds the status fields
//! the caller computed ([`AppStatus`]); this crate knows no runtime state.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{AppDefinition, EnvValue, UnreachableStrategy, WireEnum};
use crate::json::num;
use crate::task::{LastTaskFailure, Task};
use crate::time::Timestamp;

/// `versionInfo` of an app (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: Timestamp,
    pub last_config_change_at: Timestamp,
}

/// Task counts, as in `tasksStaged` … and inside `taskStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TaskCounts {
    pub staged: u32,
    pub running: u32,
    /// Only tasks with health results count as healthy/unhealthy.
    pub healthy: u32,
    pub unhealthy: u32,
}

/// `lifeTime` inside `taskStats`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifeTime {
    pub average_seconds: f64,
    pub median_seconds: f64,
}

/// One `taskStats` bucket: `{"stats":{"counts":{…},"lifeTime"?:{…}}}`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub counts: TaskCounts,
    pub life_time: Option<LifeTime>,
}

/// `taskStats` **\[compat\]** spelling (1.10 writes `tasksStats`); absent buckets are
/// omitted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TaskStats {
    pub started_after_last_scaling: Option<Stats>,
    pub with_latest_config: Option<Stats>,
    pub with_outdated_config: Option<Stats>,
    pub total_summary: Option<Stats>,
}

/// Status fields the caller adds to an AppInfo (§3 "Status fields"); `None` = omit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppStatus {
    /// Absent in the POST 201 body.
    pub version_info: Option<VersionInfo>,
    /// `tasksStaged`, `tasksRunning`, `tasksHealthy`, `tasksUnhealthy`.
    pub counts: Option<TaskCounts>,
    /// Ids of the deployments touching the app (`[]` when idle).
    pub deployments: Option<Vec<String>>,
    pub tasks: Option<Vec<Task>>,
    pub last_task_failure: Option<LastTaskFailure>,
    pub task_stats: Option<TaskStats>,
    pub readiness_check_results: Option<Vec<Value>>,
}

fn labels_json(labels: &std::collections::BTreeMap<String, String>) -> Value {
    json!(labels)
}

impl Stats {
    fn to_json(self) -> Value {
        let mut stats = Map::new();
        stats.insert("counts".into(), json!(self.counts));
        if let Some(lt) = self.life_time {
            stats.insert(
                "lifeTime".into(),
                json!({"averageSeconds": num(lt.average_seconds), "medianSeconds": num(lt.median_seconds)}),
            );
        }
        json!({ "stats": stats })
    }
}

impl TaskStats {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (key, s) in [
            ("startedAfterLastScaling", self.started_after_last_scaling),
            ("withLatestConfig", self.with_latest_config),
            ("withOutdatedConfig", self.with_outdated_config),
            ("totalSummary", self.total_summary),
        ] {
            if let Some(s) = s {
                m.insert(key.into(), s.to_json());
            }
        }
        Value::Object(m)
    }
}

impl AppDefinition {
    /// The definition as JSON (no status fields). `version` is written when set,
    /// which it always is for a stored app.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        // Always written.
        put("id", json!(self.id.to_string()));
        put("backoffFactor", num(self.backoff_factor));
        put("backoffSeconds", json!(self.backoff_seconds));
        put("cpus", num(self.cpus));
        put("disk", num(self.disk));
        put("executor", json!(self.executor));
        put("gpus", json!(self.gpus));
        put("instances", json!(self.instances));
        put("labels", labels_json(&self.labels));
        put(
            "maxLaunchDelaySeconds",
            json!(self.max_launch_delay_seconds),
        );
        put("mem", num(self.mem));
        put(
            "networks",
            Value::Array(
                self.networks
                    .iter()
                    .map(|n| {
                        let mut o = Map::new();
                        o.insert("mode".into(), json!(n.mode.as_wire()));
                        if let Some(name) = &n.name {
                            o.insert("name".into(), json!(name));
                        }
                        if !n.labels.is_empty() {
                            o.insert("labels".into(), labels_json(&n.labels));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            ),
        );
        if self.is_host_networking() {
            put(
                "portDefinitions",
                Value::Array(
                    self.port_definitions
                        .iter()
                        .map(|p| {
                            let mut o = Map::new();
                            o.insert("port".into(), json!(p.port));
                            o.insert("protocol".into(), json!(p.protocol));
                            if let Some(n) = &p.name {
                                o.insert("name".into(), json!(n));
                            }
                            o.insert("labels".into(), labels_json(&p.labels));
                            Value::Object(o)
                        })
                        .collect(),
                ),
            );
        }
        put("requirePorts", json!(self.require_ports));
        put(
            "upgradeStrategy",
            json!({
                "minimumHealthCapacity": num(self.upgrade_strategy.minimum_health_capacity),
                "maximumOverCapacity": num(self.upgrade_strategy.maximum_over_capacity),
            }),
        );
        put(
            "unreachableStrategy",
            match self.unreachable_strategy {
                UnreachableStrategy::Disabled => json!("disabled"),
                UnreachableStrategy::Enabled {
                    inactive_after_seconds,
                    expunge_after_seconds,
                } => json!({
                    "inactiveAfterSeconds": inactive_after_seconds,
                    "expungeAfterSeconds": expunge_after_seconds,
                }),
            },
        );
        put("killSelection", json!(self.kill_selection.as_wire()));
        put("role", json!(self.role));
        if let Some(v) = self.version {
            put("version", json!(v));
        }

        // Written when non-empty / set.
        if let Some(cmd) = &self.cmd {
            put("cmd", json!(cmd));
        }
        if !self.args.is_empty() {
            put("args", json!(self.args));
        }
        if !self.constraints.is_empty() {
            put("constraints", json!(self.constraints));
        }
        if let Some(c) = &self.container {
            put("container", container_json(c));
        }
        if !self.dependencies.is_empty() {
            put("dependencies", json!(self.dependencies));
        }
        if !self.env.is_empty() {
            let env: Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        EnvValue::Value(s) => json!(s),
                        EnvValue::Secret(s) => json!({ "secret": s }),
                    };
                    (k.clone(), v)
                })
                .collect();
            put("env", Value::Object(env));
        }
        if !self.fetch.is_empty() {
            let fetch = self.fetch.iter().map(|f| {
                let mut o = json!({"uri": f.uri, "extract": f.extract, "executable": f.executable, "cache": f.cache});
                if let Some(d) = &f.dest_path {
                    o["destPath"] = json!(d);
                }
                o
            });
            put("fetch", Value::Array(fetch.collect()));
        }
        if !self.health_checks.is_empty() {
            put(
                "healthChecks",
                Value::Array(self.health_checks.iter().map(|h| h.to_json()).collect()),
            );
        }
        if !self.readiness_checks.is_empty() {
            put(
                "readinessChecks",
                Value::Array(self.readiness_checks.clone()),
            );
        }
        if !self.secrets.is_empty() {
            put("secrets", Value::Object(self.secrets.clone()));
        }
        if !self.accepted_resource_roles.is_empty() {
            put("acceptedResourceRoles", json!(self.accepted_resource_roles));
        }
        if let Some(t) = self.task_kill_grace_period_seconds {
            put("taskKillGracePeriodSeconds", json!(t));
        }
        if let Some(u) = &self.user {
            put("user", json!(u));
        }
        if let Some(r) = &self.residency {
            put("residency", r.clone());
        }
        Value::Object(m)
    }

    /// The AppInfo: the definition plus the caller's status fields.
    pub fn to_app_info(&self, status: &AppStatus) -> Value {
        let mut v = self.to_json();
        let Value::Object(m) = &mut v else { return v };
        if let Some(vi) = status.version_info {
            m.insert("versionInfo".into(), json!(vi));
        }
        if let Some(c) = status.counts {
            m.insert("tasksStaged".into(), json!(c.staged));
            m.insert("tasksRunning".into(), json!(c.running));
            m.insert("tasksHealthy".into(), json!(c.healthy));
            m.insert("tasksUnhealthy".into(), json!(c.unhealthy));
        }
        if let Some(d) = &status.deployments {
            let ds: Vec<Value> = d.iter().map(|id| json!({ "id": id })).collect();
            m.insert("deployments".into(), Value::Array(ds));
        }
        if let Some(t) = &status.tasks {
            m.insert("tasks".into(), json!(t));
        }
        if let Some(f) = &status.last_task_failure {
            m.insert("lastTaskFailure".into(), json!(f));
        }
        if let Some(s) = &status.task_stats {
            m.insert("taskStats".into(), s.to_json());
        }
        if let Some(r) = &status.readiness_check_results {
            m.insert("readinessCheckResults".into(), Value::Array(r.clone()));
        }
        v
    }
}

fn container_json(c: &super::Container) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(c.kind.as_wire()));
    if let Some(d) = &c.docker {
        let params: Vec<Value> = d
            .parameters
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let mut dj = json!({"image": d.image, "forcePullImage": d.force_pull_image, "privileged": d.privileged});
        if !params.is_empty() {
            dj["parameters"] = Value::Array(params);
        }
        o.insert("docker".into(), dj);
    }
    if !c.port_mappings.is_empty() {
        let pms = c.port_mappings.iter().map(|p| {
            let mut pm = Map::new();
            pm.insert("containerPort".into(), json!(p.container_port));
            if let Some(h) = p.host_port {
                pm.insert("hostPort".into(), json!(h));
            }
            pm.insert("servicePort".into(), json!(p.service_port));
            pm.insert("protocol".into(), json!(p.protocol));
            if let Some(n) = &p.name {
                pm.insert("name".into(), json!(n));
            }
            pm.insert("labels".into(), labels_json(&p.labels));
            Value::Object(pm)
        });
        o.insert("portMappings".into(), Value::Array(pms.collect()));
    }
    let vols = c.volumes.iter().map(|v| {
        let mut vo = Map::new();
        vo.insert("containerPath".into(), json!(v.container_path));
        if let Some(h) = &v.host_path {
            vo.insert("hostPath".into(), json!(h));
        }
        vo.insert("mode".into(), json!(v.mode.as_wire()));
        if let Some(p) = &v.persistent {
            vo.insert("persistent".into(), p.clone());
        }
        if let Some(e) = &v.external {
            vo.insert("external".into(), e.clone());
        }
        Value::Object(vo)
    });
    o.insert("volumes".into(), Value::Array(vols.collect()));
    Value::Object(o)
}
