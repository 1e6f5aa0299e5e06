//! `app add|list|show|scale|restart|remove`: Marathon's `/v2/apps` (marathon-api.md 4). Verbs that
//! start a deployment follow it to the end (`deployments::follow`) unless `--no-wait`.

use super::deployments::follow;
use super::{app_path, emit, Context};
use crate::args::DeployArgs;
use crate::output::marathon::{app_details, apps_table};
use crate::output::progress::Goal;
use crate::output::{number, text};
use crate::CliError;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// Reads an app definition from `file` (`-` is stdin); errors name the file (exit 2).
pub fn read_definition(file: &Path) -> Result<Value, CliError> {
    let name = if file.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        file.display().to_string()
    };
    let mut content = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut content).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|c| content = c)
    };
    read.map_err(|e| CliError::Usage(format!("cannot read {name}: {e}")))?;
    parse_definition(&name, &content)
}

/// An app definition: one JSON object.
pub fn parse_definition(name: &str, content: &str) -> Result<Value, CliError> {
    let value: Value = serde_json::from_str(content)
        .map_err(|e| CliError::Usage(format!("{name} is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(CliError::Usage(format!(
            "{name} must hold one app definition (a JSON object), not {}",
            kind(&value)
        )));
    }
    Ok(value)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    }
}

pub async fn add(ctx: &Context, file: &Path, no_wait: bool) -> Result<(), CliError> {
    let definition = read_definition(file)?;
    let base = ctx.marathon().await?;
    let started = Instant::now();
    let answer = ctx
        .http
        .send(Method::POST, &format!("{base}/v2/apps"), Some(&definition))
        .await?;
    let app = answer.body;
    let deployment = answer.deployment_id.or_else(|| {
        app.get("deployments")
            .and_then(|d| d.get(0))
            .map(|d| text(d, "id"))
    });
    let app_id = text(&app, "id");
    if ctx.json() {
        ctx.print_json(&app);
    } else {
        emit(&format!(
            "app {app_id} created (version {}), deployment {}\n",
            text(&app, "version"),
            deployment.as_deref().unwrap_or("-")
        ));
    }
    let Some(deployment) = deployment.filter(|_| !no_wait) else {
        return Ok(());
    };
    let goal = Goal::Running {
        app: app_id,
        instances: Some(number(&app, "instances") as u64),
    };
    follow(ctx, &base, &deployment, Some(vec![goal]), started).await
}

pub async fn list(ctx: &Context) -> Result<(), CliError> {
    let base = ctx.marathon().await?;
    let apps = ctx.http.get(&format!("{base}/v2/apps")).await?;
    if ctx.json() {
        ctx.print_json(&apps);
    } else {
        let table = apps_table(&apps);
        emit(&if table.is_empty() {
            "No apps.\n".to_string()
        } else {
            table.render()
        });
    }
    Ok(())
}

pub async fn show(ctx: &Context, id: &str) -> Result<(), CliError> {
    let path = app_path(id)?;
    let base = ctx.marathon().await?;
    let app = ctx.http.get(&format!("{base}/v2/apps/{path}")).await?;
    if ctx.json() {
        ctx.print_json(&app);
    } else {
        emit(&app_details(&app));
    }
    Ok(())
}

/// Sends a change that answers with a deploymentResult, then follows the deployment.
async fn deploy(
    ctx: &Context,
    method: Method,
    url: String,
    body: Option<Value>,
    goal: Goal,
    deploy: &DeployArgs,
    what: &str,
) -> Result<(), CliError> {
    let base = ctx.marathon().await?;
    let url = format!("{base}{url}?force={}", deploy.force);
    let started = Instant::now();
    let answer = ctx
        .http
        .send(method, &url, body.as_ref())
        .await
        .map_err(|e| match e {
            // marathon-api.md 1: 409 when a running deployment holds the app and force is not set.
            CliError::Refused {
                method,
                url,
                status: 409,
                message,
            } if !deploy.force => CliError::Refused {
                method,
                url,
                status: 409,
                message: format!(
                    "{message}\n  (add --force to cancel the deployments that hold it)"
                ),
            },
            other => other,
        })?;
    let result = answer.body;
    let deployment = answer
        .deployment_id
        .unwrap_or_else(|| text(&result, "deploymentId"));
    if ctx.json() {
        ctx.print_json(&result);
    } else {
        emit(&format!(
            "{what} {}: deployment {deployment} (version {})\n",
            goal.app(),
            text(&result, "version")
        ));
    }
    if deploy.no_wait || deployment == "-" {
        return Ok(());
    }
    follow(ctx, &base, &deployment, Some(vec![goal]), started).await
}

/// An app id as Marathon writes it: absolute, no trailing `/`.
fn absolute(id: &str) -> String {
    format!("/{}", id.trim().trim_matches('/'))
}

pub async fn scale(
    ctx: &Context,
    id: &str,
    instances: u32,
    options: &DeployArgs,
) -> Result<(), CliError> {
    let path = app_path(id)?;
    // A PUT to an unknown id would create the app: make sure it exists (404, exit 4) first.
    let base = ctx.marathon().await?;
    ctx.http.get(&format!("{base}/v2/apps/{path}")).await?;
    let goal = Goal::Running {
        app: absolute(id),
        instances: Some(u64::from(instances)),
    };
    deploy(
        ctx,
        Method::PUT,
        format!("/v2/apps/{path}"),
        Some(json!({"instances": instances})),
        goal,
        options,
        "scaling",
    )
    .await
}

pub async fn restart(ctx: &Context, id: &str, options: &DeployArgs) -> Result<(), CliError> {
    let path = app_path(id)?;
    let goal = Goal::Running {
        app: absolute(id),
        instances: None,
    };
    deploy(
        ctx,
        Method::POST,
        format!("/v2/apps/{path}/restart"),
        None,
        goal,
        options,
        "restarting",
    )
    .await
}

pub async fn remove(ctx: &Context, id: &str, options: &DeployArgs) -> Result<(), CliError> {
    let path = app_path(id)?;
    let goal = Goal::Gone { app: absolute(id) };
    deploy(
        ctx,
        Method::DELETE,
        format!("/v2/apps/{path}"),
        None,
        goal,
        options,
        "removing",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_must_be_one_json_object_and_errors_name_the_file() {
        assert!(parse_definition("hello.json", r#"{"id":"/hello"}"#).is_ok());
        let e = parse_definition("hello.json", "{not json").unwrap_err();
        assert_eq!(e.exit_code(), crate::EXIT_USAGE);
        assert!(
            e.to_string().starts_with("hello.json is not valid JSON"),
            "{e}"
        );
        let e = parse_definition("apps.json", "[]").unwrap_err();
        assert!(
            e.to_string()
                .contains("apps.json must hold one app definition"),
            "{e}"
        );
        let e = read_definition(Path::new("/nonexistent/hello.json")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/hello.json"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::EXIT_USAGE);
    }
}
