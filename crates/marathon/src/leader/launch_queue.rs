//! The instances the planner allowed to launch (`Command::Launch`), waiting for an offer, grouped
//! by (app, config version) so offer matching reads a few of each group instead of the whole
//! queue (marathon-api.md §7 "Backoff / launch queue").

use std::collections::{BTreeMap, BTreeSet};

/// (app id, config version): the instances of one group launch the same definition.
pub type RunSpecKey = (String, u64);

#[derive(Debug, Default)]
pub struct LaunchQueue {
    by_instance: BTreeMap<String, RunSpecKey>,
    by_run_spec: BTreeMap<RunSpecKey, BTreeSet<String>>,
}

impl LaunchQueue {
    pub fn new() -> LaunchQueue {
        LaunchQueue::default()
    }

    pub fn insert(&mut self, instance_id: String, app_id: String, config_version: u64) {
        self.remove(&instance_id);
        let key = (app_id, config_version);
        self.by_run_spec
            .entry(key.clone())
            .or_default()
            .insert(instance_id.clone());
        self.by_instance.insert(instance_id, key);
    }

    pub fn remove(&mut self, instance_id: &str) -> Option<RunSpecKey> {
        let key = self.by_instance.remove(instance_id)?;
        if let Some(ids) = self.by_run_spec.get_mut(&key) {
            ids.remove(instance_id);
            if ids.is_empty() {
                self.by_run_spec.remove(&key);
            }
        }
        Some(key)
    }

    pub fn is_empty(&self) -> bool {
        self.by_instance.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_instance.len()
    }

    pub fn contains(&self, instance_id: &str) -> bool {
        self.by_instance.contains_key(instance_id)
    }

    /// Every group with at most `per_group` of its instances (in id order).
    pub fn groups_head(&self, per_group: usize) -> Vec<(RunSpecKey, Vec<String>)> {
        self.by_run_spec
            .iter()
            .map(|(key, ids)| (key.clone(), ids.iter().take(per_group).cloned().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_inserts_and_removals() {
        let mut q = LaunchQueue::new();
        q.insert("a.1".into(), "/a".into(), 1);
        q.insert("a.2".into(), "/a".into(), 1);
        q.insert("a.3".into(), "/a".into(), 2);
        q.insert("b.1".into(), "/b".into(), 1);
        assert_eq!(q.len(), 4);
        let heads = q.groups_head(1);
        assert_eq!(heads.len(), 3);
        assert_eq!(heads[0], (("/a".to_string(), 1), vec!["a.1".to_string()]));
        // Re-inserting moves an instance to its new group.
        q.insert("a.2".into(), "/a".into(), 2);
        assert_eq!(
            q.groups_head(5)[1].1,
            vec!["a.2".to_string(), "a.3".to_string()]
        );
        assert_eq!(q.remove("a.1"), Some(("/a".to_string(), 1)));
        assert_eq!(q.remove("a.1"), None);
        assert_eq!(q.groups_head(5).len(), 2, "an emptied group is gone");
        for id in ["a.2", "a.3", "b.1"] {
            q.remove(id);
        }
        assert!(q.is_empty() && !q.contains("b.1"));
    }
}
