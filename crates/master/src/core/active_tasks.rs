//! A framework's non-terminal tasks, with the total of their resources kept current.
//!
//! Why: the allocator needs every framework's allocation on every round; recounting it from the
//! tasks made a round O(tasks) (about 11% of the master's CPU with one 10,000-instance Marathon
//! app). The map can only be changed through the methods below, each of which adjusts the tally
//! (`ResourceTally`) by exactly the tasks it adds or drops, so the total cannot drift from the
//! tasks: `tally() == ResourceTally` recounted from `values()` always holds (checked after every
//! step of a seeded random run in `core/tests_tally.rs`). Reads go through `Deref` to the map, so
//! lookups and iteration look as they do on a `BTreeMap`.

use super::resource_tally::ResourceTally;
use super::Task;
use proto::{ResourceBag, TaskId};
use std::collections::BTreeMap;
use std::ops::Deref;

#[derive(Debug, Clone, Default)]
pub struct ActiveTasks {
    by_id: BTreeMap<TaskId, Task>,
    /// The resources of every task in `by_id`.
    tally: ResourceTally,
}

impl Deref for ActiveTasks {
    type Target = BTreeMap<TaskId, Task>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl ActiveTasks {
    pub fn new() -> Self {
        ActiveTasks::default()
    }

    /// Adds `task` under its own id, replacing (and returning) a task of the same id.
    pub fn insert(&mut self, task: Task) -> Option<Task> {
        self.tally.add(&task.resources);
        let replaced = self.by_id.insert(task.info.task_id.clone(), task);
        if let Some(old) = &replaced {
            self.tally.remove(&old.resources);
        }
        replaced
    }

    pub fn remove(&mut self, id: &TaskId) -> Option<Task> {
        let task = self.by_id.remove(id)?;
        self.tally.remove(&task.resources);
        Some(task)
    }

    /// Keeps the tasks `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Task) -> bool) {
        let tally = &mut self.tally;
        self.by_id.retain(|_, task| {
            let kept = keep(task);
            if !kept {
                tally.remove(&task.resources);
            }
            kept
        });
    }

    /// Removes every task, returning them in id order.
    pub fn take_all(&mut self) -> Vec<Task> {
        self.tally = ResourceTally::new();
        std::mem::take(&mut self.by_id).into_values().collect()
    }

    /// Changes the task `id` in place (its state, statuses, ...) and returns what `change` returns,
    /// or `None` for an unknown id. Whatever `change` does to the task's resources is accounted for.
    pub fn update<R>(&mut self, id: &TaskId, change: impl FnOnce(&mut Task) -> R) -> Option<R> {
        let task = self.by_id.get_mut(id)?;
        self.tally.remove(&task.resources);
        let result = change(task);
        self.tally.add(&task.resources);
        Some(result)
    }

    /// The tally of the tasks' resources.
    pub fn tally(&self) -> &ResourceTally {
        &self.tally
    }

    /// The resources of the tasks: scalars summed, ports and sets as their union.
    /// O(names + distinct intervals and items).
    pub fn used(&self) -> ResourceBag {
        self.tally.to_bag()
    }

    /// The scalar part of [`ActiveTasks::used`], in O(names).
    pub fn used_scalars(&self) -> ResourceBag {
        self.tally.scalars()
    }
}
