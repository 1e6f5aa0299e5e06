//! Unit tests of `allocate` and `dominant_share`, and a seeded property test over random clusters.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

const EPS: f64 = 1e-9;

fn bag(text: &str) -> ResourceBag {
    ResourceBag::parse(text).unwrap()
}

fn agent(id: &str, available: &str) -> AgentView {
    AgentView {
        id: AgentId::new(id),
        hostname: format!("{id}.example"),
        available: bag(available),
        active: true,
    }
}

fn framework(id: &str, allocated: &str) -> FrameworkView {
    FrameworkView {
        id: FrameworkId::new(id),
        role: "*".to_string(),
        allocated: bag(allocated),
        active: true,
        suppressed: false,
    }
}

/// `n` identical agents `a00..` with `cpus:4;mem:1024`.
fn uniform_agents(n: usize) -> Vec<AgentView> {
    (0..n)
        .map(|i| agent(&format!("a{i:02}"), "cpus:4;mem:1024"))
        .collect()
}

fn sum(agents: &[AgentView]) -> ResourceBag {
    let mut total = ResourceBag::new();
    for a in agents {
        total.add(&a.available).unwrap();
    }
    total
}

fn count_for(allocations: &[Allocation], framework_id: &str) -> usize {
    allocations
        .iter()
        .filter(|a| a.framework_id.as_str() == framework_id)
        .count()
}

fn refuse(fw: &str, agent: &str, refused: &str, expires_at: f64) -> RefuseFilter {
    RefuseFilter {
        framework_id: FrameworkId::new(fw),
        agent_id: AgentId::new(agent),
        refused: bag(refused),
        expires_at,
    }
}

#[test]
fn dominant_share_is_the_largest_scalar_ratio() {
    let total = bag("cpus:10;mem:1000;disk:0;ports:[1-100]");
    assert_eq!(dominant_share(&bag("cpus:2;mem:500"), &total), 0.5);
    assert_eq!(dominant_share(&bag("cpus:3;mem:100"), &total), 0.3);
    assert_eq!(dominant_share(&ResourceBag::new(), &total), 0.0);
    // Names zero or absent in the total, and ranges, do not count.
    assert_eq!(
        dominant_share(&bag("cpus:1;disk:50;gpus:1;ports:[1-100]"), &total),
        0.1
    );
    assert_eq!(dominant_share(&bag("cpus:1"), &ResourceBag::new()), 0.0);
}

#[test]
fn two_equal_frameworks_alternate_and_stay_within_one_agent() {
    let agents = uniform_agents(10);
    let total = sum(&agents);
    let frameworks = [framework("fw-a", ""), framework("fw-b", "")];
    let one_agent = dominant_share(&agents[0].available, &total);
    for seed in 0..20 {
        let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, seed);
        assert_eq!(allocations.len(), 10, "seed {seed}");
        let mut held: BTreeMap<&str, ResourceBag> = BTreeMap::new();
        for (i, a) in allocations.iter().enumerate() {
            // Equal agents from equal starts: strictly alternating, the lower id first.
            let expected = if i % 2 == 0 { "fw-a" } else { "fw-b" };
            assert_eq!(a.framework_id.as_str(), expected, "seed {seed} step {i}");
            held.entry(a.framework_id.as_str())
                .or_default()
                .add(&a.resources)
                .unwrap();
            let share = |id: &str| held.get(id).map_or(0.0, |b| dominant_share(b, &total));
            assert!(
                (share("fw-a") - share("fw-b")).abs() <= one_agent + EPS,
                "seed {seed} step {i}"
            );
        }
        assert_eq!(count_for(&allocations, "fw-a"), 5);
        assert_eq!(count_for(&allocations, "fw-b"), 5);
    }
}

#[test]
fn framework_holding_more_gets_fewer_agents() {
    // The cluster is 20 agents' worth; fw-a already holds 6 of them, 10 are free.
    let agents = uniform_agents(10);
    let total = bag("cpus:80;mem:20480");
    let frameworks = [framework("fw-a", "cpus:24;mem:6144"), framework("fw-b", "")];
    for seed in 0..20 {
        let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, seed);
        // fw-b catches up (6 agents), then they alternate with fw-a first on the tie: 8 to 2.
        assert_eq!(count_for(&allocations, "fw-b"), 8, "seed {seed}");
        assert_eq!(count_for(&allocations, "fw-a"), 2, "seed {seed}");
        assert!(allocations[..6]
            .iter()
            .all(|a| a.framework_id.as_str() == "fw-b"));
    }
}

#[test]
fn the_dominant_resource_decides_not_the_sum() {
    // fw-mem holds 40% of memory but little cpu; fw-cpu holds 30% of cpu. DRF favours fw-cpu.
    let agents = [agent("a1", "cpus:1;mem:100")];
    let total = bag("cpus:10;mem:1000");
    let frameworks = [
        framework("fw-cpu", "cpus:3;mem:0"),
        framework("fw-mem", "cpus:0.1;mem:400"),
    ];
    let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, 1);
    assert_eq!(allocations.len(), 1);
    assert_eq!(allocations[0].framework_id.as_str(), "fw-cpu");
    assert_eq!(
        allocations[0].resources, agents[0].available,
        "the whole agent is offered"
    );
}

#[test]
fn filters_are_honoured_until_expiry_and_lifted_by_clear_framework() {
    let agents = [agent("a1", "cpus:4;mem:1024")];
    let total = sum(&agents);
    let frameworks = [framework("fw-a", "")];
    let mut filters = Filters::new();
    filters.add(refuse("fw-a", "a1", "cpus:4;mem:1024", 10.0));

    assert!(allocate(&total, &agents, &frameworks, &filters, 5.0, 0).is_empty());
    assert!(allocate(&total, &agents, &frameworks, &filters, 9.99, 0).is_empty());
    assert_eq!(
        allocate(&total, &agents, &frameworks, &filters, 10.0, 0).len(),
        1,
        "expired"
    );
    assert_eq!(filters.next_expiry(), Some(10.0));

    filters.clear_framework(&FrameworkId::new("fw-a"));
    let allocations = allocate(&total, &agents, &frameworks, &filters, 5.0, 0);
    assert_eq!(allocations.len(), 1, "REVIVE lifts the filter");
    assert_eq!(allocations[0].framework_id.as_str(), "fw-a");
}

#[test]
fn a_filtered_framework_is_passed_over_for_the_next_in_drf_order() {
    let agents = [
        agent("a1", "cpus:4;mem:1024"),
        agent("a2", "cpus:4;mem:1024"),
    ];
    let total = sum(&agents);
    let frameworks = [framework("fw-a", ""), framework("fw-b", "cpus:2")];
    let mut filters = Filters::new();
    filters.add(refuse("fw-a", "a1", "cpus:4;mem:1024", 10.0));
    for seed in 0..10 {
        let allocations = allocate(&total, &agents, &frameworks, &filters, 0.0, seed);
        let on = |agent: &str| {
            allocations
                .iter()
                .find(|a| a.agent_id.as_str() == agent)
                .map(|a| a.framework_id.as_str())
        };
        assert_eq!(on("a1"), Some("fw-b"), "seed {seed}");
        assert_eq!(on("a2"), Some("fw-a"), "seed {seed}");
    }
}

#[test]
fn a_filter_does_not_apply_when_the_agent_now_has_more() {
    let total = bag("cpus:4;mem:1024");
    let frameworks = [framework("fw-a", "")];
    let mut filters = Filters::new();
    filters.add(refuse("fw-a", "a1", "cpus:2;mem:512", 10.0));

    let grown = [agent("a1", "cpus:4;mem:1024")];
    assert_eq!(
        allocate(&total, &grown, &frameworks, &filters, 0.0, 0).len(),
        1
    );
    let same = [agent("a1", "cpus:2;mem:512")];
    assert!(allocate(&total, &same, &frameworks, &filters, 0.0, 0).is_empty());
    let shrunk = [agent("a1", "cpus:1;mem:512")];
    assert!(allocate(&total, &shrunk, &frameworks, &filters, 0.0, 0).is_empty());
    let new_ports = [agent("a1", "cpus:1;mem:512;ports:[31000-31000]")];
    assert_eq!(
        allocate(&total, &new_ports, &frameworks, &filters, 0.0, 0).len(),
        1
    );
}

#[test]
fn suppressed_and_inactive_frameworks_get_nothing() {
    let agents = uniform_agents(4);
    let total = sum(&agents);
    let mut suppressed = framework("fw-a", "");
    suppressed.suppressed = true;
    let mut inactive = framework("fw-b", "");
    inactive.active = false;
    let busy = framework("fw-c", "cpus:16;mem:4096");

    let only_idle = [suppressed.clone(), inactive.clone()];
    assert!(allocate(&total, &agents, &only_idle, &Filters::new(), 0.0, 3).is_empty());
    assert!(allocate(&total, &agents, &[], &Filters::new(), 0.0, 3).is_empty());

    // Even with the lowest shares they are passed over for a framework holding everything.
    let all = [suppressed, inactive, busy];
    let allocations = allocate(&total, &agents, &all, &Filters::new(), 0.0, 3);
    assert_eq!(allocations.len(), 4);
    assert!(allocations
        .iter()
        .all(|a| a.framework_id.as_str() == "fw-c"));
}

#[test]
fn deterministic_for_a_seed_and_independent_of_input_order() {
    let agents: Vec<AgentView> = (0..8)
        .map(|i| agent(&format!("a{i}"), &format!("cpus:{};mem:512", i + 1)))
        .collect();
    let total = sum(&agents);
    let frameworks = [
        framework("f1", "cpus:1"),
        framework("f2", ""),
        framework("f3", "mem:100"),
    ];
    let filters = Filters::new();
    for seed in [0, 1, 42, u64::MAX] {
        let first = allocate(&total, &agents, &frameworks, &filters, 0.0, seed);
        assert_eq!(
            first,
            allocate(&total, &agents, &frameworks, &filters, 0.0, seed)
        );
        let mut reversed_agents = agents.clone();
        reversed_agents.reverse();
        let mut reversed_frameworks = frameworks.to_vec();
        reversed_frameworks.reverse();
        assert_eq!(
            first,
            allocate(
                &total,
                &reversed_agents,
                &reversed_frameworks,
                &filters,
                0.0,
                seed
            )
        );
    }
}

#[test]
fn no_agent_is_always_first() {
    let agents = uniform_agents(6);
    let total = sum(&agents);
    let frameworks = [framework("fw-a", "")];
    let mut firsts = BTreeSet::new();
    for seed in 0..200 {
        let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, seed);
        assert_eq!(allocations.len(), 6);
        firsts.insert(allocations[0].agent_id.clone());
    }
    assert_eq!(
        firsts.len(),
        6,
        "every agent comes first for some seed: {firsts:?}"
    );
}

#[test]
fn inactive_and_unallocatable_agents_are_skipped() {
    let mut inactive = agent("a-inactive", "cpus:8;mem:8192");
    inactive.active = false;
    let agents = [
        inactive,
        agent("a-disk-only", "disk:1000;ports:[31000-32000]"),
        agent("a-crumbs", "cpus:0.009;mem:31"),
        agent("a-min-cpus", "cpus:0.01"),
        agent("a-min-mem", "mem:32"),
        agent("a-normal", "cpus:2;mem:256"),
    ];
    let total = bag("cpus:16;mem:16384;disk:1000");
    let frameworks = [framework("fw-a", "")];
    for seed in 0..10 {
        let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, seed);
        let got: BTreeSet<&str> = allocations.iter().map(|a| a.agent_id.as_str()).collect();
        assert_eq!(
            got,
            BTreeSet::from(["a-min-cpus", "a-min-mem", "a-normal"]),
            "seed {seed}"
        );
    }
}

#[test]
fn a_repeated_agent_id_is_allocated_once() {
    let agents = [
        agent("a1", "cpus:4;mem:1024"),
        agent("a1", "cpus:4;mem:1024"),
    ];
    let total = bag("cpus:4;mem:1024");
    let frameworks = [framework("fw-a", ""), framework("fw-b", "")];
    let allocations = allocate(&total, &agents, &frameworks, &Filters::new(), 0.0, 9);
    assert_eq!(allocations.len(), 1);
}

// ---- seeded property test ----

fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn chance(rng: &mut SplitMix64, p: f64) -> bool {
    unit(rng) < p
}

/// A random resource bag: cpus and mem are sometimes absent, tiny, or just below the minimum.
fn random_bag(rng: &mut SplitMix64) -> ResourceBag {
    let mut b = ResourceBag::new();
    let cpus = [0.0, 0.005, 0.01, 0.5, 1.0, 2.0, 4.0, 8.0][rng.below(8) as usize];
    let mem = [0.0, 16.0, 31.9, 32.0, 128.0, 1024.0, 4096.0][rng.below(7) as usize];
    if cpus > 0.0 {
        b.set_scalar("cpus", cpus);
    }
    if mem > 0.0 {
        b.set_scalar("mem", mem);
    }
    if chance(rng, 0.5) {
        b.set_scalar("disk", (rng.below(4) * 1000) as f64);
    }
    if chance(rng, 0.4) {
        let begin = 31000 + rng.below(100);
        b.set_ranges("ports", vec![(begin, begin + rng.below(50))]);
    }
    b
}

/// `bag` with every scalar multiplied by `factor`.
fn scaled(bag: &ResourceBag, factor: f64) -> ResourceBag {
    let mut out = bag.clone();
    for name in bag.names() {
        if let Some(ResourceValue::Scalar(v)) = bag.get(name) {
            out.set_scalar(name, v * factor);
        }
    }
    out
}

struct Cluster {
    total: ResourceBag,
    agents: Vec<AgentView>,
    frameworks: Vec<FrameworkView>,
    filters: Filters,
    now: f64,
}

fn random_cluster(seed: u64) -> Cluster {
    let mut rng = SplitMix64::new(seed ^ 0x5EED_C1A5);
    let now = 100.0;
    let agents: Vec<AgentView> = (0..rng.below(13))
        .map(|i| AgentView {
            id: AgentId::new(format!("agent-{i:02}")),
            hostname: format!("h{i}"),
            available: random_bag(&mut rng),
            active: chance(&mut rng, 0.85),
        })
        .collect();
    let mut total = sum(&agents);
    total
        .add(&scaled(&bag("cpus:8;mem:8192"), 1.0 + rng.below(4) as f64))
        .unwrap();
    let frameworks: Vec<FrameworkView> = (0..rng.below(6))
        .map(|i| FrameworkView {
            id: FrameworkId::new(format!("fw-{i}")),
            role: "*".to_string(),
            allocated: scaled(&random_bag(&mut rng), unit(&mut rng)),
            active: chance(&mut rng, 0.8),
            suppressed: chance(&mut rng, 0.2),
        })
        .collect();
    let mut filters = Filters::new();
    if !agents.is_empty() && !frameworks.is_empty() {
        for _ in 0..rng.below(10) {
            let a = &agents[rng.below(agents.len() as u64) as usize];
            let f = &frameworks[rng.below(frameworks.len() as u64) as usize];
            // Refused exactly what is there, less, or more; expiring before or after `now`.
            let refused = match rng.below(3) {
                0 => a.available.clone(),
                1 => scaled(&a.available, 0.5),
                _ => scaled(&a.available, 2.0),
            };
            let expires_at = now - 5.0 + 10.0 * unit(&mut rng);
            filters.add(RefuseFilter {
                framework_id: f.id.clone(),
                agent_id: a.id.clone(),
                refused,
                expires_at,
            });
        }
    }
    Cluster {
        total,
        agents,
        frameworks,
        filters,
        now,
    }
}

#[test]
fn property_invariants_hold_over_200_seeded_clusters() {
    let mut allocated_somewhere = 0;
    for seed in 0..200u64 {
        let c = random_cluster(seed);
        let allocations = allocate(&c.total, &c.agents, &c.frameworks, &c.filters, c.now, seed);
        assert_eq!(
            allocations,
            allocate(&c.total, &c.agents, &c.frameworks, &c.filters, c.now, seed),
            "seed {seed}"
        );
        allocated_somewhere += allocations.len();

        let eligible: Vec<&FrameworkView> = c
            .frameworks
            .iter()
            .filter(|f| f.active && !f.suppressed)
            .collect();
        let mut held: BTreeMap<&FrameworkId, ResourceBag> = eligible
            .iter()
            .map(|f| (&f.id, f.allocated.clone()))
            .collect();
        let mut seen = BTreeSet::new();
        for a in &allocations {
            assert!(
                seen.insert(a.agent_id.clone()),
                "seed {seed}: {} allocated twice",
                a.agent_id
            );
            let agent = c
                .agents
                .iter()
                .find(|x| x.id == a.agent_id)
                .expect("allocated agent exists");
            assert!(
                agent.active && is_allocatable(&agent.available),
                "seed {seed}: {}",
                agent.id
            );
            assert!(
                agent.available.contains(&a.resources),
                "seed {seed}: more than available on {}",
                agent.id
            );
            let fw = c
                .frameworks
                .iter()
                .find(|f| f.id == a.framework_id)
                .expect("framework exists");
            assert!(
                fw.active && !fw.suppressed,
                "seed {seed}: {} is not eligible",
                fw.id
            );
            assert!(
                !c.filters
                    .is_filtered(&fw.id, &agent.id, &a.resources, c.now),
                "seed {seed}: filtered"
            );

            // DRF: no other unfiltered eligible framework ranked strictly before the chosen one.
            let share = |id: &FrameworkId| dominant_share(&held[id], &c.total);
            let chosen = (share(&fw.id), &fw.id);
            for other in &eligible {
                if other.id != fw.id
                    && !c
                        .filters
                        .is_filtered(&other.id, &agent.id, &agent.available, c.now)
                {
                    let theirs = (share(&other.id), &other.id);
                    assert!(
                        chosen.0 < theirs.0 || (chosen.0 == theirs.0 && chosen.1 < theirs.1),
                        "seed {seed}: {} chosen over {} on {}",
                        fw.id,
                        other.id,
                        agent.id
                    );
                }
            }
            held.get_mut(&fw.id).unwrap().add(&a.resources).unwrap();
        }

        // Nothing offerable is left behind: an agent not allocated had no unfiltered eligible taker.
        for agent in c
            .agents
            .iter()
            .filter(|a| a.active && is_allocatable(&a.available))
        {
            if !seen.contains(&agent.id) {
                assert!(
                    eligible.iter().all(|f| c.filters.is_filtered(
                        &f.id,
                        &agent.id,
                        &agent.available,
                        c.now
                    )),
                    "seed {seed}: {} left unallocated",
                    agent.id
                );
            }
        }
    }
    assert!(
        allocated_somewhere > 200,
        "the generator should produce real work, got {allocated_somewhere}"
    );
}
