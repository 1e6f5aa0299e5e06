//! The supervisor's decisions as a pure state machine: events in (a server started or exited, a
//! role may start, time passed, stop requested), commands out (spawn, signal, say, finished). `now`
//! is passed in as seconds since the supervisor started; nothing here spawns, signals or sleeps,
//! so every rule is tested directly.
//!
//! Rules:
//! - A server that exits while the cluster runs is restarted after a delay: 1 s, doubled for each
//!   exit that follows a short run, capped at 10 s, back to 1 s after it ran for a while. This is
//!   the supervisor that fail-fast relies on (mesos-ha.md 3.2): a master that loses ZooKeeper or
//!   its leadership exits with code 3 and comes back as a standby.
//! - Stopping goes role by role in `Role::STOP_ORDER`: SIGTERM to every running server of the role,
//!   SIGKILL to those still running after the role's grace, and the next role once all have exited.
//!   A second stop request SIGKILLs everything still running.

use crate::layout::Role;

pub type ServerIndex = usize;

/// Timing rules, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub restart_delay_initial: f64,
    pub restart_delay_max: f64,
    /// A run at least this long resets the restart delay.
    pub stable_run: f64,
    /// How long an agent may take to kill its tasks after SIGTERM.
    pub stop_grace_agent: f64,
    pub stop_grace_other: f64,
    /// How long to wait for a SIGKILLed process to be reaped before giving up on it.
    pub kill_grace: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart_delay_initial: 1.0,
            restart_delay_max: 10.0,
            stable_run: 30.0,
            stop_grace_agent: 20.0,
            stop_grace_other: 10.0,
            kill_grace: 5.0,
        }
    }
}

impl Policy {
    fn stop_grace(&self, role: Role) -> f64 {
        if role == Role::Agent {
            self.stop_grace_agent
        } else {
            self.stop_grace_other
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitKind::Code(c) => write!(f, "code {c}"),
            ExitKind::Signal(9) => write!(f, "killed by SIGKILL"),
            ExitKind::Signal(15) => write!(f, "killed by SIGTERM"),
            ExitKind::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Servers of this role may start now (startup goes role by role).
    Launch(Role),
    Spawned {
        server: ServerIndex,
        pid: u32,
    },
    SpawnFailed {
        server: ServerIndex,
        error: String,
    },
    Exited {
        server: ServerIndex,
        pid: u32,
        how: ExitKind,
    },
    Tick,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Spawn(ServerIndex),
    Signal {
        server: ServerIndex,
        pid: u32,
        signal: Signal,
    },
    /// A line for the person watching.
    Say(String),
    /// Everything has exited (or was given up on): the supervisor may leave.
    Finished,
}

#[derive(Debug, Clone, PartialEq)]
enum ServerState {
    NotStarted,
    Spawning,
    Running {
        pid: u32,
        since: f64,
    },
    WaitingRestart {
        at: f64,
    },
    /// Stopped for good (or given up on after SIGKILL).
    Done,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    role: Role,
    state: ServerState,
    /// The delay the next restart waits.
    next_delay: f64,
    /// Whether it ever ran (a first start says "started", later ones "restarted").
    started_before: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Running,
    Stopping {
        stage: usize,
        deadline: f64,
        killed: bool,
    },
    Finished,
}

#[derive(Debug)]
pub struct Supervisor {
    policy: Policy,
    entries: Vec<Entry>,
    phase: Phase,
}

impl Supervisor {
    /// `servers` are (name, role) in the layout's order; indexes into it name servers.
    pub fn new(policy: Policy, servers: impl IntoIterator<Item = (String, Role)>) -> Self {
        let entries = servers
            .into_iter()
            .map(|(name, role)| Entry {
                name,
                role,
                state: ServerState::NotStarted,
                next_delay: policy.restart_delay_initial,
                started_before: false,
            })
            .collect();
        Supervisor {
            policy,
            entries,
            phase: Phase::Running,
        }
    }

    pub fn stopping(&self) -> bool {
        !matches!(self.phase, Phase::Running)
    }

    /// The pid of a running server.
    #[cfg(test)]
    pub fn pid(&self, server: ServerIndex) -> Option<u32> {
        match self.entries.get(server)?.state {
            ServerState::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    pub fn handle(&mut self, now: f64, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Launch(role) => {
                if self.phase == Phase::Running {
                    for (i, e) in self.entries.iter_mut().enumerate() {
                        if e.role == role && e.state == ServerState::NotStarted {
                            e.state = ServerState::Spawning;
                            out.push(Command::Spawn(i));
                        }
                    }
                }
            }
            Event::Spawned { server, pid } => self.on_spawned(now, server, pid, &mut out),
            Event::SpawnFailed { server, error } => {
                if let Some(e) = self.entries.get_mut(server) {
                    if e.state == ServerState::Spawning {
                        if self.phase == Phase::Running {
                            let delay = take_delay(e, &self.policy);
                            e.state = ServerState::WaitingRestart { at: now + delay };
                            out.push(Command::Say(format!(
                                "{} could not start ({error}); retrying in {}",
                                e.name,
                                secs(delay)
                            )));
                        } else {
                            e.state = ServerState::Done;
                        }
                    }
                }
                self.advance_stop(now, &mut out);
            }
            Event::Exited { server, pid, how } => self.on_exited(now, server, pid, how, &mut out),
            Event::Tick => self.on_tick(now, &mut out),
            Event::Stop => self.on_stop(now, &mut out),
        }
        out
    }

    fn on_spawned(&mut self, now: f64, server: ServerIndex, pid: u32, out: &mut Vec<Command>) {
        let Some(e) = self.entries.get_mut(server) else {
            return;
        };
        if e.state != ServerState::Spawning {
            return;
        }
        e.state = ServerState::Running { pid, since: now };
        let verb = if e.started_before {
            "restarted"
        } else {
            "started"
        };
        e.started_before = true;
        out.push(Command::Say(format!("{} {verb} (pid {pid})", e.name)));
        if self.phase != Phase::Running {
            // Spawned while a stop began: it joins the stop (its role's turn may have passed).
            out.push(Command::Signal {
                server,
                pid,
                signal: Signal::Term,
            });
        }
    }

    fn on_exited(
        &mut self,
        now: f64,
        server: ServerIndex,
        pid: u32,
        how: ExitKind,
        out: &mut Vec<Command>,
    ) {
        let policy = self.policy.clone();
        let running = self.phase == Phase::Running;
        let Some(e) = self.entries.get_mut(server) else {
            return;
        };
        let since = match e.state {
            ServerState::Running {
                pid: current,
                since,
            } if current == pid => since,
            _ => return, // an earlier incarnation, already accounted for
        };
        if running {
            if now - since >= policy.stable_run {
                e.next_delay = policy.restart_delay_initial;
            }
            let delay = take_delay(e, &policy);
            e.state = ServerState::WaitingRestart { at: now + delay };
            out.push(Command::Say(format!(
                "{} exited ({how}); restarting in {}",
                e.name,
                secs(delay)
            )));
        } else {
            e.state = ServerState::Done;
            out.push(Command::Say(format!("{} stopped ({how})", e.name)));
            self.advance_stop(now, out);
        }
    }

    fn on_tick(&mut self, now: f64, out: &mut Vec<Command>) {
        match self.phase.clone() {
            Phase::Running => {
                for (i, e) in self.entries.iter_mut().enumerate() {
                    if matches!(e.state, ServerState::WaitingRestart { at } if at <= now) {
                        e.state = ServerState::Spawning;
                        out.push(Command::Spawn(i));
                    }
                }
            }
            Phase::Stopping {
                stage,
                deadline,
                killed,
            } if now >= deadline => {
                let role = Role::STOP_ORDER[stage];
                if !killed {
                    for (i, e) in self.entries.iter().enumerate() {
                        if let (true, ServerState::Running { pid, .. }) = (e.role == role, &e.state)
                        {
                            out.push(Command::Say(format!(
                                "{} did not stop in time; sending SIGKILL",
                                e.name
                            )));
                            out.push(Command::Signal {
                                server: i,
                                pid: *pid,
                                signal: Signal::Kill,
                            });
                        }
                    }
                    self.phase = Phase::Stopping {
                        stage,
                        deadline: now + self.policy.kill_grace,
                        killed: true,
                    };
                } else {
                    for e in self.entries.iter_mut().filter(|e| e.role == role) {
                        if let ServerState::Running { pid, .. } = e.state {
                            out.push(Command::Say(format!(
                                "{} (pid {pid}) is still there after SIGKILL; giving up on it",
                                e.name
                            )));
                            e.state = ServerState::Done;
                        }
                    }
                    self.advance_stop(now, out);
                }
            }
            Phase::Stopping { .. } | Phase::Finished => {}
        }
    }

    fn on_stop(&mut self, now: f64, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Running => {
                for e in &mut self.entries {
                    if matches!(
                        e.state,
                        ServerState::NotStarted | ServerState::WaitingRestart { .. }
                    ) {
                        e.state = ServerState::Done;
                    }
                }
                self.begin_stage(now, 0, out);
            }
            Phase::Stopping { stage, .. } => {
                out.push(Command::Say(
                    "stopping now: SIGKILL to every server still running".into(),
                ));
                for (i, e) in self.entries.iter().enumerate() {
                    if let ServerState::Running { pid, .. } = e.state {
                        out.push(Command::Signal {
                            server: i,
                            pid,
                            signal: Signal::Kill,
                        });
                    }
                }
                self.phase = Phase::Stopping {
                    stage,
                    deadline: now + self.policy.kill_grace,
                    killed: true,
                };
            }
            Phase::Finished => {}
        }
    }

    /// Starts stopping the first role from `stage` on that has a running server.
    fn begin_stage(&mut self, now: f64, mut stage: usize, out: &mut Vec<Command>) {
        while stage < Role::STOP_ORDER.len() {
            let role = Role::STOP_ORDER[stage];
            let mut signalled = false;
            for (i, e) in self.entries.iter().enumerate() {
                if let (true, ServerState::Running { pid, .. }) = (e.role == role, &e.state) {
                    out.push(Command::Signal {
                        server: i,
                        pid: *pid,
                        signal: Signal::Term,
                    });
                    signalled = true;
                }
            }
            let spawning = self
                .entries
                .iter()
                .any(|e| e.role == role && e.state == ServerState::Spawning);
            if signalled || spawning {
                out.push(Command::Say(format!("stopping {}", role.plural())));
                self.phase = Phase::Stopping {
                    stage,
                    deadline: now + self.policy.stop_grace(role),
                    killed: false,
                };
                return;
            }
            stage += 1;
        }
        self.phase = Phase::Finished;
        out.push(Command::Finished);
    }

    /// Moves to the next role once every server of the current one is done.
    fn advance_stop(&mut self, now: f64, out: &mut Vec<Command>) {
        let Phase::Stopping { stage, .. } = self.phase else {
            return;
        };
        let role = Role::STOP_ORDER[stage];
        let busy = self.entries.iter().any(|e| {
            e.role == role && matches!(e.state, ServerState::Running { .. } | ServerState::Spawning)
        });
        if !busy {
            self.begin_stage(now, stage + 1, out);
        }
    }
}

/// The delay to wait now, doubling the next one up to the cap.
fn take_delay(e: &mut Entry, policy: &Policy) -> f64 {
    let delay = e.next_delay;
    e.next_delay = (delay * 2.0).min(policy.restart_delay_max);
    delay
}

fn secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
