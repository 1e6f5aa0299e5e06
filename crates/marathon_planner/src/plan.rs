//! Plan construction (spec §7 "Plan construction"): from an original and a target root group to a
//! [`DeploymentPlan`] of sequential steps whose actions run in parallel.
//!
//! Step 1 stops removed apps; step 2 starts new apps (with 0 instances); then one step per
//! dependency level of the target group (apps without dependencies first): a new app or an
//! instances-only change becomes `ScaleApplication`, any other runtime change (the caller signals it
//! by a different `config_version`) or an explicit restart becomes `RestartApplication`. Empty steps
//! are dropped, so a no-op change is a plan with zero steps. A dependency cycle is an error the
//! caller answers with 422.

use crate::types::{AppId, DeploymentId, InstanceId, PlanError, RootGroup, RunSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One action of a step (spec §5 action names). Each carries the spec it drives the app to (for a
/// stop, the spec being stopped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    StartApplication {
        app: RunSpec,
    },
    StopApplication {
        app: RunSpec,
    },
    /// `kill` = instances named for killing first (`DELETE …/tasks?scale=true`).
    ScaleApplication {
        app: RunSpec,
        kill: Vec<InstanceId>,
    },
    RestartApplication {
        app: RunSpec,
    },
}

impl Action {
    pub fn app(&self) -> &RunSpec {
        match self {
            Action::StartApplication { app }
            | Action::StopApplication { app }
            | Action::ScaleApplication { app, .. }
            | Action::RestartApplication { app } => app,
        }
    }

    pub fn app_id(&self) -> &str {
        &self.app().id
    }

    /// The §5 wire name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartApplication { .. } => "StartApplication",
            Action::StopApplication { .. } => "StopApplication",
            Action::ScaleApplication { .. } => "ScaleApplication",
            Action::RestartApplication { .. } => "RestartApplication",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    pub id: DeploymentId,
    /// The version given to the changed apps (ms).
    pub version: u64,
    pub original: RootGroup,
    pub target: RootGroup,
    pub steps: Vec<Step>,
}

/// Extra intent the root-group diff cannot express.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `POST /v2/apps/{id}/restart`: restart even without a config change.
    pub restart: BTreeSet<AppId>,
    /// `DELETE …/tasks?scale=true`: instances to kill first when scaling these apps.
    pub kill: BTreeMap<AppId, Vec<InstanceId>>,
}

impl DeploymentPlan {
    /// Builds the plan from `original` to `target` (spec §7).
    pub fn build(
        id: DeploymentId,
        version: u64,
        original: &RootGroup,
        target: &RootGroup,
        options: &PlanOptions,
    ) -> Result<DeploymentPlan, PlanError> {
        let levels = dependency_levels(target)?;
        let mut steps = Vec::new();

        let stops: Vec<Action> = original
            .values()
            .filter(|app| !target.contains_key(&app.id))
            .map(|app| Action::StopApplication { app: app.clone() })
            .collect();
        steps.push(Step { actions: stops });

        let starts: Vec<Action> = target
            .values()
            .filter(|app| !original.contains_key(&app.id))
            .map(|app| Action::StartApplication {
                app: RunSpec {
                    instances: 0,
                    ..app.clone()
                },
            })
            .collect();
        steps.push(Step { actions: starts });

        let depth = levels.values().copied().max().map_or(0, |d| d + 1);
        let mut by_level: Vec<Vec<Action>> = vec![Vec::new(); depth];
        for app in target.values() {
            let kill = options.kill.get(&app.id).cloned().unwrap_or_default();
            let action = match original.get(&app.id) {
                None => Some(Action::ScaleApplication {
                    app: app.clone(),
                    kill,
                }),
                Some(before)
                    if before.config_version != app.config_version
                        || options.restart.contains(&app.id) =>
                {
                    Some(Action::RestartApplication { app: app.clone() })
                }
                Some(before) if before.instances != app.instances || !kill.is_empty() => {
                    Some(Action::ScaleApplication {
                        app: app.clone(),
                        kill,
                    })
                }
                Some(_) => None,
            };
            if let (Some(action), Some(level)) = (action, levels.get(&app.id)) {
                if let Some(slot) = by_level.get_mut(*level) {
                    slot.push(action);
                }
            }
        }
        steps.extend(by_level.into_iter().map(|actions| Step { actions }));
        steps.retain(|step| !step.actions.is_empty());
        // Only the apps the plan touches are kept: the plan is stored as one record (≤ 64 KB), so
        // its size must follow the change, never the number of apps in the cluster.
        let affected: BTreeSet<AppId> = steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.app_id().to_string()))
            .collect();
        let only_affected = |group: &RootGroup| -> RootGroup {
            group
                .iter()
                .filter(|(id, _)| affected.contains(*id))
                .map(|(id, spec)| (id.clone(), spec.clone()))
                .collect()
        };
        Ok(DeploymentPlan {
            id,
            version,
            original: only_affected(original),
            target: only_affected(target),
            steps,
        })
    }

    /// Apps touched by any action, sorted.
    pub fn affected_apps(&self) -> BTreeSet<AppId> {
        self.steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.app_id().to_string()))
            .collect()
    }

    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Dependency level of every app in `group`: 0 without dependencies (inside the group), else one
/// more than its deepest dependency. Dependencies on apps outside the group are ignored (validation
/// is the model's job). A cycle is [`PlanError::DependencyCycle`] naming the apps on or behind it.
pub fn dependency_levels(group: &RootGroup) -> Result<BTreeMap<AppId, usize>, PlanError> {
    let deps = |app: &RunSpec| -> BTreeSet<AppId> {
        app.dependencies
            .iter()
            .filter(|d| group.contains_key(*d) && **d != app.id)
            .cloned()
            .collect()
    };
    let mut pending: BTreeMap<AppId, BTreeSet<AppId>> =
        group.values().map(|a| (a.id.clone(), deps(a))).collect();
    let mut levels: BTreeMap<AppId, usize> = BTreeMap::new();
    // Kahn's algorithm, one wave per level; at most one wave per app.
    while !pending.is_empty() {
        let ready: Vec<AppId> = pending
            .iter()
            .filter(|(_, d)| d.iter().all(|x| levels.contains_key(x)))
            .map(|(id, _)| id.clone())
            .collect();
        if ready.is_empty() {
            return Err(PlanError::DependencyCycle {
                apps: pending.keys().cloned().collect(),
            });
        }
        for id in ready {
            let level = pending
                .remove(&id)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| levels.get(d))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            levels.insert(id, level);
        }
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(apps: &[RunSpec]) -> RootGroup {
        apps.iter().map(|a| (a.id.clone(), a.clone())).collect()
    }

    #[test]
    fn a_plan_keeps_only_the_apps_it_touches_so_its_record_stays_small() {
        let original: RootGroup = (0..1000)
            .map(|i| RunSpec::new(format!("/a{i}"), 1, 1))
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut target = original.clone();
        if let Some(app) = target.get_mut("/a7") {
            app.instances = 3;
        }
        let plan =
            DeploymentPlan::build("p".into(), 2, &original, &target, &PlanOptions::default())
                .expect("plan");
        assert_eq!(plan.original.keys().collect::<Vec<_>>(), vec!["/a7"]);
        assert_eq!(plan.target.keys().collect::<Vec<_>>(), vec!["/a7"]);
        let bytes = serde_json::to_vec(&plan).expect("json").len();
        assert!(bytes < 4096, "{bytes} bytes for a one-app change");
    }

    fn names(plan: &DeploymentPlan) -> Vec<Vec<String>> {
        plan.steps
            .iter()
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| format!("{} {}", a.name(), a.app_id()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn new_app_is_start_then_scale() {
        let plan = DeploymentPlan::build(
            "d".into(),
            1,
            &RootGroup::new(),
            &group(&[RunSpec::new("/a", 1, 3)]),
            &PlanOptions::default(),
        )
        .expect("plan");
        assert_eq!(
            names(&plan),
            vec![vec!["StartApplication /a"], vec!["ScaleApplication /a"]]
        );
        assert!(
            matches!(&plan.steps[0].actions[0], Action::StartApplication { app } if app.instances == 0)
        );
    }

    #[test]
    fn removed_app_is_stopped_first_and_changes_are_classified() {
        let a = RunSpec::new("/a", 1, 1);
        let b = RunSpec::new("/b", 1, 1);
        let c = RunSpec::new("/c", 1, 1);
        let d = RunSpec::new("/d", 1, 1);
        let original = group(&[a.clone(), b.clone(), c.clone(), d.clone()]);
        let b2 = RunSpec {
            instances: 5,
            version: 2,
            ..b
        };
        let c2 = RunSpec {
            version: 2,
            config_version: 2,
            ..c
        };
        let target = group(&[b2, c2, d, RunSpec::new("/e", 2, 1)]);
        let plan =
            DeploymentPlan::build("x".into(), 2, &original, &target, &PlanOptions::default())
                .expect("plan");
        assert_eq!(
            names(&plan),
            vec![
                vec!["StopApplication /a"],
                vec!["StartApplication /e"],
                vec![
                    "ScaleApplication /b",
                    "RestartApplication /c",
                    "ScaleApplication /e"
                ],
            ]
        );
        assert_eq!(plan.affected_apps().len(), 4);
    }

    #[test]
    fn noop_has_no_steps_and_explicit_restart_restarts() {
        let g = group(&[RunSpec::new("/a", 1, 2)]);
        let plan =
            DeploymentPlan::build("x".into(), 2, &g, &g, &PlanOptions::default()).expect("plan");
        assert!(plan.is_noop());
        let options = PlanOptions {
            restart: ["/a".to_string()].into(),
            ..Default::default()
        };
        let plan = DeploymentPlan::build("x".into(), 2, &g, &g, &options).expect("plan");
        assert_eq!(names(&plan), vec![vec!["RestartApplication /a"]]);
    }

    #[test]
    fn dependency_levels_order_steps() {
        let db = RunSpec::new("/db", 1, 1);
        let api = RunSpec {
            dependencies: vec!["/db".into()],
            ..RunSpec::new("/api", 1, 1)
        };
        let web = RunSpec {
            dependencies: vec!["/api".into(), "/db".into(), "/missing".into()],
            ..RunSpec::new("/web", 1, 1)
        };
        let plan = DeploymentPlan::build(
            "x".into(),
            1,
            &RootGroup::new(),
            &group(&[web, api, db]),
            &PlanOptions::default(),
        )
        .expect("plan");
        assert_eq!(
            names(&plan),
            vec![
                vec![
                    "StartApplication /api",
                    "StartApplication /db",
                    "StartApplication /web"
                ],
                vec!["ScaleApplication /db"],
                vec!["ScaleApplication /api"],
                vec!["ScaleApplication /web"],
            ]
        );
    }

    #[test]
    fn cycle_is_an_error() {
        let a = RunSpec {
            dependencies: vec!["/b".into()],
            ..RunSpec::new("/a", 1, 1)
        };
        let b = RunSpec {
            dependencies: vec!["/a".into()],
            ..RunSpec::new("/b", 1, 1)
        };
        let c = RunSpec::new("/c", 1, 1);
        let err = DeploymentPlan::build(
            "x".into(),
            1,
            &RootGroup::new(),
            &group(&[a, b, c]),
            &PlanOptions::default(),
        );
        assert_eq!(
            err,
            Err(PlanError::DependencyCycle {
                apps: vec!["/a".into(), "/b".into()]
            })
        );
    }
}
