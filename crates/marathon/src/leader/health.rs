//! Marathon-level health checks (marathon-api.md §2.1, §6): HTTP, HTTPS and TCP checks run by the
//! leader against each running task.
//!
//! One small task per (task, check) probes every `intervalSeconds` with `timeoutSeconds`, on the
//! host port at `portIndex` (or the fixed `port`), and sends the outcome to the leader loop. The
//! loop folds outcomes into `healthCheckResults` ([`record`], pure): failures are ignored during
//! `gracePeriodSeconds` until the first success; `maxConsecutiveFailures` failures in a row (0 =
//! never) ask the planner to kill the instance (`HealthChanged { kill: true }`), which replaces it.
//! HTTP and HTTPS are healthy on 200-399 (1xx too with `ignoreHttp1xx`); TCP on a completed
//! connect. HTTPS does not verify the task's certificate (Marathon's checks trust any: they ask
//! whether the task answers, not who it is).

use super::state::now_ms;
use super::{events, Leader, UnknownTasks};
use crate::error::MarathonError;
use marathon_model::{HealthCheck, HealthCheckResult, HealthProtocol, PathId, Timestamp};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc;

/// One probe's outcome.
#[derive(Debug, Clone)]
pub struct Probe {
    pub instance_id: String,
    pub task_id: String,
    pub index: usize,
    /// `Err(cause)` on failure.
    pub outcome: Result<(), String>,
}

/// Where and how to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub protocol: HealthProtocol,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub ignore_http1xx: bool,
}

/// Folds one outcome into the previous result. Returns the new result and whether the failure
/// counted (false inside the grace period before the first success).
pub fn record(
    prev: Option<&HealthCheckResult>,
    outcome: &Result<(), String>,
    instance_id: &str,
    now_ms: i64,
    started_at_ms: i64,
    check: &HealthCheck,
) -> (HealthCheckResult, bool) {
    let mut r = prev.cloned().unwrap_or(HealthCheckResult {
        alive: false,
        consecutive_failures: 0,
        first_success: None,
        last_success: None,
        last_failure: None,
        last_failure_cause: None,
        instance_id: instance_id.to_string(),
    });
    match outcome {
        Ok(()) => {
            r.alive = true;
            r.consecutive_failures = 0;
            r.first_success.get_or_insert(Timestamp(now_ms));
            r.last_success = Some(Timestamp(now_ms));
            (r, false)
        }
        Err(cause) => {
            let in_grace = r.first_success.is_none()
                && now_ms < started_at_ms.saturating_add(check.grace_period_seconds.max(0) * 1000);
            if in_grace {
                return (r, false);
            }
            r.alive = false;
            r.consecutive_failures = r.consecutive_failures.saturating_add(1);
            r.last_failure = Some(Timestamp(now_ms));
            r.last_failure_cause = Some(cause.clone());
            (r, true)
        }
    }
}

/// Whether `r` asks for a kill (`maxConsecutiveFailures` reached; 0 = never).
pub fn should_kill(r: &HealthCheckResult, check: &HealthCheck) -> bool {
    check.max_consecutive_failures > 0
        && i64::from(r.consecutive_failures) >= check.max_consecutive_failures
}

/// One probe.
pub async fn probe(http: &reqwest::Client, target: &Target) -> Result<(), String> {
    let address = format!("{}:{}", target.host, target.port);
    match target.protocol {
        HealthProtocol::Tcp => {
            match tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(&address))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connect to {address}: {e}")),
                Err(_) => Err(format!("connect to {address} timed out")),
            }
        }
        _ => {
            let scheme = if target.protocol == HealthProtocol::Https {
                "https"
            } else {
                "http"
            };
            let url = format!("{scheme}://{address}{}", target.path);
            match http.get(&url).timeout(target.timeout).send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    if (200..400).contains(&code)
                        || (target.ignore_http1xx && (100..200).contains(&code))
                    {
                        Ok(())
                    } else {
                        Err(format!("{url} answered {code}"))
                    }
                }
                Err(e) => Err(format!("{url}: {e}")),
            }
        }
    }
}

/// The running probers, by (task id, check index).
pub struct Checkers {
    tx: mpsc::Sender<Probe>,
    http: reqwest::Client,
    running: BTreeMap<(String, usize), tokio::task::AbortHandle>,
}

impl Checkers {
    pub fn new(tx: mpsc::Sender<Probe>) -> Checkers {
        let http = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap_or_default();
        Checkers {
            tx,
            http,
            running: BTreeMap::new(),
        }
    }

    fn start(&mut self, instance_id: &str, task_id: &str, index: usize, target: Target) {
        let key = (task_id.to_string(), index);
        if self.running.contains_key(&key) {
            return;
        }
        let (tx, http) = (self.tx.clone(), self.http.clone());
        let (instance_id, task_id) = (instance_id.to_string(), task_id.to_string());
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(target.interval.max(Duration::from_millis(100)));
            loop {
                ticks.tick().await;
                let outcome = probe(&http, &target).await;
                let p = Probe {
                    instance_id: instance_id.clone(),
                    task_id: task_id.clone(),
                    index,
                    outcome,
                };
                if tx.send(p).await.is_err() {
                    return;
                }
            }
        });
        self.running.insert(key, handle.abort_handle());
    }

    fn retain(&mut self, keep: &BTreeSet<(String, usize)>) {
        self.running.retain(|key, handle| {
            let keep = keep.contains(key);
            if !keep {
                handle.abort();
            }
            keep
        });
    }

    pub fn stop_all(&mut self) {
        self.retain(&BTreeSet::new());
    }
}

impl Leader {
    /// Starts probers for running tasks of apps with Marathon-level checks; stops the others.
    /// Runs after every step: it looks only at the instances of apps that have Marathon-level
    /// checks, so apps without them cost nothing however many instances they have.
    pub(crate) fn sync_health(&mut self) {
        let mut keep = BTreeSet::new();
        let mut starts = Vec::new();
        let checked = self.state.apps.values().filter(|a| {
            a.def
                .health_checks
                .iter()
                .any(|h| h.protocol.is_marathon_level())
        });
        for app in checked {
            let app_id = app.def.id.to_string();
            for instance in self.state.planner.instances_of(&app_id) {
                let instance_id = &instance.id;
                let Some(rec) = self.state.tasks.get(instance_id) else {
                    continue;
                };
                if rec.state != "TASK_RUNNING" {
                    continue;
                }
                for (index, hc) in app
                    .def
                    .health_checks
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.protocol.is_marathon_level())
                {
                    let port = hc.port.or_else(|| {
                        hc.port_index
                            .and_then(|i| rec.host_ports.get(i.max(0) as usize).map(|p| *p as i64))
                    });
                    let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
                        continue;
                    };
                    let host = rec
                        .ip_addresses
                        .first()
                        .cloned()
                        .unwrap_or_else(|| rec.host.clone());
                    let target = Target {
                        protocol: hc.protocol,
                        host,
                        port,
                        path: hc.path.clone().unwrap_or_else(|| "/".into()),
                        interval: Duration::from_secs(hc.interval_seconds.max(1) as u64),
                        timeout: Duration::from_secs(hc.timeout_seconds.max(1) as u64),
                        ignore_http1xx: hc.ignore_http1xx,
                    };
                    keep.insert((rec.task_id.clone(), index));
                    starts.push((instance_id.clone(), rec.task_id.clone(), index, target));
                }
            }
        }
        self.health.retain(&keep);
        for (instance_id, task_id, index, target) in starts {
            self.health.start(&instance_id, &task_id, index, target);
        }
    }

    pub(crate) async fn on_probe(&mut self, probe: Probe) -> Result<(), MarathonError> {
        let now = now_ms();
        let Some(rec) = self
            .state
            .tasks
            .get(&probe.instance_id)
            .filter(|r| r.task_id == probe.task_id)
            .cloned()
        else {
            return Ok(());
        };
        let Some(app_id) = self
            .state
            .planner
            .instance(&probe.instance_id)
            .map(|i| i.app_id.clone())
        else {
            return Ok(());
        };
        let Some(app) = PathId::parse(&app_id)
            .ok()
            .and_then(|id| self.state.apps.get(&id))
        else {
            return Ok(());
        };
        let Some(check) = app.def.health_checks.get(probe.index).cloned() else {
            return Ok(());
        };
        let checks = app.def.health_checks.len();
        let version = app.def.version.unwrap_or_default();
        let results = self
            .state
            .health
            .entry(probe.instance_id.clone())
            .or_insert_with(|| vec![None; checks]);
        results.resize(checks, None);
        let prev = results[probe.index].clone();
        let started = rec.started_at_ms.unwrap_or(rec.staged_at_ms);
        let (result, counted) = record(
            prev.as_ref(),
            &probe.outcome,
            &probe.instance_id,
            now,
            started,
            &check,
        );
        let flipped =
            prev.as_ref().map(|p| p.alive) != Some(result.alive) && (counted || result.alive);
        let kill = counted && should_kill(&result, &check);
        results[probe.index] = Some(result.clone());
        // Marathon-level checks of this app only: agent-run ones report through Mesos' `healthy`.
        let marathon_level: Vec<bool> = app
            .def
            .health_checks
            .iter()
            .map(|h| h.protocol.is_marathon_level())
            .collect();
        let all: Vec<Option<bool>> = results
            .iter()
            .zip(&marathon_level)
            .filter(|(_, m)| **m)
            .map(|(r, _)| r.as_ref().map(|r| r.alive))
            .collect();
        let healthy = if all.contains(&Some(false)) {
            Some(false)
        } else if all.iter().all(|a| *a == Some(true)) {
            Some(true)
        } else {
            None
        };
        if counted {
            let fields = json!({"appId": app_id, "taskId": probe.instance_id, "healthCheck": check.to_json()});
            self.emit(events::simple("failed_health_check_event", fields));
        }
        if flipped {
            let fields = json!({"appId": app_id, "instanceId": probe.instance_id, "version": version, "alive": result.alive});
            self.emit(events::simple("health_status_changed_event", fields));
        }
        let before = self
            .state
            .planner
            .instance(&probe.instance_id)
            .and_then(|i| i.healthy);
        if before != healthy || kill {
            if kill {
                let fields = json!({"appId": app_id, "taskId": rec.task_id, "instanceId": probe.instance_id, "version": version,
                    "reason": result.last_failure_cause, "host": rec.host, "slaveId": rec.agent_id});
                self.emit(events::simple("unhealthy_instance_kill_event", fields));
            }
            if before != healthy {
                let fields = json!({"instanceId": probe.instance_id, "runSpecId": app_id, "runSpecVersion": version, "healthy": healthy});
                self.emit(events::simple("instance_health_changed_event", fields));
            }
            let event = marathon_planner::Event::HealthChanged {
                instance_id: probe.instance_id.clone(),
                healthy,
                kill,
            };
            let cmds = self.state.planner.handle(now.max(0) as u64, event);
            self.execute(cmds, Vec::new(), &UnknownTasks::new()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grace: i64, max: i64) -> HealthCheck {
        HealthCheck {
            grace_period_seconds: grace,
            max_consecutive_failures: max,
            ..HealthCheck::default()
        }
    }

    #[test]
    fn failures_in_grace_are_ignored_until_first_success() {
        let c = check(10, 2);
        let fail = Err("boom".to_string());
        let (r, counted) = record(None, &fail, "i", 5_000, 0, &c);
        assert!(!counted && r.consecutive_failures == 0);
        let (r, _) = record(Some(&r), &Ok(()), "i", 6_000, 0, &c);
        assert!(r.alive && r.first_success == Some(Timestamp(6_000)));
        // After a success, grace no longer applies.
        let (r, counted) = record(Some(&r), &fail, "i", 7_000, 0, &c);
        assert!(counted && !r.alive && r.consecutive_failures == 1);
        assert!(!should_kill(&r, &c));
        let (r, _) = record(Some(&r), &fail, "i", 8_000, 0, &c);
        assert!(should_kill(&r, &c));
        assert!(!should_kill(&r, &check(10, 0)), "0 = never kill");
    }

    #[test]
    fn failures_after_grace_count() {
        let (r, counted) = record(None, &Err("x".into()), "i", 11_000, 0, &check(10, 3));
        assert!(
            counted && r.consecutive_failures == 1 && r.last_failure_cause.as_deref() == Some("x")
        );
    }

    #[tokio::test]
    async fn probes_http_and_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]);
                let code = if text.starts_with("GET /ok") {
                    "200 OK"
                } else {
                    "500 Oops"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut t = Target {
            protocol: HealthProtocol::Http,
            host: "127.0.0.1".into(),
            port,
            path: "/ok".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            ignore_http1xx: false,
        };
        assert_eq!(probe(&http, &t).await, Ok(()));
        t.path = "/bad".into();
        assert!(probe(&http, &t).await.unwrap_err().contains("500"));
        t.protocol = HealthProtocol::Tcp;
        assert_eq!(probe(&http, &t).await, Ok(()));
    }
}
