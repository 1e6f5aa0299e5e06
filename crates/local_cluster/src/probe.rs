//! Asking the servers who leads, over their public HTTP APIs, with short timeouts (a dead server
//! must not slow a poll that runs every 500 ms):
//! - master: `GET /metrics/snapshot` has `master/elected` 1 on the leader, 0 on a standby.
//! - Marathon: `GET /v2/leader` answers `{"leader":"ip:port"}` on any instance.
//! - agents: the leading master's `GET /slaves` lists them with `active`.

use std::time::Duration;

use futures::future::join_all;

const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// An HTTP client that follows no redirect (a 307 is the answer, not a detour).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The JSON body of `GET url`; None when the server does not answer 2xx with JSON.
async fn get_json(client: &reqwest::Client, url: String) -> Option<serde_json::Value> {
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// Whether the master at `address` says it leads (`master/elected` in `/metrics/snapshot`); None
/// when it does not answer.
async fn elected(client: &reqwest::Client, address: &str) -> Option<bool> {
    let body = get_json(client, format!("http://{address}/metrics/snapshot")).await?;
    Some(body.get("master/elected")?.as_f64()? == 1.0)
}

/// The address of the leading master among `addresses`. Asked of each master about itself: a
/// restarted master's `/redirect` may name the dead incarnation at its own address until that
/// one's ZooKeeper session expires, so "names itself" would mislead.
pub async fn master_leader(client: &reqwest::Client, addresses: &[String]) -> Option<String> {
    let answers = join_all(addresses.iter().map(|a| elected(client, a))).await;
    addresses
        .iter()
        .zip(answers)
        .find(|(_, leads)| *leads == Some(true))
        .map(|(own, _)| own.clone())
}

/// The Marathon leader's `ip:port` as the first instance that answers says.
pub async fn marathon_leader(client: &reqwest::Client, addresses: &[String]) -> Option<String> {
    let ask = |address: &String| {
        let url = format!("http://{address}/v2/leader");
        async move {
            let body = get_json(client, url).await?;
            body.get("leader")?.as_str().map(str::to_string)
        }
    };
    join_all(addresses.iter().map(ask))
        .await
        .into_iter()
        .flatten()
        .next()
}

/// How many agents the master at `leader` lists as active.
pub async fn active_agents(client: &reqwest::Client, leader: &str) -> Option<usize> {
    let body = get_json(client, format!("http://{leader}/slaves")).await?;
    let agents = body.get("slaves")?.as_array()?;
    Some(
        agents
            .iter()
            .filter(|a| a.get("active").and_then(|v| v.as_bool()).unwrap_or(false))
            .count(),
    )
}
