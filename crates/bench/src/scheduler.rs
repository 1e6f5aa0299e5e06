//! A minimal v1 HTTP scheduler (mesos-http-api.md sections 7 and 8) on reqwest: SUBSCRIBE with a
//! streaming response decoded as RecordIO, calls carrying `Mesos-Stream-Id`, acknowledgements.
//!
//! Events are timestamped when the reader task decodes them, so latencies do not include the time
//! the bench spends on its own bookkeeping.

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use proto::recordio::Decoder;
use proto::scheduler::{
    Accept, Acknowledge, Call, Decline, Event, Filters, Launch, Offer, Operation, Subscribe,
};
use proto::{
    AgentId, AllocationInfo, CommandInfo, FrameworkId, FrameworkInfo, OfferId, Resource,
    ResourceBag, Scalar, TaskId, TaskInfo, ValueType,
};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::timeout_at;

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
/// Deadline of one non-streaming HTTP request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Master {
    client: reqwest::Client,
    pub base: String,
}

enum StreamItem {
    Event(Instant, Box<Event>),
    /// The stream ended: cleanly (`Ok`) or with a transport/framing error.
    End(Result<()>),
}

pub struct Subscription {
    pub framework_id: FrameworkId,
    pub stream_id: String,
    rx: mpsc::UnboundedReceiver<StreamItem>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Closes the connection: the master sees the scheduler go.
        self.reader.abort();
    }
}

/// What `Subscription::next` returns.
pub enum Next {
    Event(Instant, Box<Event>),
    Closed,
}

impl Subscription {
    /// The next event before `deadline`; an error on timeout, on a broken stream, and on an `ERROR`
    /// event. A clean end of stream is `Next::Closed`.
    pub async fn next(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &str,
    ) -> Result<Next> {
        let item = timeout_at(deadline, self.rx.recv()).await.map_err(|_| {
            anyhow!(
                "timed out waiting for {waiting_for} on framework {}",
                self.framework_id
            )
        })?;
        match item {
            Some(StreamItem::Event(at, event)) => {
                if event.kind == "ERROR" {
                    let message = event
                        .error
                        .as_ref()
                        .map(|e| e.message.as_str())
                        .unwrap_or("(no message)");
                    bail!("master sent ERROR on framework {} while waiting for {waiting_for}: {message}", self.framework_id);
                }
                Ok(Next::Event(at, event))
            }
            Some(StreamItem::End(Ok(()))) | None => Ok(Next::Closed),
            Some(StreamItem::End(Err(e))) => Err(e.context(format!(
                "subscription stream of {} broke while waiting for {waiting_for}",
                self.framework_id
            ))),
        }
    }

    /// Like `next`, but a closed stream is an error.
    pub async fn next_event(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &str,
    ) -> Result<(Instant, Box<Event>)> {
        match self.next(deadline, waiting_for).await? {
            Next::Event(at, event) => Ok((at, event)),
            Next::Closed => bail!(
                "master closed the stream of framework {} while waiting for {waiting_for}",
                self.framework_id
            ),
        }
    }
}

async fn read_stream(response: reqwest::Response, tx: mpsc::UnboundedSender<StreamItem>) {
    let mut body = response.bytes_stream();
    let mut decoder = Decoder::new();
    let end = loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => break Err(anyhow!(e).context("reading the subscription stream")),
            None => {
                break decoder
                    .finish()
                    .context("subscription stream ended inside a record")
            }
        };
        decoder.feed(&chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => {
                    let at = Instant::now();
                    match serde_json::from_slice::<Event>(&record) {
                        Ok(event) => {
                            if tx.send(StreamItem::Event(at, Box::new(event))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let text = String::from_utf8_lossy(&record[..record.len().min(300)])
                                .into_owned();
                            let _ = tx.send(StreamItem::End(Err(
                                anyhow!(e).context(format!("undecodable event: {text}"))
                            )));
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(StreamItem::End(Err(
                        anyhow!(e).context("bad RecordIO framing")
                    )));
                    return;
                }
            }
        }
    };
    let _ = tx.send(StreamItem::End(end));
}

async fn error_body(response: reqwest::Response) -> String {
    match tokio::time::timeout(Duration::from_secs(5), response.text()).await {
        Ok(Ok(text)) => text.chars().take(500).collect(),
        Ok(Err(e)) => format!("(body unreadable: {e})"),
        Err(_) => "(body not received within 5 s)".to_string(),
    }
}

impl Master {
    pub fn new(base: String) -> Result<Master> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Master { client, base })
    }

    /// `GET <path>` as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", error_body(response).await);
        }
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("GET {url}: reading the body"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("GET {url}: body is not JSON"))
    }

    /// SUBSCRIBE a new framework and wait (until `deadline`) for SUBSCRIBED.
    pub async fn subscribe(
        &self,
        name: &str,
        user: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Subscription> {
        let info = FrameworkInfo {
            user: user.to_string(),
            name: name.to_string(),
            id: None,
            failover_timeout: 0.0,
            checkpoint: false,
            role: None,
            roles: Vec::new(),
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Vec::new(),
            labels: None,
        };
        let mut call = Call::new("SUBSCRIBE", None);
        call.subscribe = Some(Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
        });
        let url = format!("{}/api/v1/scheduler", self.base);
        // No reqwest timeout here: it would cover the whole (endless) body.
        let response = timeout_at(
            deadline,
            self.client
                .post(&url)
                .header("Accept", "application/json")
                .json(&call)
                .send(),
        )
        .await
        .map_err(|_| anyhow!("SUBSCRIBE: no response headers from {url} in time"))?
        .with_context(|| format!("SUBSCRIBE: POST {url}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            bail!(
                "SUBSCRIBE: expected 200, got {status}: {}",
                error_body(response).await
            );
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .context("SUBSCRIBE: response has no Mesos-Stream-Id header")?
            .to_str()
            .context("SUBSCRIBE: Mesos-Stream-Id is not ASCII")?
            .to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_stream(response, tx));
        let mut sub = Subscription {
            framework_id: FrameworkId::new("(subscribing)"),
            stream_id,
            rx,
            reader,
        };
        let (_, first) = sub.next_event(deadline, "SUBSCRIBED").await?;
        if first.kind != "SUBSCRIBED" {
            bail!(
                "SUBSCRIBE: first event is {} (expected SUBSCRIBED)",
                first.kind
            );
        }
        let subscribed = first
            .subscribed
            .context("SUBSCRIBED event without 'subscribed'")?;
        sub.framework_id = subscribed.framework_id;
        Ok(sub)
    }

    /// Sends a non-SUBSCRIBE call; anything but 202 is an error.
    pub async fn call(&self, stream_id: &str, call: &Call) -> Result<()> {
        let url = format!("{}/api/v1/scheduler", self.base);
        let response = self
            .client
            .post(&url)
            .header("Accept", "application/json")
            .header(STREAM_ID_HEADER, stream_id)
            .timeout(CALL_TIMEOUT)
            .json(call)
            .send()
            .await
            .with_context(|| format!("{}: POST {url}", call.kind))?;
        let status = response.status();
        if status != reqwest::StatusCode::ACCEPTED {
            bail!(
                "{}: expected 202, got {status}: {}",
                call.kind,
                error_body(response).await
            );
        }
        Ok(())
    }

    pub async fn acknowledge(
        &self,
        sub_stream: &str,
        framework_id: &FrameworkId,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: String,
    ) -> Result<()> {
        let mut call = Call::new("ACKNOWLEDGE", Some(framework_id.clone()));
        call.acknowledge = Some(Acknowledge {
            agent_id,
            task_id,
            uuid,
        });
        self.call(sub_stream, &call).await
    }

    pub async fn teardown(&self, sub: &Subscription) -> Result<()> {
        self.call(
            &sub.stream_id,
            &Call::new("TEARDOWN", Some(sub.framework_id.clone())),
        )
        .await
    }

    pub async fn decline(
        &self,
        sub: &Subscription,
        offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    ) -> Result<()> {
        let mut call = Call::new("DECLINE", Some(sub.framework_id.clone()));
        call.decline = Some(Decline {
            offer_ids,
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.call(&sub.stream_id, &call).await
    }

    pub async fn launch(
        &self,
        sub: &Subscription,
        offer: &Offer,
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    ) -> Result<()> {
        let mut call = Call::new("ACCEPT", Some(sub.framework_id.clone()));
        call.accept = Some(Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation {
                kind: "LAUNCH".to_string(),
                id: None,
                launch: Some(Launch { task_infos: tasks }),
                launch_group: None,
            }],
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.call(&sub.stream_id, &call).await
    }
}

/// The shape of one task: what it runs and what it takes.
#[derive(Debug, Clone)]
pub struct TaskShape {
    pub command: String,
    pub cpus: f64,
    pub mem: f64,
}

const EPSILON: f64 = 1e-6;

impl TaskShape {
    /// How many tasks of this shape the offer holds.
    pub fn fits(&self, offer: &Offer) -> Result<usize> {
        let bag = ResourceBag::from_resources(&offer.resources)
            .with_context(|| format!("offer {} has malformed resources", offer.id))?;
        let by_cpus = ((bag.scalar("cpus") + EPSILON) / self.cpus).floor();
        let by_mem = ((bag.scalar("mem") + EPSILON) / self.mem).floor();
        Ok(by_cpus.min(by_mem).max(0.0) as usize)
    }

    /// A scalar resource of `name` shaped like the offer's (role, allocation_info, reservations).
    fn resource(offer: &Offer, name: &str, value: f64) -> Resource {
        match offer
            .resources
            .iter()
            .find(|r| r.name == name && r.kind == ValueType::Scalar)
        {
            Some(template) => Resource {
                scalar: Some(Scalar { value }),
                ranges: None,
                set: None,
                ..template.clone()
            },
            None => Resource {
                name: name.to_string(),
                kind: ValueType::Scalar,
                scalar: Some(Scalar { value }),
                ranges: None,
                set: None,
                role: None,
                allocation_info: offer.allocation_info.clone().or(Some(AllocationInfo {
                    role: Some("*".to_string()),
                })),
                reservations: None,
            },
        }
    }

    pub fn task(&self, offer: &Offer, id: &str) -> TaskInfo {
        TaskInfo {
            name: id.to_string(),
            task_id: TaskId::new(id),
            agent_id: offer.agent_id.clone(),
            resources: vec![
                Self::resource(offer, "cpus", self.cpus),
                Self::resource(offer, "mem", self.mem),
            ],
            command: Some(CommandInfo {
                shell: true,
                value: Some(self.command.clone()),
                arguments: Vec::new(),
                uris: Vec::new(),
                environment: None,
                user: None,
            }),
            executor: None,
            kill_policy: None,
            labels: None,
            data: None,
            container: None,
            health_check: None,
            check: None,
            discovery: None,
            max_completion_time: None,
            limits: None,
        }
    }
}

/// Sends ACKNOWLEDGE for every update that carries a `uuid`, concurrently (up to a limit) so the
/// event loop never waits on an acknowledgement, and reports failed acknowledgements.
pub struct Acker {
    master: Master,
    stream_id: String,
    framework_id: FrameworkId,
    set: tokio::task::JoinSet<Result<()>>,
    limit: std::sync::Arc<tokio::sync::Semaphore>,
    pub sent: usize,
}

/// Acknowledgements in flight at once.
const ACKS_IN_FLIGHT_MAX: usize = 32;

impl Acker {
    pub fn new(master: &Master, sub: &Subscription) -> Acker {
        Acker {
            master: master.clone(),
            stream_id: sub.stream_id.clone(),
            framework_id: sub.framework_id.clone(),
            set: tokio::task::JoinSet::new(),
            limit: std::sync::Arc::new(tokio::sync::Semaphore::new(ACKS_IN_FLIGHT_MAX)),
            sent: 0,
        }
    }

    pub fn ack(&mut self, status: &proto::TaskStatus) -> Result<()> {
        self.reap()?;
        let Some(uuid) = status.uuid.clone() else {
            return Ok(());
        };
        let agent_id = status.agent_id.clone().with_context(|| {
            format!(
                "update {} of task {} has a uuid but no agent_id",
                status.state.name(),
                status.task_id
            )
        })?;
        let (master, stream_id, framework_id, limit) = (
            self.master.clone(),
            self.stream_id.clone(),
            self.framework_id.clone(),
            self.limit.clone(),
        );
        let task_id = status.task_id.clone();
        let state = status.state.name();
        self.set.spawn(async move {
            let _permit = limit.acquire_owned().await.context("ack limiter closed")?;
            master
                .acknowledge(&stream_id, &framework_id, agent_id, task_id.clone(), uuid)
                .await
                .with_context(|| format!("acknowledging {state} of task {task_id}"))
        });
        self.sent += 1;
        Ok(())
    }

    /// Surfaces the first failed acknowledgement among those finished.
    fn reap(&mut self) -> Result<()> {
        while let Some(done) = self.set.try_join_next() {
            done.context("acknowledgement task failed")??;
        }
        Ok(())
    }

    /// Waits for every acknowledgement in flight.
    pub async fn drain(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        let set = &mut self.set;
        timeout_at(deadline, async move {
            while let Some(done) = set.join_next().await {
                done.context("acknowledgement task failed")??;
            }
            Ok::<(), anyhow::Error>(())
        })
        .await
        .map_err(|_| anyhow!("acknowledgements still in flight at the deadline"))?
    }
}
