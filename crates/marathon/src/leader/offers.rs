//! Offer matching (marathon-api.md §7 "Backoff / launch queue", §2 `constraints`,
//! `acceptedResourceRoles`, `requirePorts`; mesos-http-api.md §8.3 ACCEPT/DECLINE).
//!
//! The launch queue is the set of instances the planner allowed to launch (`Command::Launch`
//! arrives only once an app's backoff delay has passed). Each offer takes at most
//! `--max_instances_per_offer` of them: an instance fits when the offer's role is acceptable, the
//! app's constraints hold against the agents of the app's other instances, and cpus, mem, disk,
//! gpus and host ports remain. The fitting instances' records (staging, agent, host ports) are
//! committed BEFORE the ACCEPT is sent, so a new leader never doubles them; an offer nothing fits
//! is declined, and the reasons go to the planner (`OfferProcessed`) for `/v2/queue`.

use super::ports::PortPool;
use super::state::{now_ms, TaskRecord};
use super::task_build::{build_task, Placement};
use super::{Leader, UnknownTasks};
use crate::error::MarathonError;
use marathon_model::{AgentInfo, AppDefinition, AttrValue, PathId};
use proto::scheduler::{Filters, Launch, Offer, Operation};
use proto::{ResourceBag, ValueType};
use std::collections::BTreeMap;
use std::time::Duration;

/// Refuse time for an offer declined while instances wait but did not fit it: short, so a change
/// elsewhere (a task ending, another agent) is noticed soon.
pub const DECLINE_WHILE_WAITING: Duration = Duration::from_secs(5);
/// Refuse time for what an ACCEPT leaves unused while more instances wait.
pub const ACCEPT_REFUSE_WHILE_WAITING: Duration = Duration::from_secs(1);

/// What is left of one offer while instances are placed on it.
#[derive(Debug, Clone)]
pub struct OfferView {
    pub agent: AgentInfo,
    pub agent_id: String,
    pub role: String,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: f64,
    pub ports: PortPool,
}

/// The role an offer's resources are allocated to (`allocation_info`, else the legacy `role`).
pub fn offer_role(offer: &Offer) -> String {
    offer
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.clone())
        .or_else(|| {
            offer.resources.iter().find_map(|r| {
                r.allocation_info
                    .as_ref()
                    .and_then(|a| a.role.clone())
                    .or(r.role.clone())
            })
        })
        .unwrap_or_else(|| "*".to_string())
}

/// The constraint view of an offer's agent: hostname and attributes.
pub fn agent_info(offer: &Offer) -> AgentInfo {
    let mut attributes = BTreeMap::new();
    for a in &offer.attributes {
        let value = match a.kind {
            ValueType::Text => a.text.as_ref().map(|t| AttrValue::Text(t.value.clone())),
            ValueType::Scalar => a.scalar.as_ref().map(|s| AttrValue::Scalar(s.value)),
            _ => None,
        };
        if let Some(v) = value {
            attributes.insert(a.name.clone(), v);
        }
    }
    AgentInfo {
        hostname: offer.hostname.clone(),
        region: None,
        zone: None,
        attributes,
    }
}

impl OfferView {
    pub fn new(offer: &Offer) -> OfferView {
        let bag = ResourceBag::from_resources(&offer.resources).unwrap_or_else(|e| {
            tracing::warn!(offer = %offer.id, error = %e, "offer resources are malformed; treating the offer as empty");
            ResourceBag::new()
        });
        OfferView {
            agent: agent_info(offer),
            agent_id: offer.agent_id.value.clone(),
            role: offer_role(offer),
            cpus: bag.scalar("cpus"),
            mem: bag.scalar("mem"),
            disk: bag.scalar("disk"),
            gpus: bag.scalar("gpus"),
            ports: PortPool::new(bag.ranges("ports")),
        }
    }

    /// Places one instance of `def` (with `placed` = agents of the app's other instances):
    /// the host ports on success, else Marathon's reject reason (`/v2/queue`
    /// `rejectSummaryLastOffers`). Nothing is taken from the offer unless everything fits.
    pub fn fit(
        &mut self,
        def: &AppDefinition,
        placed: &[AgentInfo],
    ) -> Result<Vec<u64>, &'static str> {
        const EPS: f64 = 1e-6;
        let role_ok = if def.accepted_resource_roles.is_empty() {
            self.role == "*" || self.role == def.role
        } else {
            def.accepted_resource_roles.contains(&self.role)
        };
        if !role_ok {
            return Err("UnfulfilledRole");
        }
        if marathon_model::constraints::check(&def.typed_constraints(), &self.agent, placed)
            .is_err()
        {
            return Err("UnfulfilledConstraint");
        }
        if self.cpus + EPS < def.cpus {
            return Err("InsufficientCpus");
        }
        if self.mem + EPS < def.mem {
            return Err("InsufficientMemory");
        }
        if self.disk + EPS < def.disk {
            return Err("InsufficientDisk");
        }
        if self.gpus + EPS < def.gpus as f64 {
            return Err("InsufficientGpus");
        }
        let n = if def.is_host_networking() {
            def.port_definitions.len()
        } else {
            0
        };
        let required: Option<Vec<u64>> = def.require_ports.then(|| {
            def.port_definitions
                .iter()
                .map(|p| p.port.max(0) as u64)
                .collect()
        });
        let mut pool = self.ports.clone();
        let ports = pool
            .take(n, required.as_deref())
            .ok_or("InsufficientPorts")?;
        self.ports = pool;
        self.cpus -= def.cpus;
        self.mem -= def.mem;
        self.disk -= def.disk;
        self.gpus -= def.gpus as f64;
        Ok(ports)
    }
}

impl Leader {
    pub(crate) async fn on_offer(&mut self, offer: Offer) -> Result<(), MarathonError> {
        let now = now_ms();
        let mut view = OfferView::new(&offer);
        self.state
            .agents
            .insert(view.agent_id.clone(), view.agent.clone());
        let max = self.state.config.max_instances_per_offer as usize;
        let mut tasks = Vec::new();
        let mut cmds = Vec::new();
        let mut outcome: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
        // One pass per (app, config version) group of the queue: its instances are alike, so the
        // first that does not fit ends the group and at most `max` instances are looked at in
        // all, however long the queue (a scan of every queued instance per offer made a mass
        // launch quadratic).
        let groups = self.state.launchable.groups_head(max);
        'groups: for ((app_id, config_version), instance_ids) in groups {
            if tasks.len() >= max {
                break;
            }
            let Some(def) = PathId::parse(&app_id)
                .ok()
                .and_then(|id| self.state.apps.get(&id))
                .map(|a| a.for_config_version(config_version).clone())
            else {
                continue; // the app is being stopped; the planner expunges the instance
            };
            // Agents of the app's instances placed before this offer (constraints only).
            let mut placed: Vec<AgentInfo> = if def.constraints.is_empty() {
                Vec::new()
            } else {
                self.placed_agents(&app_id)
            };
            for instance_id in instance_ids {
                if tasks.len() >= max {
                    break 'groups;
                }
                let host_ports = match view.fit(&def, &placed) {
                    Ok(p) => p,
                    Err(reason) => {
                        outcome
                            .entry(app_id.clone())
                            .or_default()
                            .1
                            .push(reason.to_string());
                        continue 'groups;
                    }
                };
                let task_id = match marathon_model::InstanceId::parse(&instance_id) {
                    Ok(instance) => marathon_model::TaskId {
                        instance,
                        incarnation: Some(1),
                    }
                    .to_string(),
                    Err(e) => {
                        tracing::error!(%instance_id, error = %e, "instance id does not make a task id");
                        continue;
                    }
                };
                let placement = Placement {
                    task_id: task_id.clone(),
                    agent_id: view.agent_id.clone(),
                    hostname: offer.hostname.clone(),
                    host_ports: host_ports.clone(),
                    role: view.role.clone(),
                };
                let ip = offer.url.as_ref().and_then(|u| u.address.ip.clone());
                self.state.tasks.insert(
                    instance_id.clone(),
                    TaskRecord {
                        task_id: task_id.clone(),
                        agent_id: view.agent_id.clone(),
                        host: offer.hostname.clone(),
                        host_ports: host_ports.iter().map(|p| *p as u32).collect(),
                        app_version_ms: def.version.map(|v| v.millis()).unwrap_or(0),
                        state: "TASK_STAGING".into(),
                        staged_at_ms: now,
                        started_at_ms: None,
                        role: view.role.clone(),
                        ip_addresses: ip.into_iter().collect(),
                    },
                );
                self.state.launchable.remove(&instance_id);
                let answer = self.state.planner.handle(
                    now.max(0) as u64,
                    marathon_planner::Event::LaunchAccepted {
                        instance_id: instance_id.clone(),
                        agent: view.agent_id.clone(),
                    },
                );
                // The planner's contract: answered with a Kill, the instance must not be launched.
                let refused = answer.iter().any(|c| matches!(c, marathon_planner::Command::Kill { instance_id: k, .. } if *k == instance_id));
                cmds.extend(answer);
                if refused {
                    self.state.tasks.remove(&instance_id);
                    continue;
                }
                if !def.constraints.is_empty() {
                    placed.push(view.agent.clone());
                }
                outcome.entry(app_id.clone()).or_default().0 = true;
                tasks.push((app_id.clone(), build_task(&def, &placement)));
            }
        }
        for (app_id, (used, reasons)) in outcome {
            let event = marathon_planner::Event::OfferProcessed {
                app_id,
                used,
                reject_reasons: reasons,
            };
            cmds.extend(self.state.planner.handle(now.max(0) as u64, event));
        }
        // Records first (staging, agent, host ports), then the ACCEPT.
        self.execute(cmds, Vec::new(), &UnknownTasks::new()).await?;
        let waiting = !self.state.launchable.is_empty();
        let client = self.client.clone();
        let offer_id = offer.id.clone();
        if tasks.is_empty() {
            let refuse = if waiting {
                DECLINE_WHILE_WAITING.min(self.state.config.decline_offer_duration)
            } else {
                self.state.config.decline_offer_duration
            };
            tokio::spawn(async move {
                if let Err(e) = client
                    .decline(vec![offer_id], Some(refuse.as_secs_f64()))
                    .await
                {
                    tracing::debug!(error = %e, "DECLINE not sent");
                }
            });
        } else {
            // Stopped by --max_instances_per_offer with more instances waiting: the rest of the
            // offer is not refused, and a REVIVE after the ACCEPT makes the master offer it again at
            // once instead of at its next allocation round (a mass launch goes at the speed of
            // round trips, not of one offer per agent per second).
            let limited = waiting && tasks.len() >= max;
            let refuse = if limited {
                Duration::ZERO
            } else if waiting {
                ACCEPT_REFUSE_WHILE_WAITING
            } else {
                self.state.config.decline_offer_duration
            };
            let infos: Vec<proto::TaskInfo> = tasks.into_iter().map(|(_, t)| t).collect();
            tracing::info!(offer = %offer_id, tasks = ?infos.iter().map(|t| t.task_id.value.clone()).collect::<Vec<_>>(), "launching");
            let launch = Operation {
                kind: "LAUNCH".into(),
                id: None,
                launch: Some(Launch { task_infos: infos }),
                launch_group: None,
            };
            let filters = Filters {
                refuse_seconds: Some(refuse.as_secs_f64()),
            };
            tokio::spawn(async move {
                if let Err(e) = client
                    .accept(vec![offer_id], vec![launch], Some(filters))
                    .await
                {
                    // The tasks stay staging; the launch timeout replaces them.
                    tracing::warn!(error = %e, "ACCEPT not sent");
                } else if limited {
                    if let Err(e) = client.revive().await {
                        tracing::debug!(error = %e, "REVIVE not sent");
                    }
                }
            });
        }
        Ok(())
    }

    /// Agents of the app's launched instances, for constraints.
    fn placed_agents(&self, app_id: &str) -> Vec<AgentInfo> {
        self.state
            .planner
            .instances_of(app_id)
            .iter()
            .filter(|i| i.is_active())
            .filter_map(|i| self.state.tasks.get(&i.id))
            .map(|t| {
                self.state
                    .agents
                    .get(&t.agent_id)
                    .cloned()
                    .unwrap_or(AgentInfo {
                        hostname: t.host.clone(),
                        ..AgentInfo::default()
                    })
            })
            .collect()
    }
}
