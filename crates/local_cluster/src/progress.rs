//! What the person sees while the cluster comes up and runs: one line per startup step with the
//! elapsed time (ZooKeeper serving, a leading master, agents registered, a Marathon leader), the
//! summary of every URL once ready, and then leader changes as the 500 ms poll observes them.
//!
//! The startup steps drive the supervisor too: a role is launched (`Event::Launch`) only when what
//! it needs serves, ZooKeeper first.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::layout::{Layout, Role};
use crate::supervisor::Event;
use crate::{probe, zookeeper};

/// How often startup steps and the leader watch poll.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long one startup step may take before the cluster is declared broken.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Seconds since the supervisor started, as a line prefix.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Prints `[  12.3s] text`.
    pub fn say(&self, text: &str) {
        println!("{}", stamped(self.elapsed(), text));
    }
}

pub fn stamped(elapsed: f64, text: &str) -> String {
    format!("[{elapsed:6.1}s] {text}")
}

/// Turns "who leads now" observations into lines, only when it changes.
#[derive(Debug, Clone, Default)]
pub struct LeaderTracker {
    /// What leads as last observed (None while nothing does).
    current: Option<String>,
    /// The last thing that led, kept across a gap with no leader, for the "was" part.
    last: Option<String>,
}

impl LeaderTracker {
    /// `who` is `(name, address)` of the leader now, if any; `what` is "master" or "Marathon".
    pub fn observe(&mut self, what: &str, who: Option<(&str, &str)>) -> Option<String> {
        match who {
            Some((name, address)) if self.current.as_deref() != Some(name) => {
                let was = match &self.last {
                    Some(last) if last != name => format!(", was {last}"),
                    Some(_) => ", again".to_string(),
                    None => String::new(),
                };
                let subject = if what == "master" {
                    "leader".to_string()
                } else {
                    format!("{what} leader")
                };
                let line = format!("{subject} is now {name} ({address}){was}");
                self.current = Some(name.to_string());
                self.last = Some(name.to_string());
                Some(line)
            }
            Some(_) => None,
            None => self
                .current
                .take()
                .map(|gone| format!("no {what} leads (was {gone}); waiting for an election")),
        }
    }
}

/// The name of the server of `role` at `address`.
pub fn name_at(layout: &Layout, role: Role, address: &str) -> Option<String> {
    layout
        .of_role(role)
        .find(|s| s.address() == address)
        .map(|s| s.name.clone())
}

fn addresses(layout: &Layout, role: Role) -> Vec<String> {
    layout.of_role(role).map(|s| s.address()).collect()
}

/// Waits until `check` gives a value, polling; Err names `what` after [`STEP_TIMEOUT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{what} did not happen within {} s",
                STEP_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Who led when the cluster became ready, as (name, address).
#[derive(Debug, Clone, Default)]
pub struct Leaders {
    pub master: Option<(String, String)>,
    pub marathon: Option<(String, String)>,
}

/// Launches the roles in order and reports each step; the leaders once the cluster is ready (the
/// summary printed). Err says which step did not happen in time.
pub async fn startup(
    layout: &Layout,
    events: &UnboundedSender<Event>,
    clock: Clock,
) -> Result<Leaders, String> {
    let mut leaders = Leaders::default();
    let client = probe::client();
    let logs = layout.dir.join("logs");
    let launch = |role| {
        events
            .send(Event::Launch(role))
            .map_err(|_| "the supervisor stopped".to_string())
    };

    launch(Role::ZooKeeper)?;
    let zk_ips = layout.zk_ips();
    let modes = wait_for("the ZooKeeper ensemble serving", || {
        let ips = zk_ips.clone();
        async move {
            let modes = futures::future::join_all(ips.iter().map(|ip| zookeeper::mode(*ip))).await;
            modes
                .iter()
                .all(|m| zookeeper::serving(m.as_deref()))
                .then_some(modes)
        }
    })
    .await
    .map_err(|e| format!("{e} (see {}/zookeeper-*.log)", logs.display()))?;
    let described: Vec<String> = layout
        .of_role(Role::ZooKeeper)
        .zip(&modes)
        .map(|(s, m)| format!("{} {}", s.name, m.as_deref().unwrap_or("?")))
        .collect();
    clock.say(&format!(
        "ZooKeeper ensemble serving ({})",
        described.join(", ")
    ));

    // Masters, agents and Marathons wait for what they need themselves (they retry ZooKeeper and
    // the leading master), so they start together once ZooKeeper serves.
    for role in Role::START_ORDER
        .into_iter()
        .filter(|r| *r != Role::ZooKeeper)
    {
        launch(role)?;
    }

    let masters = addresses(layout, Role::Master);
    let leader = wait_for("a master election", || {
        probe::master_leader(&client, &masters)
    })
    .await
    .map_err(|e| format!("{e} (see {}/master-*.log)", logs.display()))?;
    let leader_name = name_at(layout, Role::Master, &leader).unwrap_or_else(|| leader.clone());
    clock.say(&format!("leader elected: {leader_name} ({leader})"));
    leaders.master = Some((leader_name, leader));

    let wanted = layout.count(Role::Agent);
    // The last count printed (usize::MAX: none yet); atomic so the startup future stays Send.
    let reported = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let (client_ref, masters_ref, reported_ref) = (&client, &masters, &reported);
    wait_for("every agent registering", move || async move {
        let leader = probe::master_leader(client_ref, masters_ref).await?;
        let n = probe::active_agents(client_ref, &leader).await?;
        if reported_ref.swap(n, std::sync::atomic::Ordering::Relaxed) != n {
            clock.say(&format!("agents registered {n}/{wanted}"));
        }
        (n >= wanted).then_some(())
    })
    .await
    .map_err(|e| format!("{e} (see {}/agent-*.log)", logs.display()))?;

    if layout.count(Role::Marathon) > 0 {
        let marathons = addresses(layout, Role::Marathon);
        let leader = wait_for("a Marathon leader election", || {
            probe::marathon_leader(&client, &marathons)
        })
        .await
        .map_err(|e| format!("{e} (see {}/marathon-*.log)", logs.display()))?;
        let name = name_at(layout, Role::Marathon, &leader).unwrap_or_else(|| leader.clone());
        clock.say(&format!("Marathon leader elected: {name} ({leader})"));
        leaders.marathon = Some((name, leader));
    }
    println!("{}", summary(layout, clock.elapsed()));
    Ok(leaders)
}

/// Polls who leads every 500 ms and prints each change from `known`, until the task is dropped.
pub async fn watch_leaders(layout: &Layout, clock: Clock, known: Leaders) {
    let client = probe::client();
    let masters = addresses(layout, Role::Master);
    let marathons = addresses(layout, Role::Marathon);
    let mut master_tracker = LeaderTracker::default();
    let mut marathon_tracker = LeaderTracker::default();
    // What startup already announced is not news.
    let as_refs = |l: &Option<(String, String)>| l.as_ref().map(|(n, a)| (n.clone(), a.clone()));
    if let Some((n, a)) = as_refs(&known.master) {
        master_tracker.observe("master", Some((&n, &a)));
    }
    if let Some((n, a)) = as_refs(&known.marathon) {
        marathon_tracker.observe("Marathon", Some((&n, &a)));
    }
    loop {
        let leader = probe::master_leader(&client, &masters).await;
        let named = leader.as_ref().map(|a| {
            (
                name_at(layout, Role::Master, a).unwrap_or_else(|| a.clone()),
                a.clone(),
            )
        });
        if let Some(line) = master_tracker.observe(
            "master",
            named.as_ref().map(|(n, a)| (n.as_str(), a.as_str())),
        ) {
            clock.say(&line);
        }
        if !marathons.is_empty() {
            let leader = probe::marathon_leader(&client, &marathons).await;
            let named = leader.as_ref().map(|a| {
                (
                    name_at(layout, Role::Marathon, a).unwrap_or_else(|| a.clone()),
                    a.clone(),
                )
            });
            if let Some(line) = marathon_tracker.observe(
                "Marathon",
                named.as_ref().map(|(n, a)| (n.as_str(), a.as_str())),
            ) {
                clock.say(&line);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The block printed once the cluster is ready: every URL a person needs.
pub fn summary(layout: &Layout, elapsed: f64) -> String {
    let urls = |role| {
        layout
            .of_role(role)
            .map(|s| s.url())
            .collect::<Vec<_>>()
            .join("  ")
    };
    let dir = layout.dir.display();
    let mut lines = vec![
        format!(
            "tepui local cluster ready in {elapsed:.1} s: {} masters (quorum {}), {} agents, {} Marathons",
            layout.count(Role::Master),
            layout.quorum,
            layout.count(Role::Agent),
            layout.count(Role::Marathon)
        ),
        format!("  Mesos masters:   {}", urls(Role::Master)),
    ];
    if layout.count(Role::Marathon) > 0 {
        lines.push(format!("  Marathon UIs:    {}", urls(Role::Marathon)));
    }
    lines.extend([
        format!("  agents:          {}", urls(Role::Agent)),
        format!("  ZooKeeper:       {}", layout.zk_connect),
        format!("  Mesos zk URL:    {}   (tepui status --master {})", layout.mesos_zk_url(), layout.mesos_zk_url()),
        format!("  Marathon zk URL: {}", layout.marathon_zk_url()),
        format!("  directory:       {dir}   (logs in {dir}/logs, state in {dir}/cluster.json)"),
        format!("Ctrl-C stops the cluster. Try a failover: tepui local-cluster kill-leader [--marathon] --dir {dir}"),
    ]);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_changes_are_reported_once_with_the_previous_leader() {
        let mut t = LeaderTracker::default();
        assert_eq!(
            t.observe("master", Some(("master-1", "127.0.1.1:5050")))
                .unwrap(),
            "leader is now master-1 (127.0.1.1:5050)"
        );
        assert_eq!(
            t.observe("master", Some(("master-1", "127.0.1.1:5050"))),
            None
        );
        assert_eq!(
            t.observe("master", None).unwrap(),
            "no master leads (was master-1); waiting for an election"
        );
        assert_eq!(t.observe("master", None), None);
        assert_eq!(
            t.observe("master", Some(("master-3", "127.0.1.3:5050")))
                .unwrap(),
            "leader is now master-3 (127.0.1.3:5050), was master-1"
        );
        let mut m = LeaderTracker::default();
        m.observe("Marathon", Some(("marathon-1", "a")));
        assert_eq!(
            m.observe("Marathon", Some(("marathon-2", "b"))).unwrap(),
            "Marathon leader is now marathon-2 (b), was marathon-1"
        );
    }

    #[test]
    fn lines_carry_the_elapsed_time() {
        assert_eq!(
            stamped(3.21, "master-1 started"),
            "[   3.2s] master-1 started"
        );
    }
}
