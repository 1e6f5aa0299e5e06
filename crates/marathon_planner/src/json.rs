//! Wire shapes of plans and running deployments (spec §5 "Deployment", §4 deploymentResult,
//! `/v2/queue`, §6 `plan` in deployment events).
//!
//! The caller passes a timestamp formatter (`ms → "2024-05-01T12:00:00.123Z"`, spec §1) so this
//! crate stays free of clocks and date libraries. The [compat] `original`/`target` groups of event
//! plans are built by the caller from its full app JSON and added to [`plan_json`]'s object.

use crate::deployment::DeploymentState;
use crate::plan::{Action, DeploymentPlan};
use crate::queue::QueueEntry;
use serde_json::{json, Map, Value};

/// `{"action":"ScaleApplication","app":"/x"}`.
pub fn action_json(action: &Action) -> Value {
    json!({"action": action.name(), "app": action.app_id()})
}

/// `[{"actions":[…]}, …]` (also the `dryRun` answer's `steps`).
pub fn steps_json(plan: &DeploymentPlan) -> Value {
    Value::Array(
        plan.steps
            .iter()
            .map(|s| json!({"actions": s.actions.iter().map(action_json).collect::<Vec<_>>()}))
            .collect(),
    )
}

/// Event `plan`: `{"id","version","steps"}`; the caller adds `original` and `target`.
pub fn plan_json(plan: &DeploymentPlan, format_ts: &dyn Fn(u64) -> String) -> Value {
    json!({"id": plan.id, "version": format_ts(plan.version), "steps": steps_json(plan)})
}

/// deploymentResult: `{"version","deploymentId"}`.
pub fn deployment_result_json(plan: &DeploymentPlan, format_ts: &dyn Fn(u64) -> String) -> Value {
    json!({"version": format_ts(plan.version), "deploymentId": plan.id})
}

/// One element of `GET /v2/deployments` (spec §5). `currentStep` is 1-based.
pub fn deployment_json(state: &DeploymentState, format_ts: &dyn Fn(u64) -> String) -> Value {
    let total = state.plan.steps.len();
    let current_actions: Vec<Value> = state
        .current_actions()
        .iter()
        .map(|a| json!({"action": a.name(), "app": a.app_id(), "readinessCheckResults": []}))
        .collect();
    json!({
        "id": state.plan.id,
        "version": format_ts(state.plan.version),
        "affectedApps": state.affected_apps().into_iter().collect::<Vec<_>>(),
        "affectedPods": [],
        "steps": steps_json(&state.plan),
        "currentActions": current_actions,
        "currentStep": (state.current_step + 1).min(total),
        "totalSteps": total,
    })
}

/// Event `currentStep`: `{"actions":[…]}` of the running step.
pub fn current_step_json(state: &DeploymentState) -> Value {
    json!({"actions": state.current_actions().iter().map(action_json).collect::<Vec<_>>()})
}

/// One `/v2/queue` element; `app` is the caller's AppInfo JSON. No `role` [compat].
pub fn queue_entry_json(
    entry: &QueueEntry,
    app: Value,
    format_ts: &dyn Fn(u64) -> String,
) -> Value {
    let o = &entry.offers;
    let mut summary = Map::new();
    summary.insert("processedOffersCount".into(), json!(o.processed_offers));
    summary.insert("unusedOffersCount".into(), json!(o.unused_offers));
    if let Some(t) = o.last_unused_offer_at_ms {
        summary.insert("lastUnusedOfferAt".into(), json!(format_ts(t)));
    }
    if let Some(t) = o.last_used_offer_at_ms {
        summary.insert("lastUsedOfferAt".into(), json!(format_ts(t)));
    }
    if !o.reject_reasons.is_empty() {
        let reasons: Vec<Value> = o
            .reject_reasons
            .iter()
            .map(|(reason, n)| json!({"reason": reason, "declined": n, "processed": o.processed_offers}))
            .collect();
        summary.insert("rejectSummaryLastOffers".into(), Value::Array(reasons));
    }
    json!({
        "app": app,
        "count": entry.count,
        "delay": {"timeLeftSeconds": entry.delay.time_left_seconds, "overdue": entry.delay.overdue},
        "since": format_ts(entry.since_ms),
        "processedOffersSummary": Value::Object(summary),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanOptions;
    use crate::types::{RootGroup, RunSpec};
    use std::collections::BTreeSet;

    #[test]
    fn deployment_matches_the_spec_example() {
        let target: RootGroup = [("/hello2".to_string(), RunSpec::new("/hello2", 5, 1))].into();
        let plan = DeploymentPlan::build(
            "2e5b".into(),
            5,
            &RootGroup::new(),
            &target,
            &PlanOptions::default(),
        )
        .expect("plan");
        let state = DeploymentState {
            plan,
            current_step: 1,
            restart_extra: BTreeSet::new(),
            started_at_ms: 0,
        };
        let fmt = |ms: u64| format!("ts{ms}");
        let expected = json!({"id":"2e5b","version":"ts5","affectedApps":["/hello2"],"affectedPods":[],
            "steps":[{"actions":[{"action":"StartApplication","app":"/hello2"}]},
                     {"actions":[{"action":"ScaleApplication","app":"/hello2"}]}],
            "currentActions":[{"action":"ScaleApplication","app":"/hello2","readinessCheckResults":[]}],
            "currentStep":2,"totalSteps":2});
        assert_eq!(deployment_json(&state, &fmt), expected);
        assert_eq!(
            deployment_result_json(&state.plan, &fmt),
            json!({"version":"ts5","deploymentId":"2e5b"})
        );
    }
}
