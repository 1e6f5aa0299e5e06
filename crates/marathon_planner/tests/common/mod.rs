//! Test harness: a fake edge + cluster around a `Planner`. It carries out commands the way the
//! real edge must (store first, then act), keeps a store a new leader can recover from, and
//! offers helpers to move tasks through their states.
#![allow(dead_code)]

use marathon_planner::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct Store {
    pub instances: BTreeMap<InstanceId, Instance>,
    pub deployments: BTreeMap<DeploymentId, DeploymentState>,
}

pub struct Harness {
    pub planner: Planner,
    pub now: u64,
    pub config: PlannerConfig,
    pub store: Store,
    /// `Launch` received, not yet accepted.
    pub to_launch: BTreeSet<InstanceId>,
    /// Launched on the "cluster" (accepted), with their Mesos-side state.
    pub tasks: BTreeMap<InstanceId, TaskState>,
    /// `Kill` received for a live task.
    pub to_kill: BTreeSet<InstanceId>,
    /// Every instance ever accepted for launch (never twice).
    pub ever_launched: BTreeSet<InstanceId>,
    pub log: Vec<Command>,
    pub id_counter: u64,
}

pub fn ids(prefix: &str) -> Box<dyn IdSource + Send> {
    Box::new(SeqIds::new(prefix))
}

pub fn spec(id: &str, version: u64, n: u32) -> RunSpec {
    RunSpec::new(id, version, n)
}

pub fn group(apps: &[RunSpec]) -> RootGroup {
    apps.iter().map(|a| (a.id.clone(), a.clone())).collect()
}

impl Harness {
    pub fn new(config: PlannerConfig) -> Harness {
        Harness {
            planner: Planner::new(config, ids("u")),
            now: 1_000_000,
            config,
            store: Store::default(),
            to_launch: BTreeSet::new(),
            tasks: BTreeMap::new(),
            to_kill: BTreeSet::new(),
            ever_launched: BTreeSet::new(),
            log: Vec::new(),
            id_counter: 0,
        }
    }

    pub fn apply(&mut self, cmds: &[Command]) {
        for c in cmds {
            match c {
                Command::StoreInstance(i) => {
                    self.store.instances.insert(i.id.clone(), i.clone());
                }
                Command::Expunge { instance_id, .. } => {
                    self.store.instances.remove(instance_id);
                    self.to_launch.remove(instance_id);
                }
                Command::StoreDeployment(d) => {
                    self.store
                        .deployments
                        .insert(d.plan.id.clone(), (**d).clone());
                }
                Command::RemoveDeployment { id } => {
                    self.store.deployments.remove(id);
                }
                Command::Launch { instance_id, .. } => {
                    assert!(
                        !self.ever_launched.contains(instance_id),
                        "Launch for already launched {instance_id}"
                    );
                    self.to_launch.insert(instance_id.clone());
                }
                Command::Kill { instance_id, .. } => {
                    self.to_launch.remove(instance_id);
                    if self
                        .tasks
                        .get(instance_id)
                        .is_some_and(|s| s.terminal_reason().is_none())
                    {
                        self.to_kill.insert(instance_id.clone());
                    }
                }
                _ => {}
            }
        }
        self.log.extend(cmds.iter().cloned());
    }

    pub fn event(&mut self, e: Event) -> Vec<Command> {
        let cmds = self.planner.handle(self.now, e);
        self.apply(&cmds);
        cmds
    }

    pub fn start(
        &mut self,
        plan: DeploymentPlan,
        force: bool,
    ) -> Result<Vec<Command>, DeploymentError> {
        let cmds = self.planner.start_deployment(self.now, plan, force)?;
        self.apply(&cmds);
        Ok(cmds)
    }

    pub fn next_deployment_id(&mut self) -> String {
        self.id_counter += 1;
        format!("dep-{}", self.id_counter)
    }

    /// Deploys `target` from the planner's current root group.
    pub fn deploy(
        &mut self,
        target: &[RunSpec],
        force: bool,
    ) -> Result<(DeploymentPlan, Vec<Command>), DeploymentError> {
        let original = self.planner.apps().clone();
        let mut t = original.clone();
        for s in target {
            t.insert(s.id.clone(), s.clone());
        }
        let id = self.next_deployment_id();
        let plan = DeploymentPlan::build(id, self.now, &original, &t, &PlanOptions::default())?;
        let cmds = self.start(plan.clone(), force)?;
        Ok((plan, cmds))
    }

    /// Accepts one pending launch: the task is staging on the cluster.
    pub fn accept(&mut self, id: &str) -> Vec<Command> {
        self.to_launch.remove(id);
        let cmds = self.planner.handle(
            self.now,
            Event::LaunchAccepted {
                instance_id: id.to_string(),
                agent: "agent-1".into(),
            },
        );
        let refused = cmds
            .iter()
            .any(|c| matches!(c, Command::Kill { instance_id, .. } if instance_id == id));
        if !refused {
            assert!(
                self.ever_launched.insert(id.to_string()),
                "instance {id} launched twice"
            );
            self.tasks.insert(id.to_string(), TaskState::Staging);
        }
        self.apply(&cmds);
        cmds
    }

    pub fn accept_all(&mut self) {
        for id in self.to_launch.clone() {
            self.accept(&id);
        }
    }

    pub fn status(&mut self, id: &str, state: TaskState, healthy: Option<bool>) -> Vec<Command> {
        if state.terminal_reason().is_some() {
            self.to_kill.remove(id);
            self.tasks.remove(id);
        } else {
            self.tasks.insert(id.to_string(), state);
        }
        self.event(Event::StatusUpdate {
            instance_id: id.to_string(),
            state,
            healthy,
            agent: None,
        })
    }

    /// Every staging task turns running (healthy if `healthy`).
    pub fn run_all(&mut self, healthy: Option<bool>) {
        let staging: Vec<InstanceId> = self
            .tasks
            .iter()
            .filter(|(_, s)| matches!(s, TaskState::Staging | TaskState::Starting))
            .map(|(i, _)| i.clone())
            .collect();
        for id in staging {
            if !self.to_kill.contains(&id) {
                self.status(&id, TaskState::Running, healthy);
            }
        }
    }

    pub fn finish_kills(&mut self) {
        for id in self.to_kill.clone() {
            self.status(&id, TaskState::Killed, None);
        }
    }

    pub fn tick(&mut self, advance_ms: u64) -> Vec<Command> {
        self.now += advance_ms;
        self.event(Event::Tick)
    }

    /// Launch, run healthy and kill until quiet (bounded).
    pub fn settle(&mut self, healthy: Option<bool>) {
        for _ in 0..200 {
            let before = self.log.len();
            self.accept_all();
            self.run_all(healthy);
            self.finish_kills();
            self.tick(100);
            if self.log.len() == before && self.to_launch.is_empty() && self.to_kill.is_empty() {
                break;
            }
        }
    }

    pub fn recover(&mut self) -> Vec<Command> {
        let (planner, cmds) = Planner::recover(
            self.config,
            ids(&format!("r{}", self.now)),
            self.planner.apps().clone(),
            self.store.instances.values().cloned().collect(),
            self.store.deployments.values().cloned().collect(),
            self.now,
        );
        self.planner = planner;
        // The new leader's edge starts with an empty launch queue.
        self.to_launch.clear();
        self.apply(&cmds);
        cmds
    }

    pub fn live(&self, app: &str) -> Vec<&Instance> {
        self.planner
            .instances_of(app)
            .into_iter()
            .filter(|i| i.goal == Goal::Running)
            .collect()
    }

    pub fn ready_count(&self, app: &str, checks: bool) -> usize {
        self.live(app).iter().filter(|i| i.is_ready(checks)).count()
    }

    pub fn active_count(&self, app: &str) -> usize {
        self.planner
            .instances_of(app)
            .iter()
            .filter(|i| i.is_active())
            .count()
    }

    pub fn count<F: Fn(&Command) -> bool>(cmds: &[Command], f: F) -> usize {
        cmds.iter().filter(|c| f(c)).count()
    }

    pub fn kills(cmds: &[Command]) -> usize {
        Self::count(cmds, |c| matches!(c, Command::Kill { .. }))
    }

    pub fn launches(cmds: &[Command]) -> usize {
        Self::count(cmds, |c| matches!(c, Command::Launch { .. }))
    }

    pub fn succeeded(&self, id: &str) -> bool {
        self.log
            .iter()
            .any(|c| matches!(c, Command::DeploymentSucceeded { id: d } if d == id))
    }
}
