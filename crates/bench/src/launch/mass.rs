//! The launch bench's mass launch: one framework launches N long-running tasks in as few ACCEPTs as
//! the offers allow, the bench times first ACCEPT -> last TASK_RUNNING, samples tepui's memory while
//! they all run, then tears down and waits until every task (and task process) is gone.

use super::wait::{stream_closes, wait_drained};
use super::{deadline, Anomalies, MassFigures, Settings, REFUSE_LONG_SECS, TASK_CPUS, TASK_MEM};
use crate::devproc::DevProcess;
use crate::procfs;
use crate::scheduler::{Acker, Master, Subscription, TaskShape};
use anyhow::{bail, Context, Result};
use proto::TaskState;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

pub(super) async fn mass_launch(
    master: &Master,
    dev: &DevProcess,
    settings: &Settings,
    anomalies: &mut Anomalies,
) -> Result<(MassFigures, (u64, u64), Option<u64>)> {
    let n = settings.tasks;
    let shape = TaskShape {
        command: "sleep 600".to_string(),
        cpus: TASK_CPUS,
        mem: TASK_MEM,
    };
    let mut sub = master
        .subscribe(
            "tepui-bench-mass",
            &settings.user,
            deadline(settings.timeout),
        )
        .await?;
    let result = mass_launch_on(master, dev, settings, &shape, &mut sub).await;
    // Tear down even when the launch failed, so the tasks do not outlive the bench's error report
    // (tepui's own stop would kill them too).
    let teardown_at = Instant::now();
    let teardown = master.teardown(&sub).await;
    let (launched, memory, threads) = result?;
    teardown?;
    let prefix = format!("the mass launch of {n} tasks");
    if !stream_closes(
        &mut sub,
        Duration::from_secs(5).min(settings.timeout),
        anomalies,
    )
    .await?
    {
        anomalies.note(
            "the master did not close the mass-launch stream within 5 s of TEARDOWN".to_string(),
        );
    }
    drop(sub);
    let drained = wait_drained(
        master,
        dev,
        settings.timeout.max(Duration::from_secs(60)),
        &prefix,
        teardown_at,
    )
    .await?;
    if let Some(left) = drained.left {
        anomalies.note(format!("after TEARDOWN of {prefix}, {left} processes were still running under tepui at the deadline"));
    }
    let mass = MassFigures {
        teardown_to_state_empty: drained.state_empty,
        teardown_to_processes_gone: drained.processes_gone,
        ..launched
    };
    Ok((mass, memory, threads))
}

async fn mass_launch_on(
    master: &Master,
    dev: &DevProcess,
    settings: &Settings,
    shape: &TaskShape,
    sub: &mut Subscription,
) -> Result<(MassFigures, (u64, u64), Option<u64>)> {
    let n = settings.tasks;
    let mut acker = Acker::new(master, sub);
    let until = deadline(settings.mass_timeout);
    let mut remaining = n;
    let mut next_id = 0usize;
    let mut accepts = 0usize;
    let mut first_accept: Option<Instant> = None;
    let mut first_accept_call = Duration::ZERO;
    let mut first_running: Option<Instant> = None;
    let mut last_running: Option<Instant> = None;
    let mut launched: HashSet<String> = HashSet::with_capacity(n);
    let mut running: HashSet<String> = HashSet::with_capacity(n);
    let mut seen_states: BTreeMap<&'static str, usize> = BTreeMap::new();
    let report_step = (n / 4).max(1);
    let mut next_report = report_step;
    while running.len() < n {
        let waiting_for = format!(
            "TASK_RUNNING of {} more tasks ({} launched, {} running, updates so far {seen_states:?})",
            n - running.len(),
            launched.len(),
            running.len()
        );
        let (at, event) = sub.next_event(until, &waiting_for).await?;
        match event.kind.as_str() {
            "OFFERS" => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let k = shape.fits(&offer)?.min(remaining);
                    if k == 0 {
                        master
                            .decline(sub, vec![offer.id.clone()], REFUSE_LONG_SECS)
                            .await?;
                        continue;
                    }
                    let tasks: Vec<_> = (next_id..next_id + k)
                        .map(|j| shape.task(&offer, &format!("mass-{j}")))
                        .collect();
                    for t in &tasks {
                        launched.insert(t.task_id.value.clone());
                    }
                    next_id += k;
                    remaining -= k;
                    let refuse = if remaining == 0 {
                        REFUSE_LONG_SECS
                    } else {
                        0.0
                    };
                    let t0 = Instant::now();
                    if first_accept.is_none() {
                        first_accept = Some(t0);
                    }
                    master.launch(sub, &offer, tasks, refuse).await?;
                    if accepts == 0 {
                        first_accept_call = t0.elapsed();
                    }
                    accepts += 1;
                    println!(
                        "  ACCEPT #{accepts}: {k} tasks on offer {} ({remaining} left to launch)",
                        offer.id
                    );
                }
            }
            "UPDATE" => {
                let status = event
                    .update
                    .context("UPDATE event without 'update'")?
                    .status;
                acker.ack(&status)?;
                *seen_states.entry(status.state.name()).or_insert(0) += 1;
                if !launched.contains(&status.task_id.value) {
                    continue;
                }
                match status.state {
                    TaskState::TaskRunning if running.insert(status.task_id.value.clone()) => {
                        first_running.get_or_insert(at);
                        last_running = Some(at);
                        if running.len() >= next_report && running.len() < n {
                            println!("  {} / {n} running", running.len());
                            next_report += report_step;
                        }
                    }
                    s if s.is_terminal() => bail!(
                        "task {} went to {} during the mass launch (reason {:?}, message {:?}); {} of {n} were running",
                        status.task_id,
                        s.name(),
                        status.reason,
                        status.message,
                        running.len()
                    ),
                    _ => {}
                }
            }
            "FAILURE" => bail!("FAILURE event during the mass launch: {:?}", event.failure),
            _ => {}
        }
    }
    let start = first_accept.context("all tasks running but no ACCEPT was sent")?;
    let last = last_running.context("no TASK_RUNNING seen")?;
    let first = first_running.context("no TASK_RUNNING seen")?;
    acker.drain(deadline(settings.timeout)).await?;
    let elapsed = last.saturating_duration_since(start);
    println!("  all {n} running: {:.3} s after the first ACCEPT ({accepts} ACCEPTs, {} acknowledgements)", elapsed.as_secs_f64(), acker.sent);
    let memory = procfs::memory_kib(dev.pid)?;
    let threads = procfs::threads(dev.pid);
    let processes_running = procfs::task_processes(dev.pid)?
        .iter()
        .filter(|p| p.state != 'Z')
        .count();
    Ok((
        MassFigures {
            accepts,
            elapsed,
            first_accept_call,
            first_running: first.saturating_duration_since(start),
            processes_running,
            teardown_to_state_empty: Duration::ZERO,
            teardown_to_processes_gone: None,
        },
        memory,
        threads,
    ))
}
