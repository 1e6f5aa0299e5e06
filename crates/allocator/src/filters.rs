//! Refuse filters: what a framework asked not to be offered again, and until when.
//!
//! A scheduler that DECLINEs an offer, or ACCEPTs only part of it, may pass `filters.refuse_seconds`
//! (Mesos default 5 s). The master turns that into a [`RefuseFilter`] for the (framework, agent) pair:
//! until `expires_at`, that agent is not offered to that framework again *unless* it now has resources
//! the framework did not see when it refused. Mesos' `RefusedOfferFilter::filter` (in
//! `src/master/allocator/mesos/hierarchical.hpp`) is "not expired and `refused.contains(candidate)`":
//! a candidate offer that fits inside what was refused would be refused again, anything larger
//! might not be.
//!
//! Time is a plain `f64` of seconds supplied by the caller: this module reads no clock. A filter is in
//! force while `now < expires_at`; at `now >= expires_at` it has expired.

use proto::{AgentId, FrameworkId, ResourceBag};
use std::collections::BTreeMap;

/// A refuse filter from DECLINE/ACCEPT `filters.refuse_seconds`: don't offer `agent_id` to
/// `framework_id` again before `expires_at` unless the agent has more than `refused` available
/// (Mesos semantics: the filter applies when the candidate offer is contained in the refused
/// resources).
#[derive(Debug, Clone, PartialEq)]
pub struct RefuseFilter {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub refused: ResourceBag,
    pub expires_at: f64,
}

impl RefuseFilter {
    /// In force at `now`. Written as a negation so a NaN `expires_at` counts as expired, never as
    /// "forever".
    fn in_force(&self, now: f64) -> bool {
        now < self.expires_at
    }

    /// Whether every candidate this filter blocks is also blocked by `other` (so `self` adds nothing).
    fn covered_by(&self, other: &RefuseFilter) -> bool {
        other.expires_at >= self.expires_at && other.refused.contains(&self.refused)
    }
}

/// The refuse filters in force, indexed by framework then agent.
///
/// Several filters may exist for one (framework, agent) pair, as in Mesos; a candidate is filtered if
/// any of them applies. A filter that another one for the same pair covers (refuses no less and
/// lasts no shorter) is dropped on [`Filters::add`], so repeated declines of an unchanged agent do not
/// pile up.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    by_framework: BTreeMap<FrameworkId, BTreeMap<AgentId, Vec<RefuseFilter>>>,
}

impl Filters {
    pub fn new() -> Self {
        Filters::default()
    }

    pub fn add(&mut self, filter: RefuseFilter) {
        let pair = self
            .by_framework
            .entry(filter.framework_id.clone())
            .or_default()
            .entry(filter.agent_id.clone())
            .or_default();
        if pair.iter().any(|existing| filter.covered_by(existing)) {
            return;
        }
        pair.retain(|existing| !existing.covered_by(&filter));
        pair.push(filter);
    }

    /// Drops every filter of `framework_id` (REVIVE, or the framework is removed).
    pub fn clear_framework(&mut self, framework_id: &FrameworkId) {
        self.by_framework.remove(framework_id);
    }

    /// Drops every filter on `agent_id` (the agent was removed; its id is not reused).
    pub fn clear_agent(&mut self, agent_id: &AgentId) {
        for agents in self.by_framework.values_mut() {
            agents.remove(agent_id);
        }
        self.by_framework.retain(|_, agents| !agents.is_empty());
    }

    /// Drops the filters that have expired at `now`.
    pub fn expire(&mut self, now: f64) {
        for agents in self.by_framework.values_mut() {
            for filters in agents.values_mut() {
                filters.retain(|f| f.in_force(now));
            }
            agents.retain(|_, filters| !filters.is_empty());
        }
        self.by_framework.retain(|_, agents| !agents.is_empty());
    }

    /// Whether offering `candidate` on `agent_id` to `framework_id` at `now` is blocked by a filter
    /// in force whose refused resources contain the candidate. Expired filters never apply, whether
    /// or not [`Filters::expire`] has removed them yet.
    pub fn is_filtered(
        &self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        candidate: &ResourceBag,
        now: f64,
    ) -> bool {
        self.by_framework
            .get(framework_id)
            .and_then(|agents| agents.get(agent_id))
            .is_some_and(|filters| {
                filters
                    .iter()
                    .any(|f| f.in_force(now) && f.refused.contains(candidate))
            })
    }

    /// The earliest `expires_at` among the stored filters, so the master can run an allocation when it
    /// passes (a filter lifting may make an agent offerable again). Call [`Filters::expire`] first to
    /// leave out filters already expired.
    pub fn next_expiry(&self) -> Option<f64> {
        self.iter()
            .map(|f| f.expires_at)
            .filter(|t| !t.is_nan())
            .min_by(f64::total_cmp)
    }

    pub fn len(&self) -> usize {
        self.by_framework
            .values()
            .flat_map(BTreeMap::values)
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_framework.is_empty()
    }

    /// Every stored filter, by framework id then agent id (for `/state`-style introspection).
    pub fn iter(&self) -> impl Iterator<Item = &RefuseFilter> {
        self.by_framework
            .values()
            .flat_map(BTreeMap::values)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(text: &str) -> ResourceBag {
        ResourceBag::parse(text).unwrap()
    }

    fn filter(fw: &str, agent: &str, refused: &str, expires_at: f64) -> RefuseFilter {
        RefuseFilter {
            framework_id: FrameworkId::new(fw),
            agent_id: AgentId::new(agent),
            refused: bag(refused),
            expires_at,
        }
    }

    #[test]
    fn applies_until_expiry_only_to_its_pair() {
        let mut filters = Filters::new();
        filters.add(filter("f1", "a1", "cpus:4;mem:1024", 10.0));
        let offer = bag("cpus:4;mem:1024");
        let (f1, f2) = (FrameworkId::new("f1"), FrameworkId::new("f2"));
        let (a1, a2) = (AgentId::new("a1"), AgentId::new("a2"));
        assert!(filters.is_filtered(&f1, &a1, &offer, 0.0));
        assert!(filters.is_filtered(&f1, &a1, &offer, 9.999));
        assert!(
            !filters.is_filtered(&f1, &a1, &offer, 10.0),
            "expired at expires_at"
        );
        assert!(
            !filters.is_filtered(&f2, &a1, &offer, 0.0),
            "other framework"
        );
        assert!(!filters.is_filtered(&f1, &a2, &offer, 0.0), "other agent");
    }

    #[test]
    fn more_than_refused_is_not_filtered_less_is() {
        let mut filters = Filters::new();
        filters.add(filter(
            "f1",
            "a1",
            "cpus:2;mem:512;ports:[31000-31005]",
            10.0,
        ));
        let (f1, a1) = (FrameworkId::new("f1"), AgentId::new("a1"));
        assert!(filters.is_filtered(&f1, &a1, &bag("cpus:1;mem:512"), 0.0));
        assert!(filters.is_filtered(&f1, &a1, &bag("cpus:2;ports:[31001-31002]"), 0.0));
        assert!(!filters.is_filtered(&f1, &a1, &bag("cpus:3;mem:512"), 0.0));
        assert!(!filters.is_filtered(&f1, &a1, &bag("cpus:1;ports:[31006-31006]"), 0.0));
        assert!(
            !filters.is_filtered(&f1, &a1, &bag("cpus:1;gpus:1"), 0.0),
            "a new resource name"
        );
    }

    #[test]
    fn expire_clear_and_next_expiry() {
        let mut filters = Filters::new();
        assert_eq!(filters.next_expiry(), None);
        assert!(filters.is_empty());
        filters.add(filter("f1", "a1", "cpus:1", 5.0));
        filters.add(filter("f1", "a2", "cpus:1", 3.0));
        filters.add(filter("f2", "a1", "cpus:1", 8.0));
        assert_eq!(filters.len(), 3);
        assert_eq!(filters.next_expiry(), Some(3.0));
        filters.expire(3.0);
        assert_eq!(filters.len(), 2);
        assert_eq!(filters.next_expiry(), Some(5.0));
        filters.clear_framework(&FrameworkId::new("f1"));
        assert_eq!(filters.len(), 1);
        assert_eq!(filters.next_expiry(), Some(8.0));
        filters.clear_agent(&AgentId::new("a1"));
        assert!(filters.is_empty());
        assert_eq!(filters.len(), 0);
    }

    #[test]
    fn covered_filters_are_merged_others_kept() {
        let mut filters = Filters::new();
        filters.add(filter("f1", "a1", "cpus:2", 10.0));
        filters.add(filter("f1", "a1", "cpus:1", 5.0));
        assert_eq!(filters.len(), 1, "smaller and shorter adds nothing");
        filters.add(filter("f1", "a1", "cpus:4", 20.0));
        assert_eq!(filters.len(), 1, "larger and longer replaces");
        filters.add(filter("f1", "a1", "cpus:8", 15.0));
        assert_eq!(filters.len(), 2, "larger but shorter is kept beside");
        let (f1, a1) = (FrameworkId::new("f1"), AgentId::new("a1"));
        assert!(filters.is_filtered(&f1, &a1, &bag("cpus:6"), 14.0));
        assert!(!filters.is_filtered(&f1, &a1, &bag("cpus:6"), 16.0));
        assert!(filters.is_filtered(&f1, &a1, &bag("cpus:4"), 16.0));
    }

    #[test]
    fn nan_expiry_never_applies_and_is_expired() {
        let mut filters = Filters::new();
        filters.add(filter("f1", "a1", "cpus:1", f64::NAN));
        let (f1, a1) = (FrameworkId::new("f1"), AgentId::new("a1"));
        assert!(!filters.is_filtered(&f1, &a1, &bag("cpus:1"), 0.0));
        assert_eq!(filters.next_expiry(), None);
        filters.expire(0.0);
        assert!(filters.is_empty());
    }
}
