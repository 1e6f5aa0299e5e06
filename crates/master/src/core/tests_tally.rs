//! Every framework's resource tally (`ActiveTasks`) against a full recount of its tasks, after every
//! step of a seeded random run: launches, status updates (terminal or not), agents unreachable,
//! re-registering, marked gone, framework teardowns, failover timeouts and allocation rounds.
//! A failure names its seed and step; `TALLY_SEED=<n>` replays one seed.

use super::tests::{accept, core, framework_info, task};
use super::*;
use proto::agent_protocol::{ReportedTask, StatusUpdate};
use proto::scheduler::Call;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=6;
const STEPS_PER_SEED: usize = 400;
const AGENTS_MAX: usize = 4;
const FRAMEWORKS_MAX: usize = 3;
/// Every agent hands out the same ports, so one framework's tasks on two agents can hold the same
/// port: the case where a union of ports cannot be undone by subtraction.
const AGENT_RESOURCES: &str = "cpus:4;mem:1024;gpus:0;ports:[31000-31005];zones:{a,b,c}";

/// The allocator's seeded generator, with the picks this test needs.
struct Rng(allocator::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}

/// What the run did, so the test can insist it exercised every path.
#[derive(Debug, Default)]
struct Tried {
    launched: usize,
    nonterminal_updates: usize,
    terminal_updates: usize,
    unreachable: usize,
    returned: usize,
    reregistered: usize,
    gone: usize,
    teardowns: usize,
    shared_ports: usize,
}

struct Run {
    core: Core,
    rng: Rng,
    now: f64,
    next_task: u64,
    next_uuid: u64,
    connection: u64,
    tried: Tried,
}

impl Run {
    fn new(seed: u64) -> Self {
        Run {
            core: core(),
            rng: Rng(allocator::SplitMix64::new(seed)),
            now: 0.0,
            next_task: 0,
            next_uuid: 0,
            connection: 0,
            tried: Tried::default(),
        }
    }

    fn add_agent(&mut self) {
        let id = self.core.next_agent_id();
        let info = AgentInfo {
            id: None,
            hostname: format!("h-{}", id.value),
            port: 5051,
            resources: ResourceBag::parse(AGENT_RESOURCES)
                .unwrap()
                .to_resources(None),
            attributes: vec![],
        };
        self.connection += 1;
        self.core
            .register_agent(
                self.now,
                id,
                info,
                "127.0.0.1:5051".into(),
                "1.11.0".into(),
                self.connection,
            )
            .unwrap();
    }

    fn subscribe(&mut self) {
        let mut info = framework_info(self.rng.below(2) == 0);
        info.name = format!("f{}", self.rng.next() % 1000);
        self.core
            .subscribe(self.now, info, format!("s{}", self.rng.next()))
            .unwrap();
    }

    /// Accepts an outstanding offer with 1-3 tasks of assorted sizes, some with a port or a zone.
    fn launch(&mut self) {
        let mut offer_ids: Vec<&OfferId> = self.core.offers.keys().collect();
        offer_ids.sort();
        let Some(offer) = self
            .rng
            .pick(&offer_ids)
            .map(|id| self.core.offers[*id].clone())
        else {
            return;
        };
        let mut free_ports: Vec<u64> = offer
            .resources
            .ranges("ports")
            .into_iter()
            .flat_map(|(b, e)| b..=e)
            .collect();
        let mut tasks = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let cpus = ["0.1", "0.25", "0.3", "0.333", "1"][self.rng.below(5)];
            let mem = ["16", "32", "64.5", "100"][self.rng.below(4)];
            let mut resources = format!("cpus:{cpus};mem:{mem}");
            if self.rng.below(3) > 0 && !free_ports.is_empty() {
                let port = free_ports.remove(self.rng.below(free_ports.len()));
                resources.push_str(&format!(";ports:[{port}-{port}]"));
            }
            if self.rng.below(4) == 0 {
                resources.push_str(&format!(
                    ";zones:{{{}}}",
                    ["a", "b", "c"][self.rng.below(3)]
                ));
            }
            if self.rng.below(6) == 0 {
                resources.push_str(";gpus:0");
            }
            self.next_task += 1;
            tasks.push(task(
                &format!("t{}", self.next_task),
                &offer.agent_id,
                &resources,
            ));
        }
        let before = self
            .core
            .frameworks
            .get(&offer.framework_id)
            .map_or(0, |f| f.tasks.len());
        self.core
            .apply_call(self.now, &offer.framework_id, accept(&offer.id, tasks))
            .unwrap();
        let after = self
            .core
            .frameworks
            .get(&offer.framework_id)
            .map_or(0, |f| f.tasks.len());
        self.tried.launched += after.saturating_sub(before);
    }

    /// A status update from the task's agent: RUNNING (again) or one of the terminal states.
    fn status_update(&mut self) {
        let tasks: Vec<(FrameworkId, TaskId, AgentId)> = self
            .core
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values())
            .map(|t| {
                (
                    t.framework_id.clone(),
                    t.info.task_id.clone(),
                    t.agent_id.clone(),
                )
            })
            .collect();
        let Some((framework_id, task_id, agent_id)) = self.rng.pick(&tasks).cloned() else {
            return;
        };
        let states = [
            TaskState::TaskRunning,
            TaskState::TaskRunning,
            TaskState::TaskFinished,
            TaskState::TaskFailed,
            TaskState::TaskKilled,
        ];
        let state = states[self.rng.below(states.len())];
        let mut status = TaskStatus::new(task_id, state);
        self.next_uuid += 1;
        status.uuid = Some(format!("u{}", self.next_uuid));
        let known_agent = self.core.agents.get(&agent_id).is_some_and(|a| a.connected);
        self.core.status_update(
            self.now,
            &agent_id,
            StatusUpdate {
                framework_id,
                status,
            },
        );
        if known_agent {
            if state.is_terminal() {
                self.tried.terminal_updates += 1;
            } else {
                self.tried.nonterminal_updates += 1;
            }
        }
    }

    fn agent_ids(&self) -> Vec<AgentId> {
        self.core.agents.keys().cloned().collect()
    }

    fn mark_unreachable(&mut self) {
        let Some(id) = self.rng.pick(&self.agent_ids()).cloned() else {
            return;
        };
        self.core.mark_unreachable(self.now, &id);
        self.tried.unreachable += 1;
    }

    fn mark_gone(&mut self) {
        let Some(id) = self.rng.pick(&self.agent_ids()).cloned() else {
            return;
        };
        self.core.mark_gone(self.now, &id);
        self.tried.gone += 1;
    }

    /// The agent (re-)registers reporting the tasks the master knows for it (active or kept aside
    /// as unreachable), less one it may have lost, as an agent's report is authoritative.
    fn reregister(&mut self, id: AgentId, back_from_unreachable: bool) {
        let mut reported: Vec<ReportedTask> = self
            .core
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values().chain(f.unreachable_tasks.values()))
            .filter(|t| t.agent_id == id)
            .map(|t| ReportedTask {
                framework_id: t.framework_id.clone(),
                task: t.info.clone(),
                state: TaskState::TaskRunning,
                latest_status: None,
            })
            .collect();
        if !reported.is_empty() && self.rng.below(3) == 0 {
            reported.remove(self.rng.below(reported.len()));
        }
        let frameworks: Vec<FrameworkInfo> = self
            .core
            .frameworks
            .values()
            .map(|f| f.info.clone())
            .collect();
        let info = AgentInfo {
            id: Some(id.clone()),
            hostname: format!("h-{}", id.value),
            port: 5051,
            resources: ResourceBag::parse(AGENT_RESOURCES)
                .unwrap()
                .to_resources(None),
            attributes: vec![],
        };
        self.connection += 1;
        self.core
            .reregister_agent(
                self.now,
                id.clone(),
                info,
                "127.0.0.1:5051".into(),
                "1.11.0".into(),
                self.connection,
                reported,
                frameworks,
            )
            .unwrap();
        if back_from_unreachable {
            self.core.agent_reachable_again(self.now, &id);
            self.tried.returned += 1;
        } else {
            self.tried.reregistered += 1;
        }
    }

    fn teardown(&mut self) {
        let ids: Vec<FrameworkId> = self.core.frameworks.keys().cloned().collect();
        let Some(id) = self.rng.pick(&ids).cloned() else {
            return;
        };
        self.core
            .apply_call(self.now, &id, Call::new("TEARDOWN", Some(id.clone())))
            .unwrap();
        self.tried.teardowns += 1;
    }

    /// The scheduler's stream drops; after its failover timeout the next tick removes it.
    fn disconnect_framework(&mut self) {
        let ids: Vec<FrameworkId> = self.core.frameworks.keys().cloned().collect();
        let Some(id) = self.rng.pick(&ids).cloned() else {
            return;
        };
        if let Some(stream) = self.core.frameworks[&id].stream_id.clone() {
            self.core.framework_disconnected(self.now, &id, &stream);
        }
    }

    fn step(&mut self) {
        self.now += 1.0 + self.rng.below(10) as f64;
        match self.rng.below(100) {
            0..=29 => self.launch(),
            30..=59 => self.status_update(),
            60..=69 => {
                self.core.tick(self.now);
            }
            70..=73 => self.mark_unreachable(),
            74..=77 => {
                let ids: Vec<AgentId> = self.core.unreachable_agents.keys().cloned().collect();
                if let Some(id) = self.rng.pick(&ids).cloned() {
                    self.reregister(id, true);
                }
            }
            78..=81 => {
                if let Some(id) = self.rng.pick(&self.agent_ids()).cloned() {
                    self.reregister(id, false);
                }
            }
            82..=83 => self.mark_gone(),
            84..=86 => self.teardown(),
            87..=88 => self.disconnect_framework(),
            _ => {
                if self.core.agents.len() < AGENTS_MAX {
                    self.add_agent();
                }
                if self.core.frameworks.len() < FRAMEWORKS_MAX {
                    self.subscribe();
                }
            }
        }
    }

    fn count_shared_ports(&mut self) {
        for framework in self.core.frameworks.values() {
            let mut seen = std::collections::BTreeSet::new();
            if framework
                .tasks
                .values()
                .flat_map(|t| t.resources.ranges("ports"))
                .any(|range| !seen.insert(range))
            {
                self.tried.shared_ports += 1;
            }
        }
    }
}

/// The tally rebuilt from nothing, and the bag summed the way `used()` once did, task by task.
fn recount(tasks: &ActiveTasks) -> (ResourceTally, ResourceBag) {
    let mut tally = ResourceTally::new();
    let mut summed = ResourceBag::new();
    for task in tasks.values() {
        tally.add(&task.resources);
        summed.add(&task.resources).unwrap();
    }
    (tally, summed)
}

fn check(framework: &Framework, seed: u64, step: usize) {
    let context = format!("seed {seed} step {step} framework {}", framework.id);
    let (tally, summed) = recount(&framework.tasks);
    assert_eq!(
        framework.tasks.tally(),
        &tally,
        "{context}: the kept tally differs from a recount"
    );
    let used = framework.used();
    assert_eq!(
        used.names().collect::<Vec<_>>(),
        summed.names().collect::<Vec<_>>(),
        "{context}"
    );
    for name in summed.names() {
        match (used.get(name), summed.get(name)) {
            // The tally sums exactly and rounds once; the task-by-task f64 sum rounds at each step.
            (Some(ResourceValue::Scalar(kept)), Some(ResourceValue::Scalar(naive))) => {
                assert!(
                    (kept - naive).abs() <= 1e-9 * naive.abs().max(1.0),
                    "{context}: {name} {kept} vs {naive}"
                )
            }
            (kept, naive) => assert_eq!(kept, naive, "{context}: {name}"),
        }
    }
    let scalars = framework.used_scalars();
    for name in used.names() {
        if let Some(ResourceValue::Scalar(amount)) = used.get(name) {
            assert_eq!(scalars.scalar(name), *amount, "{context}: {name}");
        }
    }
    assert_eq!(
        scalars.names().count(),
        used.names()
            .filter(|n| matches!(used.get(n), Some(ResourceValue::Scalar(_))))
            .count(),
        "{context}"
    );
}

#[test]
fn framework_tallies_equal_a_full_recount_after_every_step() {
    let seeds: Vec<u64> = match std::env::var("TALLY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => SEEDS.collect(),
    };
    let mut total = Tried::default();
    for seed in seeds {
        let mut run = Run::new(seed);
        for _ in 0..2 {
            run.add_agent();
        }
        run.subscribe();
        run.subscribe();
        for step in 0..STEPS_PER_SEED {
            run.step();
            run.count_shared_ports();
            for framework in run
                .core
                .frameworks
                .values()
                .chain(run.core.completed_frameworks.iter())
            {
                check(framework, seed, step);
            }
        }
        let t = run.tried;
        total.launched += t.launched;
        total.nonterminal_updates += t.nonterminal_updates;
        total.terminal_updates += t.terminal_updates;
        total.unreachable += t.unreachable;
        total.returned += t.returned;
        total.reregistered += t.reregistered;
        total.gone += t.gone;
        total.teardowns += t.teardowns;
        total.shared_ports += t.shared_ports;
    }
    // The run must have gone through every path it claims to check.
    let t = &total;
    assert!(
        t.launched > 0
            && t.nonterminal_updates > 0
            && t.terminal_updates > 0
            && t.unreachable > 0
            && t.returned > 0
            && t.reregistered > 0
            && t.gone > 0
            && t.teardowns > 0
            && t.shared_ports > 0,
        "{t:?}"
    );
}
