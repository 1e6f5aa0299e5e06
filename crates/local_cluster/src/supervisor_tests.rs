use super::*;

/// zookeeper-1, master-1, master-2, agent-1, marathon-1 (indexes 0..=4).
fn cluster() -> Supervisor {
    let servers = [
        ("zookeeper-1", Role::ZooKeeper),
        ("master-1", Role::Master),
        ("master-2", Role::Master),
        ("agent-1", Role::Agent),
        ("marathon-1", Role::Marathon),
    ];
    Supervisor::new(
        Policy::default(),
        servers.iter().map(|(n, r)| (n.to_string(), *r)),
    )
}

fn spawns(commands: &[Command]) -> Vec<ServerIndex> {
    commands
        .iter()
        .filter_map(|c| {
            if let Command::Spawn(i) = c {
                Some(*i)
            } else {
                None
            }
        })
        .collect()
}

fn signals(commands: &[Command]) -> Vec<(ServerIndex, Signal)> {
    commands
        .iter()
        .filter_map(|c| {
            if let Command::Signal { server, signal, .. } = c {
                Some((*server, *signal))
            } else {
                None
            }
        })
        .collect()
}

fn says(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| {
            if let Command::Say(s) = c {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect()
}

/// Launches every role and reports each spawn as pid 100+index.
fn all_running(s: &mut Supervisor) {
    for role in Role::START_ORDER {
        for i in spawns(&s.handle(0.0, Event::Launch(role))) {
            s.handle(
                0.0,
                Event::Spawned {
                    server: i,
                    pid: 100 + i as u32,
                },
            );
        }
    }
}

#[test]
fn launch_spawns_only_the_role_and_only_once() {
    let mut s = cluster();
    assert_eq!(
        spawns(&s.handle(0.0, Event::Launch(Role::Master))),
        vec![1, 2]
    );
    assert!(spawns(&s.handle(0.0, Event::Launch(Role::Master))).is_empty());
    let out = s.handle(0.1, Event::Spawned { server: 1, pid: 42 });
    assert_eq!(says(&out), vec!["master-1 started (pid 42)"]);
    assert_eq!(s.pid(1), Some(42));
}

#[test]
fn an_exited_master_restarts_after_one_second() {
    let mut s = cluster();
    all_running(&mut s);
    let out = s.handle(
        10.0,
        Event::Exited {
            server: 2,
            pid: 102,
            how: ExitKind::Code(3),
        },
    );
    assert_eq!(
        says(&out),
        vec!["master-2 exited (code 3); restarting in 1 s"]
    );
    assert!(spawns(&s.handle(10.9, Event::Tick)).is_empty());
    assert_eq!(spawns(&s.handle(11.0, Event::Tick)), vec![2]);
    let out = s.handle(
        11.0,
        Event::Spawned {
            server: 2,
            pid: 500,
        },
    );
    assert_eq!(says(&out), vec!["master-2 restarted (pid 500)"]);
}

#[test]
fn quick_failures_back_off_up_to_ten_seconds_and_a_long_run_resets() {
    let mut s = cluster();
    all_running(&mut s);
    let mut now = 1.0;
    let mut pid = 102;
    let mut delays = Vec::new();
    for _ in 0..6 {
        let out = s.handle(
            now,
            Event::Exited {
                server: 2,
                pid,
                how: ExitKind::Signal(9),
            },
        );
        let line = says(&out).pop().unwrap();
        delays.push(line.rsplit("restarting in ").next().unwrap().to_string());
        now += 10.0;
        assert_eq!(spawns(&s.handle(now, Event::Tick)), vec![2]);
        pid += 1;
        s.handle(now, Event::Spawned { server: 2, pid });
        now += 1.0; // a short run
    }
    assert_eq!(delays, ["1 s", "2 s", "4 s", "8 s", "10 s", "10 s"]);
    let out = s.handle(
        now + 60.0,
        Event::Exited {
            server: 2,
            pid,
            how: ExitKind::Code(1),
        },
    );
    assert!(says(&out)[0].ends_with("restarting in 1 s"), "{out:?}");
}

#[test]
fn exits_of_earlier_incarnations_are_ignored() {
    let mut s = cluster();
    all_running(&mut s);
    let out = s.handle(
        5.0,
        Event::Exited {
            server: 1,
            pid: 999,
            how: ExitKind::Code(3),
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.pid(1), Some(101));
}

#[test]
fn a_failed_spawn_is_retried_with_backoff() {
    let mut s = cluster();
    s.handle(0.0, Event::Launch(Role::ZooKeeper));
    let out = s.handle(
        0.0,
        Event::SpawnFailed {
            server: 0,
            error: "No such file".into(),
        },
    );
    assert_eq!(
        says(&out),
        vec!["zookeeper-1 could not start (No such file); retrying in 1 s"]
    );
    assert_eq!(spawns(&s.handle(1.0, Event::Tick)), vec![0]);
}

#[test]
fn stop_goes_agents_then_marathon_then_masters_then_zookeeper() {
    let mut s = cluster();
    all_running(&mut s);
    let out = s.handle(20.0, Event::Stop);
    assert_eq!(signals(&out), vec![(3, Signal::Term)]);
    let out = s.handle(
        21.0,
        Event::Exited {
            server: 3,
            pid: 103,
            how: ExitKind::Code(0),
        },
    );
    assert_eq!(signals(&out), vec![(4, Signal::Term)], "{out:?}");
    let out = s.handle(
        21.5,
        Event::Exited {
            server: 4,
            pid: 104,
            how: ExitKind::Code(0),
        },
    );
    assert_eq!(signals(&out), vec![(1, Signal::Term), (2, Signal::Term)]);
    let out = s.handle(
        22.0,
        Event::Exited {
            server: 1,
            pid: 101,
            how: ExitKind::Code(0),
        },
    );
    assert!(signals(&out).is_empty(), "waits for master-2 too: {out:?}");
    let out = s.handle(
        22.1,
        Event::Exited {
            server: 2,
            pid: 102,
            how: ExitKind::Code(0),
        },
    );
    assert_eq!(signals(&out), vec![(0, Signal::Term)]);
    let out = s.handle(
        23.0,
        Event::Exited {
            server: 0,
            pid: 100,
            how: ExitKind::Signal(15),
        },
    );
    assert!(out.contains(&Command::Finished), "{out:?}");
}

#[test]
fn nothing_restarts_while_stopping() {
    let mut s = cluster();
    all_running(&mut s);
    s.handle(
        1.0,
        Event::Exited {
            server: 1,
            pid: 101,
            how: ExitKind::Code(3),
        },
    );
    s.handle(1.5, Event::Stop);
    // master-1 waited to restart; stopping cancels that.
    assert!(spawns(&s.handle(5.0, Event::Tick)).is_empty());
    // A master exiting on its own during the agents' stage is not restarted either.
    let out = s.handle(
        5.0,
        Event::Exited {
            server: 2,
            pid: 102,
            how: ExitKind::Code(3),
        },
    );
    assert_eq!(says(&out), vec!["master-2 stopped (code 3)"]);
}

#[test]
fn a_server_that_ignores_sigterm_gets_sigkill_after_its_grace() {
    let mut s = cluster();
    all_running(&mut s);
    s.handle(0.0, Event::Stop);
    assert!(signals(&s.handle(19.9, Event::Tick)).is_empty());
    assert_eq!(
        signals(&s.handle(20.0, Event::Tick)),
        vec![(3, Signal::Kill)]
    );
    // Still not reaped after the kill grace: given up on, the stop goes on.
    let out = s.handle(25.0, Event::Tick);
    assert_eq!(signals(&out), vec![(4, Signal::Term)], "{out:?}");
}

#[test]
fn a_second_stop_kills_everything_left() {
    let mut s = cluster();
    all_running(&mut s);
    s.handle(0.0, Event::Stop);
    let out = s.handle(1.0, Event::Stop);
    let mut killed = signals(&out);
    killed.sort_by_key(|(i, _)| *i);
    assert_eq!(
        killed,
        (0..5).map(|i| (i, Signal::Kill)).collect::<Vec<_>>()
    );
}

#[test]
fn stop_before_anything_started_finishes_at_once() {
    let mut s = cluster();
    assert_eq!(s.handle(0.0, Event::Stop), vec![Command::Finished]);
    assert!(s.handle(1.0, Event::Launch(Role::Master)).is_empty());
}

#[test]
fn a_spawn_that_lands_during_stop_is_told_to_stop() {
    let mut s = cluster();
    s.handle(0.0, Event::Launch(Role::ZooKeeper));
    s.handle(0.0, Event::Stop); // zookeeper-1 is spawning: the stop waits for it
    let out = s.handle(0.1, Event::Spawned { server: 0, pid: 7 });
    assert_eq!(signals(&out), vec![(0, Signal::Term)]);
    let out = s.handle(
        0.2,
        Event::Exited {
            server: 0,
            pid: 7,
            how: ExitKind::Code(0),
        },
    );
    assert!(out.contains(&Command::Finished), "{out:?}");
}
