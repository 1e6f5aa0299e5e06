//! A running deployment: its plan and where it stands (spec §5 Deployment, §7 "Steps run
//! sequentially; actions in a step in parallel").
//!
//! This is exactly what is stored (`Command::StoreDeployment`) and what a new leader recovers:
//! everything else a step needs is derived from the instances, so resuming never doubles them.

use crate::plan::{Action, DeploymentPlan};
use crate::types::{AppId, DeploymentId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub plan: DeploymentPlan,
    /// 0-based index of the running step.
    pub current_step: usize,
    /// Apps of the current step whose rolling restart got the extra instance (spec §7 "+1 rule"),
    /// decided when the step started.
    pub restart_extra: BTreeSet<AppId>,
    pub started_at_ms: u64,
}

/// Where an app stands in a deployment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AppPhase<'a> {
    NotAffected,
    /// An action of the running step drives the app.
    Current(&'a Action),
    /// Its action comes later; `started` = its `StartApplication` already ran.
    Pending {
        started: bool,
    },
    /// All its actions are done.
    Done,
}

impl DeploymentState {
    pub fn id(&self) -> &DeploymentId {
        &self.plan.id
    }

    pub fn current_actions(&self) -> &[Action] {
        self.plan
            .steps
            .get(self.current_step)
            .map(|s| s.actions.as_slice())
            .unwrap_or(&[])
    }

    pub fn affected_apps(&self) -> BTreeSet<AppId> {
        self.plan.affected_apps()
    }

    pub fn is_finished(&self) -> bool {
        self.current_step >= self.plan.steps.len()
    }

    pub(crate) fn app_phase(&self, app_id: &str) -> AppPhase<'_> {
        let mut affected = false;
        let mut started = false;
        let mut pending = false;
        for (index, step) in self.plan.steps.iter().enumerate() {
            for action in step.actions.iter().filter(|a| a.app_id() == app_id) {
                affected = true;
                if index == self.current_step {
                    return AppPhase::Current(action);
                }
                if index < self.current_step {
                    started |= matches!(action, Action::StartApplication { .. });
                } else {
                    pending = true;
                }
            }
        }
        match (affected, pending) {
            (false, _) => AppPhase::NotAffected,
            (true, true) => AppPhase::Pending { started },
            (true, false) => AppPhase::Done,
        }
    }
}
