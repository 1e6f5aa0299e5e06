//! Running one health check (mesos-http-api.md 8.4 `health_check`), as Mesos' checker does for
//! command tasks; when and what it means is the core's business (`core/health_rules.rs`).
//!
//! What: `Probe::new` turns a `HealthCheck` into what to run; `Probe::run` runs it within the
//! timeout and says whether the task is healthy.
//! - COMMAND: the command (`/bin/sh -c <value>`, or `value` with `arguments` as argv when
//!   `shell` is false) in the task's sandbox, with the task's environment and then the check
//!   command's own; exit status 0 is healthy. It leads its own process group, and the whole group
//!   is SIGKILLed when the timeout passes.
//! - HTTP: `GET <scheme>://<agent ip>:<port><path>`; 200-399 is healthy (or one of `statuses`
//!   when given); redirects are not followed (a 3xx is an answer), and no proxy is used. With
//!   `https` the task's certificate is not verified (Mesos' checker runs `curl -k`): the check asks
//!   whether the task answers, not who it is.
//! - TCP: a connection to `<agent ip>:<port>` opens.
//!
//! Why the agent spawns these itself, not through the launcher daemon: a probe lives for at most
//! its timeout and need not survive an agent restart (checking starts again after one).

use proto::{HealthCheck, HealthCheckType};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

/// One check, ready to run.
#[derive(Debug, Clone)]
pub enum Probe {
    Command {
        program: String,
        argv: Vec<String>,
        /// In order; later entries win.
        env: Vec<(String, String)>,
        cwd: PathBuf,
    },
    Http {
        url: String,
        check: Box<HealthCheck>,
    },
    Tcp {
        address: SocketAddr,
    },
}

fn port(port: i64) -> Result<u16, String> {
    u16::try_from(port).map_err(|_| format!("port {port} is out of range"))
}

impl Probe {
    /// `ip`: where the task's ports are (the agent's address); `sandbox` and `task_env`: the
    /// task's working directory and complete environment.
    pub fn new(
        check: &HealthCheck,
        ip: IpAddr,
        sandbox: PathBuf,
        mut task_env: Vec<(String, String)>,
    ) -> Result<Probe, String> {
        match check.kind {
            HealthCheckType::Command => {
                let command = check.command.as_ref().ok_or("the check has no 'command'")?;
                let value = command
                    .value
                    .clone()
                    .ok_or("the check's command has no 'value'")?;
                let (program, argv) = if command.shell {
                    (
                        "/bin/sh".to_string(),
                        vec!["sh".to_string(), "-c".to_string(), value],
                    )
                } else if command.arguments.is_empty() {
                    (value.clone(), vec![value])
                } else {
                    (value, command.arguments.clone())
                };
                let variables = command.environment.iter().flat_map(|e| e.variables.iter());
                task_env.extend(
                    variables.map(|v| (v.name.clone(), v.value.clone().unwrap_or_default())),
                );
                Ok(Probe::Command {
                    program,
                    argv,
                    env: task_env,
                    cwd: sandbox,
                })
            }
            HealthCheckType::Http => {
                let http = check.http.as_ref().ok_or("the check has no 'http'")?;
                let address = SocketAddr::new(ip, port(http.port)?);
                Ok(Probe::Http {
                    url: format!("{}://{address}{}", check.http_scheme(), check.http_path()),
                    check: Box::new(check.clone()),
                })
            }
            HealthCheckType::Tcp => {
                let tcp = check.tcp.as_ref().ok_or("the check has no 'tcp'")?;
                Ok(Probe::Tcp {
                    address: SocketAddr::new(ip, port(tcp.port)?),
                })
            }
        }
    }

    /// Runs the check; `Ok` when healthy, `Err` says why not (timeouts included).
    pub async fn run(self, timeout: Duration) -> Result<(), String> {
        match self {
            Probe::Command {
                program,
                argv,
                env,
                cwd,
            } => run_command(program, argv, env, cwd, timeout).await,
            Probe::Http { url, check } => {
                let response = http_client()
                    .get(&url)
                    .timeout(timeout)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let status = response.status().as_u16();
                if check.http_status_ok(status) {
                    Ok(())
                } else {
                    Err(format!("GET {url} answered {status}"))
                }
            }
            Probe::Tcp { address } => {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("connecting to {address}: {e}")),
                    Err(_) => Err(format!(
                        "connecting to {address} timed out after {timeout:?}"
                    )),
                }
            }
        }
    }
}

fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap_or_default()
    })
}

async fn run_command(
    program: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    timeout: Duration,
) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&program);
    if let Some((arg0, args)) = argv.split_first() {
        command.arg0(arg0).args(args);
    }
    command
        .env_clear()
        .envs(env)
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the check command ended with {status}")),
        Ok(Err(e)) => Err(format!("waiting for the check command: {e}")),
        Err(_) => {
            // Not reaped yet, so its pid (the group's id) cannot have been reused.
            if let Some(pid) = pid {
                crate::launcher::signal_group(pid, libc::SIGKILL);
            }
            let _ = child.wait().await;
            Err(format!(
                "the check command did not finish within {timeout:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: serde_json::Value) -> HealthCheck {
        HealthCheck::from_json(&value).unwrap()
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[tokio::test]
    async fn a_command_runs_in_the_sandbox_with_both_environments() {
        let dir = std::env::temp_dir().join(format!("tepui-hc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ok"), "").unwrap();
        let c = check(
            json!({"command": {"value": "test -e ok && test \"$A$B\" = task-check",
            "environment": {"variables": [{"name": "B", "value": "-check"}]}}}),
        );
        let env = vec![
            ("A".into(), "task".into()),
            ("B".into(), "overridden".into()),
        ];
        let probe = Probe::new(&c, local(), dir.clone(), env).unwrap();
        assert_eq!(probe.clone().run(Duration::from_secs(5)).await, Ok(()));
        std::fs::remove_file(dir.join("ok")).unwrap();
        assert!(probe.run(Duration::from_secs(5)).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_fails_and_its_group_is_killed() {
        let dir = std::env::temp_dir();
        let c = check(json!({"command": {"value": "sleep 30 & echo $! > /dev/null; sleep 30"}}));
        let started = std::time::Instant::now();
        let probe = Probe::new(
            &c,
            local(),
            dir,
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        )
        .unwrap();
        let outcome = probe.run(Duration::from_millis(200)).await;
        assert!(outcome.unwrap_err().contains("did not finish"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn an_argv_command_runs_without_a_shell() {
        let c = check(
            json!({"command": {"shell": false, "value": "/bin/sh", "arguments": ["sh", "-c", "exit 3"]}}),
        );
        let probe = Probe::new(&c, local(), std::env::temp_dir(), vec![]).unwrap();
        assert!(probe
            .run(Duration::from_secs(5))
            .await
            .unwrap_err()
            .contains("3"));
    }

    #[tokio::test]
    async fn tcp_and_http_checks_reach_the_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "fine" }))
            .route(
                "/bad",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no")
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let timeout = Duration::from_secs(5);
        let tcp = check(json!({"type": "TCP", "tcp": {"port": port}}));
        assert_eq!(
            Probe::new(&tcp, local(), "/".into(), vec![])
                .unwrap()
                .run(timeout)
                .await,
            Ok(())
        );
        let ok = check(json!({"type": "HTTP", "http": {"port": port, "path": "/ok"}}));
        assert_eq!(
            Probe::new(&ok, local(), "/".into(), vec![])
                .unwrap()
                .run(timeout)
                .await,
            Ok(())
        );
        let bad = check(json!({"type": "HTTP", "http": {"port": port, "path": "/bad"}}));
        let err = Probe::new(&bad, local(), "/".into(), vec![])
            .unwrap()
            .run(timeout)
            .await
            .unwrap_err();
        assert!(err.contains("503"), "{err}");
        let allowed = check(
            json!({"type": "HTTP", "http": {"port": port, "path": "/bad", "statuses": [503]}}),
        );
        assert_eq!(
            Probe::new(&allowed, local(), "/".into(), vec![])
                .unwrap()
                .run(timeout)
                .await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let tcp = check(json!({"type": "TCP", "tcp": {"port": port}}));
        let probe = Probe::new(&tcp, local(), "/".into(), vec![]).unwrap();
        assert!(probe.run(Duration::from_secs(5)).await.is_err());
    }
}
