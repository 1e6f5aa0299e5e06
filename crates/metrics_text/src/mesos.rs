//! `/metrics/snapshot` keys as Prometheus metrics: `master/tasks_running` becomes
//! `mesos_master_tasks_running`, `slave/registered` `mesos_slave_registered`, `system/load_1min`
//! `mesos_system_load_1min` (every character outside `[a-zA-Z0-9_:]` becomes `_`).
//!
//! The kind comes from an explicit table, not from the name: Mesos' `_total` suffix means
//! capacity (`master/cpus_total`), not a running total, so a suffix rule would call gauges
//! counters. Counters are the keys Mesos itself registers as counters: terminal task counts
//! (mesos-http-api.md 6: "counters finished, failed, ..."), agent churn, status-update and message
//! counts, and the `/count` of a timer. Everything else is a gauge.

use crate::{Kind, Metric};

/// Keys that only grow while the process lives.
const COUNTER_KEYS: &[&str] = &[
    "master/tasks_finished",
    "master/tasks_failed",
    "master/tasks_killed",
    "master/tasks_lost",
    "master/tasks_error",
    "master/tasks_dropped",
    "master/tasks_gone",
    "master/tasks_gone_by_operator",
    "master/slave_registrations",
    "master/slave_reregistrations",
    "master/slave_removals",
    "master/recovery_slave_removals",
    "master/slave_unreachable_scheduled",
    "master/slave_unreachable_completed",
    "master/slave_unreachable_canceled",
    "master/valid_status_updates",
    "master/invalid_status_updates",
    "slave/tasks_finished",
    "slave/tasks_failed",
    "slave/tasks_killed",
    "slave/tasks_lost",
    "slave/tasks_error",
    "slave/tasks_dropped",
    "slave/tasks_gone",
    "slave/valid_status_updates",
    "slave/invalid_status_updates",
    "slave/recovery_errors",
];

/// Key prefixes whose every key counts messages (`master/messages_scheduler_calls`, ...).
const COUNTER_PREFIXES: &[&str] = &["master/messages_", "slave/messages_"];

/// Whether a snapshot key is a counter or a gauge (see the module doc for the rule).
pub fn kind(key: &str) -> Kind {
    let counter = COUNTER_KEYS.contains(&key)
        || COUNTER_PREFIXES.iter().any(|p| key.starts_with(p))
        || key.ends_with("/count");
    if counter {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

/// The Prometheus name of a snapshot key.
pub fn name(key: &str) -> String {
    crate::metric_name(&format!("mesos_{key}"))
}

/// Metrics for every `(key, value)` of a snapshot, with the key in the help text so an operator
/// can find the Mesos documentation for it.
pub fn from_snapshot<'a>(snapshot: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<Metric> {
    snapshot
        .into_iter()
        .map(|(key, value)| {
            Metric::new(&name(key), kind(key), format!("Mesos metric {key}"), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_snapshot_keys() {
        assert_eq!(name("master/tasks_running"), "mesos_master_tasks_running");
        assert_eq!(name("slave/tasks_running"), "mesos_slave_tasks_running");
        assert_eq!(
            name("registrar/log/recovered"),
            "mesos_registrar_log_recovered"
        );
        assert_eq!(
            name("registrar/state_fetch_ms/p99.9"),
            "mesos_registrar_state_fetch_ms_p99_9"
        );
    }

    #[test]
    fn kinds_come_from_the_table_not_the_total_suffix() {
        assert_eq!(kind("master/tasks_finished"), Kind::Counter);
        assert_eq!(kind("master/messages_scheduler_calls"), Kind::Counter);
        assert_eq!(kind("registrar/state_store_ms/count"), Kind::Counter);
        assert_eq!(kind("slave/recovery_errors"), Kind::Counter);
        assert_eq!(kind("master/tasks_running"), Kind::Gauge);
        assert_eq!(kind("master/cpus_total"), Kind::Gauge);
        assert_eq!(kind("system/mem_total_bytes"), Kind::Gauge);
        assert_eq!(kind("master/elected"), Kind::Gauge);
    }

    #[test]
    fn a_snapshot_becomes_metrics() {
        let metrics = from_snapshot([("master/elected", 1.0), ("master/tasks_failed", 2.0)]);
        assert_eq!(
            metrics[0],
            Metric::new(
                "mesos_master_elected",
                Kind::Gauge,
                "Mesos metric master/elected",
                1.0
            )
        );
        assert_eq!(metrics[1].kind, Kind::Counter);
    }
}
