//! The launch bench's single-task latency phase: one iteration subscribes a fresh framework, takes
//! the first offer with room, launches one task, waits for TASK_RUNNING and tears the framework
//! down, recording each step's latency.

use super::wait::stream_closes;
use super::{deadline, Anomalies, Settings, REFUSE_LONG_SECS};
use crate::scheduler::{Acker, Master, TaskShape};
use anyhow::{bail, Context, Result};
use proto::TaskState;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct Latencies {
    pub(super) to_offer: Vec<Duration>,
    pub(super) accept_to_starting: Vec<Duration>,
    pub(super) accept_to_running: Vec<Duration>,
    pub(super) to_running: Vec<Duration>,
}

/// One iteration: SUBSCRIBE -> OFFERS -> ACCEPT one task -> TASK_RUNNING -> TEARDOWN.
pub(super) async fn one_launch(
    master: &Master,
    settings: &Settings,
    shape: &TaskShape,
    i: usize,
    lat: &mut Latencies,
    wait_close: &mut bool,
    anomalies: &mut Anomalies,
) -> Result<()> {
    let t_subscribe = Instant::now();
    let mut sub = master
        .subscribe(
            &format!("tepui-bench-latency-{i}"),
            &settings.user,
            deadline(settings.timeout),
        )
        .await?;
    let mut acker = Acker::new(master, &sub);
    let until = deadline(settings.timeout);
    let (t_offer, offer) = loop {
        let (at, event) = sub.next_event(until, "OFFERS").await?;
        if event.kind != "OFFERS" {
            continue;
        }
        let offers = event.offers.map(|o| o.offers).unwrap_or_default();
        let mut chosen = None;
        let mut unused = Vec::new();
        for offer in offers {
            if chosen.is_none() && shape.fits(&offer)? >= 1 {
                chosen = Some(offer);
            } else {
                unused.push(offer.id);
            }
        }
        if !unused.is_empty() {
            master.decline(&sub, unused, REFUSE_LONG_SECS).await?;
        }
        if let Some(offer) = chosen {
            break (at, offer);
        }
        anomalies.note(
            "an OFFERS event held no offer with room for one task (cpus 0.1, mem 16)".to_string(),
        );
    };
    let task_id = format!(
        "lat-{i}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let t_accept = Instant::now();
    master
        .launch(
            &sub,
            &offer,
            vec![shape.task(&offer, &task_id)],
            REFUSE_LONG_SECS,
        )
        .await?;
    let until = deadline(settings.timeout);
    let mut t_starting = None;
    let t_running = loop {
        let (at, event) = sub
            .next_event(until, &format!("TASK_RUNNING of {task_id}"))
            .await?;
        match event.kind.as_str() {
            "UPDATE" => {
                let status = event
                    .update
                    .context("UPDATE event without 'update'")?
                    .status;
                acker.ack(&status)?;
                if status.task_id.value != task_id {
                    continue;
                }
                match status.state {
                    TaskState::TaskRunning => break at,
                    TaskState::TaskStarting => t_starting = Some(at),
                    s if s.is_terminal() => bail!(
                        "task {task_id} went to {} before TASK_RUNNING (reason {:?}, message {:?})",
                        s.name(),
                        status.reason,
                        status.message
                    ),
                    _ => {}
                }
            }
            "FAILURE" => bail!(
                "FAILURE event while waiting for TASK_RUNNING: {:?}",
                event.failure
            ),
            _ => {}
        }
    };
    acker.drain(deadline(settings.timeout)).await?;
    lat.to_offer.push(t_offer - t_subscribe);
    if let Some(at) = t_starting {
        lat.accept_to_starting.push(at - t_accept);
    }
    lat.accept_to_running.push(t_running - t_accept);
    lat.to_running.push(t_running - t_subscribe);

    master.teardown(&sub).await?;
    if *wait_close {
        let close_deadline = Duration::from_secs(5).min(settings.timeout);
        if !stream_closes(&mut sub, close_deadline, anomalies).await? {
            anomalies.note(format!("the master did not close the subscription stream within {close_deadline:?} of TEARDOWN (stopped checking)"));
            *wait_close = false;
        }
    }
    Ok(())
}
