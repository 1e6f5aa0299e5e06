//! A running total of many resource bags that can take any one of them back out exactly.
//!
//! Why: the master needs each framework's allocation (the resources of its non-terminal tasks) on
//! every allocation round, and summing every task each round made the round O(tasks). The tally is
//! adjusted as tasks come and go instead, which is only sound if taking a bag out undoes putting it
//! in, bit for bit and whatever happened in between. `ResourceBag` arithmetic does not give that:
//!
//! - f64 addition is not associative, so `(a + b) - a` need not be `b`. Scalars are kept here as
//!   integers in units of 2^-64 (`SCALAR_UNITS_PER_ONE`): integer sums do not depend on order, so the
//!   tally always equals a recount exactly. Every f64 of at least 2^-12 is a whole number of units,
//!   so for such amounts the total is the exact sum, rounded once when read; smaller amounts are
//!   truncated to a unit (below 6e-20 each). Totals stay exact up to 2^63; beyond that (no real
//!   resource amount comes near) the wrapping sum is still consistent but no longer meaningful.
//! - Ranges and sets of tasks on different agents overlap (two agents each give out port 31000),
//!   so a framework's ports are a union, and union minus one task's ports is not the union of the
//!   others. Each interval and set item is counted here by how many bags hold it; the union is
//!   built only when asked for (`to_bag`, O(distinct intervals)), which the operator endpoints do
//!   and the allocator does not: it reads scalars only (`scalars`, O(names)).
//!
//! A name given as more than one type (two agents disagreeing on what `foo` is) is counted under
//! each type; `to_bag` reports the scalar if there is one, else the ranges, else the set.

use proto::{ResourceBag, ResourceValue};
use std::collections::{BTreeMap, BTreeSet};

/// Fixed-point scale of scalar sums: one resource unit is 2^64 tally units.
const SCALAR_UNITS_PER_ONE: f64 = 18_446_744_073_709_551_616.0;

/// The sum of the bags added and not yet removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceTally {
    scalars: BTreeMap<String, ScalarSum>,
    ranges: BTreeMap<String, Counted<(u64, u64)>>,
    sets: BTreeMap<String, Counted<String>>,
}

/// One scalar name: the fixed-point sum and how many bags name it (a bag may name it with 0, and
/// the name must then still appear, as `ResourceBag::add` would keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScalarSum {
    units: i128,
    holders: u64,
}

/// One ranges or set name: each interval or item with the number of bags holding it, and how many
/// bags name it at all (an empty value still names it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted<T: Ord> {
    holders: u64,
    counts: BTreeMap<T, u64>,
}

impl<T: Ord> Default for Counted<T> {
    fn default() -> Self {
        Counted {
            holders: 0,
            counts: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Clone> Counted<T> {
    fn add<'a>(&mut self, items: impl IntoIterator<Item = &'a T>)
    where
        T: 'a,
    {
        self.holders += 1;
        for item in items {
            *self.counts.entry(item.clone()).or_default() += 1;
        }
    }

    fn remove<'a>(&mut self, items: impl IntoIterator<Item = &'a T>)
    where
        T: 'a,
    {
        self.holders = self.holders.saturating_sub(1);
        for item in items {
            if let Some(count) = self.counts.get_mut(item) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(item);
                }
            }
        }
    }

    fn is_unused(&self) -> bool {
        self.holders == 0 && self.counts.is_empty()
    }
}

/// The value under `name`, created empty if absent. Looks up before inserting: the names are
/// almost always there already, and the lookup needs no `String`.
fn entry<'a, V: Default>(map: &'a mut BTreeMap<String, V>, name: &str) -> &'a mut V {
    if !map.contains_key(name) {
        map.insert(name.to_string(), V::default());
    }
    map.get_mut(name).expect("inserted above")
}

fn to_units(amount: f64) -> i128 {
    // Scaling by a power of two is exact; the cast saturates (amounts are finite and non-negative,
    // `ResourceBag::from_resources` checks), so this never panics.
    (amount * SCALAR_UNITS_PER_ONE) as i128
}

fn from_units(units: i128) -> f64 {
    units as f64 / SCALAR_UNITS_PER_ONE
}

impl ResourceTally {
    pub fn new() -> Self {
        ResourceTally::default()
    }

    /// Counts `bag` in.
    pub fn add(&mut self, bag: &ResourceBag) {
        for name in bag.names() {
            match bag.get(name) {
                Some(ResourceValue::Scalar(amount)) => {
                    let sum = entry(&mut self.scalars, name);
                    sum.units = sum.units.wrapping_add(to_units(*amount));
                    sum.holders += 1;
                }
                Some(ResourceValue::Ranges(ranges)) => entry(&mut self.ranges, name).add(ranges),
                Some(ResourceValue::Set(items)) => entry(&mut self.sets, name).add(items),
                None => {}
            }
        }
    }

    /// Takes `bag` back out. `bag` must have been added before (and not removed since); the tally
    /// is then exactly what it would be had `bag` never been added.
    pub fn remove(&mut self, bag: &ResourceBag) {
        for name in bag.names() {
            match bag.get(name) {
                Some(ResourceValue::Scalar(amount)) => {
                    if let Some(sum) = self.scalars.get_mut(name) {
                        sum.units = sum.units.wrapping_sub(to_units(*amount));
                        sum.holders = sum.holders.saturating_sub(1);
                        if sum.holders == 0 {
                            self.scalars.remove(name);
                        }
                    }
                }
                Some(ResourceValue::Ranges(ranges)) => {
                    if let Some(counted) = self.ranges.get_mut(name) {
                        counted.remove(ranges);
                        if counted.is_unused() {
                            self.ranges.remove(name);
                        }
                    }
                }
                Some(ResourceValue::Set(items)) => {
                    if let Some(counted) = self.sets.get_mut(name) {
                        counted.remove(items);
                        if counted.is_unused() {
                            self.sets.remove(name);
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// The scalar part of the total, in O(names): what DRF shares are computed from.
    pub fn scalars(&self) -> ResourceBag {
        let mut bag = ResourceBag::new();
        for (name, sum) in &self.scalars {
            bag.set_scalar(name, from_units(sum.units));
        }
        bag
    }

    /// The whole total: scalars summed, ranges and sets as the union of what the bags hold.
    pub fn to_bag(&self) -> ResourceBag {
        let mut bag = ResourceBag::new();
        for (name, counted) in &self.sets {
            let items: BTreeSet<String> = counted.counts.keys().cloned().collect();
            // The name is new in `bag`, so this cannot meet a type mismatch.
            let _ = bag.add_value(name, ResourceValue::Set(items));
        }
        // Later types overwrite earlier ones under a name: scalar over ranges over set.
        for (name, counted) in &self.ranges {
            bag.set_ranges(name, counted.counts.keys().copied().collect());
        }
        for (name, sum) in &self.scalars {
            bag.set_scalar(name, from_units(sum.units));
        }
        bag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(text: &str) -> ResourceBag {
        ResourceBag::parse(text).unwrap()
    }

    #[test]
    fn removing_a_bag_undoes_adding_it_whatever_came_between() {
        let mut tally = ResourceTally::new();
        tally.add(&bag("cpus:0.1;mem:32"));
        let before = tally.clone();
        let middle = bag("cpus:0.2;mem:64.5;ports:[31000-31002];zones:{a}");
        tally.add(&middle);
        tally.add(&bag("cpus:0.3"));
        tally.remove(&middle);
        tally.remove(&bag("cpus:0.3"));
        assert_eq!(tally, before);
        tally.remove(&bag("cpus:0.1;mem:32"));
        assert_eq!(tally, ResourceTally::new());
        assert!(tally.to_bag().is_empty());
    }

    #[test]
    fn scalars_are_the_exact_sum_rounded_once() {
        let mut tally = ResourceTally::new();
        for _ in 0..3 {
            tally.add(&bag("cpus:0.1"));
        }
        let exact = 3.0 * 0.1_f64; // 0.1 * 3 is correctly rounded, as the fixed-point sum is
        assert_eq!(tally.scalars().scalar("cpus"), exact);
        tally.remove(&bag("cpus:0.1"));
        assert_eq!(tally.scalars().scalar("cpus"), 0.1 + 0.1);
    }

    #[test]
    fn overlapping_ports_and_items_stay_until_their_last_holder_goes() {
        let mut tally = ResourceTally::new();
        let first = bag("ports:[31000-31001];zones:{a,b}");
        let second = bag("ports:[31001-31001, 31005-31005];zones:{b}");
        tally.add(&first);
        tally.add(&second);
        assert_eq!(
            tally.to_bag().ranges("ports"),
            vec![(31000, 31001), (31005, 31005)]
        );
        tally.remove(&first);
        let left = tally.to_bag();
        assert_eq!(left.ranges("ports"), vec![(31001, 31001), (31005, 31005)]);
        assert_eq!(
            left.get("zones"),
            Some(&ResourceValue::Set(["b".to_string()].into()))
        );
    }

    #[test]
    fn a_zero_amount_keeps_its_name_as_adding_bags_does() {
        let mut tally = ResourceTally::new();
        tally.add(&bag("gpus:0;cpus:1"));
        let mut summed = ResourceBag::new();
        summed.add(&bag("gpus:0;cpus:1")).unwrap();
        assert_eq!(tally.to_bag(), summed);
        assert_eq!(
            tally.scalars().names().collect::<Vec<_>>(),
            vec!["cpus", "gpus"]
        );
    }
}
