//! How long one allocation round takes as a framework's task count grows.
//!
//! `cargo bench -p master --bench allocation_round` (add `-- 1000 10000` for other task counts).
//! Builds a core with one Marathon-like framework whose tasks (0.1 cpus, 32 MB, one port each) fill
//! 100 agents, plus a second framework with none, then times `Core::allocate` with every agent's
//! remaining resources already offered: what is left is the per-round work of building the
//! allocator's views, which must not grow with the number of tasks. Uses only `Core`'s public API.

use master::core::{Core, CoreConfig, Effect};
use proto::agent_protocol::AgentInfo;
use proto::scheduler::{Accept, Call, Launch, Operation};
use proto::{FrameworkInfo, MasterInfo, ResourceBag, TaskInfo};
use std::time::Instant;

const AGENTS: usize = 100;
const ROUNDS: usize = 2_000;

fn core_with_tasks(tasks: usize) -> Core {
    let info = MasterInfo::new(
        "bench".into(),
        "127.0.0.1".parse().expect("an address"),
        5050,
        "localhost".into(),
    );
    let mut core = Core::new(info, CoreConfig::default());
    let per_agent = tasks.div_ceil(AGENTS);
    let resources = format!(
        "cpus:{};mem:{};ports:[31000-{}]",
        per_agent,
        per_agent * 64,
        31000 + per_agent * 2
    );
    for n in 0..AGENTS {
        let id = core.next_agent_id();
        let agent = AgentInfo {
            id: None,
            hostname: format!("agent{n}"),
            port: 5051,
            resources: ResourceBag::parse(&resources)
                .expect("agent resources")
                .to_resources(None),
            attributes: vec![],
        };
        core.register_agent(
            0.0,
            id,
            agent,
            format!("10.0.{}.{}:5051", n / 250, n % 250),
            "1.11.0".into(),
            1,
        )
        .expect("registers");
    }
    let framework: FrameworkInfo =
        serde_json::from_str(r#"{"user":"u","name":"marathon","failover_timeout":600}"#)
            .expect("framework info");
    let marathon = core
        .subscribe(1.0, framework.clone(), "s1".into())
        .expect("subscribes")
        .framework_id;
    let mut left = tasks;
    let mut next_task = 0;
    for effect in core.allocate(2.0) {
        let Effect::ToFramework(_, event) = effect else {
            continue;
        };
        for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
            let take = per_agent.min(left);
            left -= take;
            let task_infos: Vec<TaskInfo> = (0..take)
                .map(|i| {
                    next_task += 1;
                    let port = 31000 + i;
                    let resources = ResourceBag::parse(&format!("cpus:0.1;mem:32;ports:[{port}-{port}]")).expect("task resources");
                    serde_json::from_value(serde_json::json!({
                        "name": "app", "task_id": {"value": format!("app.{next_task}")}, "agent_id": {"value": offer.agent_id.value},
                        "resources": resources.to_resources(Some("*")), "command": {"value": "sleep 1000"}
                    }))
                    .expect("task info")
                })
                .collect();
            let mut call = Call::new("ACCEPT", Some(marathon.clone()));
            call.accept = Some(Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![Operation {
                    kind: "LAUNCH".into(),
                    id: None,
                    launch: Some(Launch { task_infos }),
                    launch_group: None,
                }],
                filters: None,
            });
            core.apply_call(3.0, &marathon, call).expect("accepts");
        }
    }
    let mut other = framework;
    other.name = "other".into();
    core.subscribe(4.0, other, "s2".into()).expect("subscribes");
    let launched: usize = core.frameworks.values().map(|f| f.tasks.len()).sum();
    assert_eq!(launched, tasks, "every task launched");
    // Offer what is left so later rounds have nothing to hand out: only the views are built.
    core.allocate(100.0);
    core
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1_000, 10_000]
    } else {
        counts
    };
    for tasks in counts {
        let mut core = core_with_tasks(tasks);
        let started = Instant::now();
        for round in 0..ROUNDS {
            let effects = core.allocate(200.0 + round as f64);
            assert!(effects.is_empty(), "nothing left to offer");
        }
        let per_round = started.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64;
        println!("allocation round: {tasks:>6} tasks on {AGENTS} agents, 2 frameworks: {per_round:>9.1} us/round ({ROUNDS} rounds)");
    }
}
