"""The registry in the replicated log across failures (replicated-log.md 1, 6, 7; operational guide,
"replacing a master"): 3 ZooKeeper nodes, 3 masters `--quorum=2 --registry=replicated_log`, 2
agents, 2 s sessions, one cluster shared by the module.

`told` collects every agent id that some agent was told REGISTERED with, over the whole module;
every registry check asserts it is a subset of the leader's `/registrar(1)/registry` agents. Where a
new leader's registry is inspected, the agents are first kept from connecting to any master (TCP
reset), so what it lists was recovered from the log, not re-admitted by a REREGISTER (a new leader
admits an unknown reregistering agent again, which would hide a lost write).
"""

import os
import re
import time

import pytest

from harness import SplitBrainMonitor, wait_until
from harness.agent_sim import RegistrationWitnesses, SimAgents
from harness.checks import SESSION_TIMEOUT
from harness.cluster import Cluster
from harness.replog import (
    CATCH_UP_DEADLINE,
    LOG_START_DEADLINE,
    REPLOG_FAILOVER_DEADLINE,
    REREGISTER_DEADLINE,
    agent_ids,
    agents_held_off,
    assert_registry,
    kill9_leader_and_wait,
    leader_id,
    registry_agent_ids,
    registry_hostnames,
    wait_log_metrics,
)
from harness.util import artifact_dir, record_timing

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def replog_cluster(request):
    c = Cluster(request.node.nodeid + "__module", masters=3, agents=2, quorum=2,
                session_timeout=SESSION_TIMEOUT, registry="replicated_log")
    try:
        c.start(timeout=90)
        wait_log_metrics(c.masters, LOG_START_DEADLINE, recovered=1, ensemble_size=3)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def told():
    """{agent id: who was told} for every REGISTERED an agent received during the module."""
    return {}


@pytest.fixture
def cluster(replog_cluster, told, request):
    c = replog_cluster
    c.mark_logs(f"test {request.node.nodeid} setup")
    c.ensure_healthy(timeout=60)
    # Every replica VOTING (a master restarted by ensure_healthy recovers from its disk).
    wait_log_metrics(c.masters, CATCH_UP_DEADLINE, recovered=1, ensemble_size=len(c.masters))
    for a, aid in agent_ids(c.agents).items():
        told[aid] = a.name
    c.mark_logs(f"test {request.node.nodeid} begins")
    try:
        yield c
    finally:
        c.mark_logs(f"test {request.node.nodeid} ends")
        for m in list(c.extras):
            m.process.stop(grace=3.0)
            if not m.running():
                c.extras.remove(m)
        c.heal_all()
        try:
            with open(f"{artifact_dir(request.node.nodeid)}/cluster.txt", "w") as f:
                f.write(c.describe() + "\n")
        except Exception:  # noqa: BLE001 - diagnostics only
            pass


def reregistrations(master):
    return master.metrics().get("master/slave_reregistrations")


# -- 1 ------------------------------------------------------------------------------------------
def test_registry_survives_kill9_of_the_leader(cluster, told, request):
    old = cluster.wait_leader(10)
    old_id = leader_id(old)
    ids = agent_ids(cluster.agents)
    assert_registry(old, told, master_id=old_id, context="before the failover")

    with agents_held_off(cluster):
        _, new, t_failover = kill9_leader_and_wait(cluster)
        new_id = leader_id(new)
        assert new_id != old_id
        registry = assert_registry(new, told, master_id=new_id,
                                   context=f"right after kill -9 of {old.name}, agents held off")
        assert reregistrations(new) == 0, "an agent reregistered although it was held off"
    record_timing(request.node.name, "kill -9 -> new leader recovered the registry", t_failover)
    for a, aid in ids.items():
        assert aid in registry_agent_ids(registry), (a.name, aid)

    # The agents come back under the same ids; nothing is admitted twice.
    cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
    assert agent_ids(cluster.agents) == ids
    after = assert_registry(new, told, master_id=new_id, context="after the agents reregistered")
    ids_listed = [a["id"]["value"] for a in after["agents"]]
    assert len(ids_listed) == len(set(ids_listed)), f"an agent is listed twice: {ids_listed}"

    # The killed master restarts from its disk and votes again.
    cluster.restart(old)
    wait_log_metrics([old], CATCH_UP_DEADLINE, recovered=1)
    assert cluster.leader() is new


# -- 2 ------------------------------------------------------------------------------------------
SIM_COUNT = 200


def test_no_acknowledged_registration_lost_across_two_kill9(cluster, told, request):
    """200 simulated agents (tepui-bench sim-agents) register and reregister while the leader is
    killed twice; witness agents register one after the other all along. Every id a witness was
    told REGISTERED is in the final leader's registry."""
    name = request.node.name
    first = cluster.wait_leader(10)
    first_id = leader_id(first)
    witnesses = RegistrationWitnesses(cluster, octet=61, threads=6)
    sim = SimAgents(cluster, SIM_COUNT, octet=60)
    t0 = time.monotonic()
    try:
        sim.start()
        witnesses.start()
        # Kill 1: the first leader, with part of the 200 registered and witnesses acknowledged.
        wait_until(lambda: first.metrics().get("master/slave_registrations", 0) >= SIM_COUNT // 4, 30,
                   f"{first.name} to register {SIM_COUNT // 4} agents")
        witnesses.wait_acked(3, 15, master_id=first_id)
        acked_before_1 = witnesses.count()
        regs_1 = first.metrics().get("master/slave_registrations")
        assert cluster.kill9(first) == -9
        t_kill1 = time.monotonic() - t0
        cluster.restart(first)  # as a supervisor would, at once: its log is on disk
        second = cluster.wait_leader(REPLOG_FAILOVER_DEADLINE, exclude=[first])
        second_id = leader_id(second)
        record_timing(name, "kill -9 #1 -> new leader serving", time.monotonic() - t0 - t_kill1)
        # The restarted master votes again (needed: kill 2 leaves two of three).
        wait_log_metrics([first], CATCH_UP_DEADLINE, recovered=1)

        # Kill 2: the second leader, in the middle of the reregistration storm.
        witnesses.wait_acked(3, 20, master_id=second_id)
        regs = second.metrics()
        acked_before_2 = witnesses.count()
        assert cluster.kill9(second) == -9
        t_kill2 = time.monotonic() - t0
        third = cluster.wait_leader(REPLOG_FAILOVER_DEADLINE, exclude=[second])
        third_id = leader_id(third)
        record_timing(name, "kill -9 #2 -> new leader serving", time.monotonic() - t0 - t_kill2)

        witnesses.wait_acked(3, 20, master_id=third_id)
        sim.wait_event(lambda e: e.get("event") == "all_registered" and e.get("leader_id") == third_id, 60,
                       f"sim-agents: all {SIM_COUNT} agents registered with {third.name} ({third_id})")
        record_timing(name, f"kill -9 #2 -> all {SIM_COUNT} sim agents registered with the new leader",
                      time.monotonic() - t0 - t_kill2)
    finally:
        witnesses.stop()
        sim_rc = sim.stop()
    print(f"witnesses: {witnesses.summary()}; kills at t={t_kill1:.2f}s ({acked_before_1} acked) and "
          f"t={t_kill2:.2f}s ({acked_before_2} acked); first leader before kill 1: registrations {regs_1}; "
          f"second leader before kill 2: "
          f"registrations {regs.get('master/slave_registrations')}, "
          f"reregistrations {regs.get('master/slave_reregistrations')}")
    assert sim_rc == 0, f"sim-agents exited with {sim_rc}:\n{sim.process.tail(20)}"

    acks = dict(witnesses.acked)
    by_master = {}
    for a in acks.values():
        by_master[a.master_id] = by_master.get(a.master_id, 0) + 1
    # The witnesses were acknowledged by each of the three leaders (the kills hit live traffic).
    for label, mid in (("first", first_id), ("second", second_id), ("third", third_id)):
        assert by_master.get(mid), f"no witness was acknowledged by the {label} leader ({mid}): {by_master}"
    for aid, a in acks.items():
        told[aid] = f"witness {a.hostname} (acked by {a.master_id})"

    registry = third.registry()
    ids = registry_agent_ids(registry)
    lost = sorted((a.acked, aid, a.hostname, a.master_id) for aid, a in acks.items() if aid not in ids)
    assert not lost, (
        f"{len(lost)} of {len(acks)} acknowledged registrations are not in {third.name}'s registry "
        f"({len(ids)} agents); kills at t={t_kill1:.2f}s and t={t_kill2:.2f}s; lost (t, id, host, acked by): "
        f"{lost[:10]}")
    assert_registry(third, told, master_id=third_id, context="after two kill -9 under registration load")

    # Every simulated agent is admitted, and those the final leader lists are all in its registry.
    hosts = registry_hostnames(registry)
    missing_sims = [f"sim-{i}" for i in range(SIM_COUNT) if f"sim-{i}" not in hosts]
    assert not missing_sims, f"simulated agents missing from the registry: {missing_sims[:10]}"
    listed = {s["id"] for s in third.state()["slaves"] if str(s.get("hostname", "")).startswith("sim-")}
    assert listed <= ids, f"{third.name} lists agents that its registry lacks: {sorted(listed - ids)[:10]}"
    print(f"{len(acks)} witness registrations acknowledged, all in the final registry ({len(ids)} agents)")


# -- 5 ------------------------------------------------------------------------------------------
def test_master_replaced_with_an_empty_log_catches_up_and_leads(cluster, told, request):
    """Operational guide: a failed master is replaced by one with an empty log, which catches up
    from the others; then it is made the leader and must serve the whole registry."""
    name = request.node.name
    leader = cluster.wait_leader(10)
    assert_registry(leader, told, master_id=leader_id(leader), context="before the replacement")
    standbys = [m for m in cluster.masters if m is not leader]
    replaced, other = standbys

    assert cluster.kill9(replaced) == -9
    cluster.wipe_log(replaced)
    t0 = time.monotonic()
    replaced.start()
    wait_log_metrics([replaced], CATCH_UP_DEADLINE, recovered=1)
    assert os.path.isdir(replaced.log_dir), f"{replaced.name} votes but has no {replaced.log_dir}"
    record_timing(name, f"empty log -> {replaced.name} VOTING (registrar/log/recovered=1)", time.monotonic() - t0)
    wait_log_metrics(cluster.masters, 15, recovered=1, ensemble_size=3)
    assert cluster.leader() is leader, "the replacement disturbed the leader"

    # Make the replacement lead: kill the leader and the other standby, restart both at once (their
    # logs are intact; their new znodes are younger than the replacement's, so it must win).
    with agents_held_off(cluster):
        t0 = time.monotonic()
        cluster.kill9(leader)
        cluster.kill9(other)
        cluster.restart(leader)
        cluster.restart(other)
        new = cluster.wait_leader(REPLOG_FAILOVER_DEADLINE)
        record_timing(name, f"kill -9 of {leader.name}+{other.name} -> {new.name} leads", time.monotonic() - t0)
        assert new is replaced, f"{new.name} leads, expected the replaced master {replaced.name}"
        assert_registry(replaced, told, master_id=leader_id(replaced),
                        context="the replaced master leading, agents held off")
        assert reregistrations(replaced) == 0
    cluster.wait_agents(replaced, timeout=REREGISTER_DEADLINE)
    assert_registry(replaced, told, master_id=leader_id(replaced), context="after the agents reregistered")
    wait_log_metrics(cluster.masters, CATCH_UP_DEADLINE, recovered=1, ensemble_size=3)


# -- 7 ------------------------------------------------------------------------------------------
REFUSE_DEADLINE = SESSION_TIMEOUT + 15.0


def test_master_beyond_the_quorum_refuses_to_run(cluster, told, request):
    """Operational guide, NOTE on quorums: with 3 masters at --quorum=2 running, a 4th with
    --quorum=2 would allow two disjoint quorums; it must refuse to run (non-zero exit, a log line
    naming the quorum and the number of replicas) and the cluster keeps its leader."""
    leader = cluster.wait_leader(10)
    lid = leader_id(leader)
    before = assert_registry(leader, told, master_id=lid, context="before the 4th master")
    monitor = SplitBrainMonitor(cluster).start()
    t0 = time.monotonic()
    try:
        extra = cluster.spawn_master("m4", 24)  # --quorum=2, same ZooKeeper, its own empty log
        rc = extra.wait_exit(REFUSE_DEADLINE)
        t_exit = time.monotonic() - t0
    finally:
        monitor.stop()
    log = extra.current_log()
    assert rc is not None, (
        f"a 4th master with --quorum=2 (3 masters already running) still runs {REFUSE_DEADLINE:.0f}s after "
        f"its start; expected it to refuse to run (non-zero exit). Its log tail:\n{extra.tail(25)}")
    assert rc != 0, f"the 4th master exited with 0; expected a non-zero exit. Log tail:\n{extra.tail(25)}"
    lines = [ln for ln in log.splitlines()
             if re.search(r"quorum\D{0,4}2\b", ln, re.I)
             and re.search(r"\b4\b\D{0,20}replica|replica\D{0,20}\b4\b", ln, re.I)]
    assert lines, (f"no line of the 4th master's log names the quorum (2) and the number of replicas (4); "
                   f"exit code {rc}; log tail:\n{extra.tail(25)}")
    record_timing(request.node.name, f"4th master refused (exit {rc})", t_exit)

    # The cluster kept its leader the whole time and still serves the same registry.
    changes = [(t, em) for t, em, _ in monitor.rounds if em.get(leader.name) is False or
               any(e for n, e in em.items() if n != leader.name)]
    assert not changes, f"leadership moved while the 4th master ran:\n{monitor.timeline()}"
    assert cluster.leader() is leader and leader_id(leader) == lid
    after = assert_registry(leader, told, master_id=lid, context="after the 4th master exited")
    assert registry_agent_ids(after) >= registry_agent_ids(before)
    wait_log_metrics(cluster.masters, 15, recovered=1, ensemble_size=3)
    cluster.wait_agents(leader, timeout=5)
