//! `status`, `agents`, `frameworks`, `tasks`: views of the leading master's `/state`.

use super::{emit, Context};
use crate::output::cluster::{self as view, StatusInputs};
use crate::output::text;
use crate::CliError;
use serde_json::{json, Value};

async fn leader_state(ctx: &Context) -> Result<(crate::discovery::Masters, Value), CliError> {
    let masters = ctx.masters().await?;
    let state = ctx.http.get(&masters.url("/state")).await?;
    Ok((masters, state))
}

pub async fn status(ctx: &Context) -> Result<(), CliError> {
    let (masters, state) = leader_state(ctx).await?;
    // Quorum comes from the leader's own flags; a master without --quorum has none.
    let flags = ctx.http.get(&masters.url("/flags")).await.ok();
    let standbys = masters.standbys.as_ref().map(|list| {
        list.iter()
            .map(|info| json!({"id": info.id, "address": info.endpoint(), "version": info.version}))
            .collect()
    });
    let marathon = match ctx.marathon().await {
        Ok(base) => match ctx.http.get(&format!("{base}/v2/leader")).await {
            Ok(doc) => match doc.get("leader").and_then(Value::as_str) {
                Some(leader) => Ok(leader.to_string()),
                None => Err(format!("{base}/v2/leader names no leader")),
            },
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let inputs = StatusInputs {
        leader_address: &masters.leader,
        flags: flags.as_ref(),
        standbys,
        marathon,
    };
    let doc = view::status_document(&state, inputs);
    if ctx.json() {
        ctx.print_json(&doc);
    } else {
        emit(&view::status_text(&doc));
    }
    Ok(())
}

pub async fn agents(ctx: &Context) -> Result<(), CliError> {
    let (_, state) = leader_state(ctx).await?;
    if ctx.json() {
        ctx.print_json(state.get("slaves").unwrap_or(&json!([])));
    } else {
        emit(&view::agents_table(&state).render());
    }
    Ok(())
}

pub async fn frameworks(ctx: &Context) -> Result<(), CliError> {
    let (_, state) = leader_state(ctx).await?;
    if ctx.json() {
        ctx.print_json(state.get("frameworks").unwrap_or(&json!([])));
    } else {
        emit(&view::frameworks_table(&state).render());
    }
    Ok(())
}

pub async fn tasks(ctx: &Context, completed: bool) -> Result<(), CliError> {
    let (_, state) = leader_state(ctx).await?;
    let tasks = view::tasks(&state, completed);
    if ctx.json() {
        ctx.print_json(&Value::Array(tasks));
    } else {
        emit(&view::tasks_table(&state, &tasks).render());
    }
    Ok(())
}

/// A task found in `/state` (live or completed) by id or unique id prefix, as `/state` writes it.
pub fn find_task(state: &Value, id: &str) -> Result<Value, CliError> {
    let all = view::tasks(state, true);
    if let Some(task) = all.iter().find(|t| text(t, "id") == id) {
        return Ok(task.clone());
    }
    let matches: Vec<&Value> = all
        .iter()
        .filter(|t| text(t, "id").starts_with(id))
        .collect();
    match matches.as_slice() {
        [] => Err(CliError::NotFound(format!(
            "Task '{id}' does not exist (the leading master knows no task with this id or prefix)"
        ))),
        [one] => Ok((*one).clone()),
        many => {
            let mut ids: Vec<String> = many.iter().map(|t| text(t, "id")).collect();
            ids.sort();
            ids.dedup();
            if ids.len() == 1 {
                // The same id in several lists (e.g. relaunched): the live one comes first.
                return Ok(many[0].clone());
            }
            Err(CliError::Usage(format!(
                "task id prefix '{id}' matches {} tasks: {}",
                ids.len(),
                ids.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_found_by_unique_prefix() {
        let state = json!({"frameworks": [{"tasks": [{"id": "web.1", "state": "TASK_RUNNING"}, {"id": "web.2"}, {"id": "db.1"}],
                                           "completed_tasks": [{"id": "web.1", "state": "TASK_KILLED"}]}]});
        assert_eq!(
            find_task(&state, "web.1").unwrap()["state"],
            json!("TASK_RUNNING")
        );
        assert_eq!(find_task(&state, "db").unwrap()["id"], json!("db.1"));
        assert_eq!(
            find_task(&state, "web").unwrap_err().exit_code(),
            crate::EXIT_USAGE
        );
        assert_eq!(
            find_task(&state, "nope").unwrap_err().exit_code(),
            crate::EXIT_NOT_FOUND
        );
        assert_eq!(
            find_task(&json!(null), "x").unwrap_err().exit_code(),
            crate::EXIT_NOT_FOUND
        );
    }
}
