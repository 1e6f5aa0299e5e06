//! `deployment list|watch`, and `follow`: polls `GET /v2/deployments` until a deployment is no
//! longer listed, printing a line whenever its step, current actions or the affected apps'
//! running/wanted counts change; then checks that each app reached its goal (marathon-api.md 7:
//! a deployment is listed until done; a cancelled or rolled-back one also disappears, but leaves
//! the app elsewhere).

use super::live_line::LiveLine;
use super::{app_path, emit, Context};
use crate::output::marathon::deployments_table;
use crate::output::progress::{self, affected_apps, AppProgress, Goal, Progress};
use crate::output::text;
use crate::CliError;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Pause between polls of `/v2/deployments`.
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// How long Marathon may stay unreachable (e.g. while a new leader is elected) before following stops.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);
/// How long an app may take to show its final counts once its deployment is gone.
const SETTLE_TIME: Duration = Duration::from_secs(3);

pub async fn list(ctx: &Context) -> Result<(), CliError> {
    let base = ctx.marathon().await?;
    let deployments = ctx.http.get(&format!("{base}/v2/deployments")).await?;
    if ctx.json() {
        ctx.print_json(&deployments);
    } else {
        let table = deployments_table(&deployments);
        emit(&if table.is_empty() {
            "No deployments.\n".to_string()
        } else {
            table.render()
        });
    }
    Ok(())
}

pub async fn watch(ctx: &Context, id: &str) -> Result<(), CliError> {
    let base = ctx.marathon().await?;
    follow(ctx, &base, id.trim(), None, Instant::now()).await
}

/// One app as it is now (`None` inside when it does not exist).
async fn app_progress(ctx: &Context, base: &str, id: &str) -> Result<AppProgress, CliError> {
    let url = format!("{base}/v2/apps/{}", app_path(id)?);
    match ctx.http.get(&url).await {
        Ok(doc) => Ok(AppProgress::of(id, Some(&doc))),
        Err(CliError::NotFound(_)) => Ok(AppProgress::of(id, None)),
        Err(e) => Err(e),
    }
}

/// The deployment `id` in `GET /v2/deployments`, if listed.
fn find(deployments: &Value, id: &str) -> Option<Value> {
    deployments
        .as_array()?
        .iter()
        .find(|d| text(d, "id") == id)
        .cloned()
}

/// Follows deployment `id` until it ends. `goals`: what the change aimed at (`None`: what the
/// deployment's own steps imply). Not listed at the first poll and no goals known: not found.
pub async fn follow(
    ctx: &Context,
    base: &str,
    id: &str,
    mut goals: Option<Vec<Goal>>,
    started: Instant,
) -> Result<(), CliError> {
    let mut last: Option<Progress> = None;
    let mut unreachable_since: Option<Instant> = None;
    let mut line = LiveLine::new();
    loop {
        let deployments = match ctx.http.get(&format!("{base}/v2/deployments")).await {
            Ok(d) => {
                unreachable_since = None;
                d
            }
            // Marathon may be failing over: keep asking for a while.
            Err(e @ (CliError::Unreachable { .. } | CliError::NoLeader { .. })) => {
                if unreachable_since.get_or_insert_with(Instant::now).elapsed() > UNREACHABLE_GRACE
                {
                    return Err(e);
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(deployment) = find(&deployments, id) else {
            let Some(goals) = goals else {
                return Err(CliError::NotFound(format!(
                    "DeploymentPlan {id} does not exist"
                )));
            };
            return finish(ctx, base, id, &goals, started, &mut line).await;
        };
        let mut apps = Vec::new();
        for app in affected_apps(&deployment) {
            apps.push(app_progress(ctx, base, &app).await?);
        }
        if goals.is_none() {
            // While deploying, an app already shows its target instances: hold the deployment to
            // them, so that a later change that cancels it is not taken for its success.
            goals = Some(
                Goal::of_deployment(&deployment)
                    .into_iter()
                    .map(|goal| goal.with_target_of(&apps))
                    .collect(),
            );
        }
        let now = Progress::of(&deployment, apps);
        if last.as_ref() != Some(&now) {
            if ctx.json() {
                ctx.print_json(&progress::progress_json(id, &now));
            } else {
                line.show(&progress::progress_line(id, &now));
            }
            last = Some(now);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The deployment is gone: success if every goal is met (allowing the counts a moment to settle).
async fn finish(
    ctx: &Context,
    base: &str,
    id: &str,
    goals: &[Goal],
    started: Instant,
    line: &mut LiveLine,
) -> Result<(), CliError> {
    let deadline = Instant::now() + SETTLE_TIME;
    loop {
        let mut unmet = Vec::new();
        for goal in goals {
            if let Err(why) = goal.check(&app_progress(ctx, base, goal.app()).await?) {
                unmet.push(why);
            }
        }
        if unmet.is_empty() {
            let seconds = started.elapsed().as_secs_f64();
            if ctx.json() {
                ctx.print_json(&progress::finished_json(id, seconds));
            } else {
                line.finish(&progress::finished_line(id, seconds));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let reason = unmet.join("; ");
            if ctx.json() {
                ctx.print_json(&progress::failed_json(id, &reason));
            }
            return Err(CliError::Failed(format!("deployment {id} ended without reaching its goal (cancelled or rolled back?): {reason}")));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
