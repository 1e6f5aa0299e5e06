//! The offer allocator: which framework each agent's free resources are offered to.
//!
//! What: one allocation round is [`allocate`], a pure function of a snapshot (agents, frameworks,
//! refuse [`Filters`], the time `now` and a `seed`) that returns a list of [`Allocation`]s; the
//! master turns each into an offer. [`Filters`] holds the DECLINE/ACCEPT `refuse_seconds` filters.
//!
//! Why this shape: the fairness policy is Dominant Resource Fairness (Ghodsi et al., "Dominant
//! Resource Fairness: Fair Allocation of Multiple Resource Types", NSDI 2011): a framework's
//! *dominant share* is its largest share of any one resource, and resources go next to the framework
//! whose dominant share is lowest. The round itself follows Mesos' hierarchical allocator
//! (`src/master/allocator/mesos/hierarchical.cpp`, `__allocate`): agents are visited in a random
//! order so no agent is always offered first, and each agent's *whole* available bag is offered to
//! one framework, the one the DRF sorter puts first, whose allocation then grows before the next
//! agent is considered. Whole-agent offers keep the number of offers small and let a framework pack
//! its own tasks; fairness is restored over rounds as offers are declined or used.
//!
//! Architecture invariant: this crate does no I/O, reads no clock and has no randomness of its own.
//! Time is `now` in seconds and the shuffle is driven by `seed`, so a round replays exactly from its
//! inputs (the input order of `agents` and `frameworks` does not matter either).
//!
//! Out of scope for now: role weights, quota, reservations and the two-level (role, then framework)
//! sort of Mesos. The extension point is `Candidate::rank`, the DRF order used to pick a framework:
//! a role-level share or a weight would enter there; `FrameworkView::role` is already carried for it.

mod filters;
mod rng;
/// The allocator's seeded generator, also for other crates' seeded tests and simulations.
pub use rng::SplitMix64;

#[cfg(test)]
mod tests;

pub use filters::{Filters, RefuseFilter};

use proto::{AgentId, FrameworkId, ResourceBag, ResourceValue};
use std::cmp::Ordering;

/// Mesos' minimum allocatable resources (`src/master/constants.hpp`: `MIN_CPUS`, `MIN_MEM`): an agent
/// whose available bag has less than both is not offered, since no task could be launched on it.
pub const MIN_ALLOCATABLE_CPUS: f64 = 0.01;
/// See [`MIN_ALLOCATABLE_CPUS`]; in MB, the unit of the `mem` resource.
pub const MIN_ALLOCATABLE_MEM_MB: f64 = 32.0;

/// An agent as the allocator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    pub id: AgentId,
    pub hostname: String,
    /// Total minus used minus offered.
    pub available: ResourceBag,
    pub active: bool,
}

/// A framework as the allocator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkView {
    pub id: FrameworkId,
    /// The role its offers are allocated to (first of its roles).
    pub role: String,
    /// Used by its tasks + currently offered to it. Only its scalars are read (DRF shares), so a
    /// caller may leave ranges and sets out.
    pub allocated: ResourceBag,
    /// Connected and not torn down.
    pub active: bool,
    /// SUPPRESS without later REVIVE.
    pub suppressed: bool,
}

/// One agent's available resources, to be offered to one framework.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub resources: ResourceBag,
}

/// The dominant share of `allocated` in `total`: the maximum over scalar resource names of
/// `allocated / total` (DRF, Ghodsi et al. section 4). Names absent or zero in `total`, and
/// non-scalar resources (ranges, sets), do not count; an empty `total` gives 0.
pub fn dominant_share(allocated: &ResourceBag, total: &ResourceBag) -> f64 {
    total
        .names()
        .filter_map(|name| match total.get(name) {
            Some(ResourceValue::Scalar(t)) if *t > 0.0 => Some(allocated.scalar(name) / t),
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// Whether `available` reaches Mesos' minimum allocatable: `MIN_ALLOCATABLE_CPUS` cpus or
/// `MIN_ALLOCATABLE_MEM_MB` mem (hierarchical.cpp, `allocatable`).
pub fn is_allocatable(available: &ResourceBag) -> bool {
    available.scalar("cpus") >= MIN_ALLOCATABLE_CPUS
        || available.scalar("mem") >= MIN_ALLOCATABLE_MEM_MB
}

/// One allocation round. `total` is the cluster total (sum of all agents' totals), used for DRF
/// shares.
///
/// Each agent's whole available bag goes to at most one framework this round (as Mesos'
/// hierarchical allocator does): agents are iterated in an order shuffled by `seed` (so no agent is
/// always first), and each goes to the framework that, among active, unsuppressed frameworks not
/// filtered for that agent, has the lowest dominant share (ties broken by framework id). Its
/// allocated bag grows by what it was given before the next agent is considered. Agents that are
/// inactive or below the minimum allocatable (see [`is_allocatable`]) are skipped.
///
/// The result is in the order the allocations were made. A repeated agent id or framework id in
/// the input is considered once (its first occurrence), so no agent is ever allocated twice.
pub fn allocate(
    total: &ResourceBag,
    agents: &[AgentView],
    frameworks: &[FrameworkView],
    filters: &Filters,
    now: f64,
    seed: u64,
) -> Vec<Allocation> {
    let mut order: Vec<&AgentView> = agents
        .iter()
        .filter(|a| a.active && is_allocatable(&a.available))
        .collect();
    // Sort before shuffling so the result depends on the seed, not on the caller's order.
    order.sort_by(|a, b| a.id.cmp(&b.id));
    order.dedup_by(|later, first| later.id == first.id);
    SplitMix64::new(seed).shuffle(&mut order);

    let mut candidates: Vec<Candidate> = frameworks
        .iter()
        .filter(|f| f.active && !f.suppressed)
        .map(|f| Candidate::new(f, total))
        .collect();
    candidates.sort_by(|a, b| a.id.cmp(b.id));
    candidates.dedup_by(|later, first| later.id == first.id);

    let mut allocations = Vec::new();
    for agent in order {
        let chosen = pick_framework(&candidates, |c| {
            !filters.is_filtered(c.id, &agent.id, &agent.available, now)
        });
        let Some(index) = chosen else { continue };
        let candidate = &mut candidates[index];
        candidate.grant(&agent.available, total);
        allocations.push(Allocation {
            framework_id: candidate.id.clone(),
            agent_id: agent.id.clone(),
            resources: agent.available.clone(),
        });
    }
    allocations
}

/// A framework taking part in a round, with its running allocation and share.
#[derive(Debug)]
struct Candidate<'a> {
    id: &'a FrameworkId,
    /// The scalar part of its allocation only: shares are computed from scalars, and adding scalars
    /// to scalars cannot hit `ResourceBag::add`'s type-mismatch error.
    allocated: ResourceBag,
    share: f64,
}

impl<'a> Candidate<'a> {
    fn new(framework: &'a FrameworkView, total: &ResourceBag) -> Self {
        let mut allocated = ResourceBag::new();
        add_scalars(&mut allocated, &framework.allocated);
        let share = dominant_share(&allocated, total);
        Candidate {
            id: &framework.id,
            allocated,
            share,
        }
    }

    fn grant(&mut self, resources: &ResourceBag, total: &ResourceBag) {
        add_scalars(&mut self.allocated, resources);
        self.share = dominant_share(&self.allocated, total);
    }

    /// DRF order: lower dominant share first, then lower framework id. Role weights or a role-level
    /// share would be added here.
    fn rank(&self, other: &Candidate) -> Ordering {
        self.share
            .total_cmp(&other.share)
            .then_with(|| self.id.cmp(other.id))
    }
}

fn add_scalars(into: &mut ResourceBag, from: &ResourceBag) {
    for name in from.names() {
        if let Some(ResourceValue::Scalar(v)) = from.get(name) {
            let sum = into.scalar(name) + v;
            into.set_scalar(name, sum);
        }
    }
}

/// The index of the first candidate in DRF order among those `eligible` accepts.
fn pick_framework(
    candidates: &[Candidate],
    eligible: impl Fn(&Candidate) -> bool,
) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| eligible(c))
        .min_by(|(_, a), (_, b)| a.rank(b))
        .map(|(i, _)| i)
}
