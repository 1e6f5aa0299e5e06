"""Changing the number of masters and `--quorum` as the operational guide describes ("changing the
master quorum"), with the registry in the replicated log (replicated-log.md 1, 6, 7). One ZooKeeper
ensemble for the module; each test runs its own masters and agents under its own ZooKeeper path
(addresses and uids of the slot are reused one test after the other).

Where a new leader's registry is inspected, the agents are first kept from connecting to any
master (TCP reset), so what it lists was recovered from the log, not re-admitted by a REREGISTER.
"""

import time

import pytest

from harness import ZKEnsemble
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
    restart_with_quorum,
    wait_log_metrics,
)
from harness.util import record_timing

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def ensemble(request):
    ens = ZKEnsemble(request.node.nodeid + "__zk")
    try:
        ens.start(timeout=60)
        yield ens
    finally:
        ens.stop()


@pytest.fixture
def make_cluster(ensemble, request):
    """make_cluster(masters, agents, quorum, zk_path): a cluster on the module's ensemble, started
    (a leader, every agent active, every replica VOTING); stopped at teardown."""
    made = []

    def make(masters, agents, quorum, zk_path):
        c = Cluster(request.node.nodeid, masters=masters, agents=agents, quorum=quorum, zk=ensemble,
                    zk_path=zk_path, session_timeout=SESSION_TIMEOUT, registry="replicated_log")
        made.append(c)
        t0 = time.monotonic()
        c.start(timeout=LOG_START_DEADLINE + 30)
        wait_log_metrics(c.masters, LOG_START_DEADLINE, recovered=1, ensemble_size=masters)
        record_timing(request.node.name, f"{masters} new masters (--quorum={quorum}) leading with agents",
                      time.monotonic() - t0)
        return c

    try:
        yield make
    finally:
        for c in made:
            try:
                with open(f"{c.out_dir}/cluster.txt", "w") as f:
                    f.write(c.describe() + "\n")
            except Exception:  # noqa: BLE001 - diagnostics only
                pass
            c.stop()


def flag_quorum(master):
    return master.get_json("/flags").get("flags", {}).get("quorum")


def failover_keeps_registry(cluster, ids, name, what):
    """kill -9 the leader with the agents held off: the new leader's registry holds `ids`; then
    the agents reregister with it. Returns the new leader."""
    with agents_held_off(cluster):
        old, new, t = kill9_leader_and_wait(cluster)
        assert_registry(new, ids, master_id=leader_id(new), context=f"{what}: after kill -9 of {old.name}")
        assert new.metrics().get("master/slave_reregistrations") == 0
    record_timing(name, f"{what}: kill -9 -> new leader recovered the registry", t)
    cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
    return new


def rolling_restart(cluster, quorum, name):
    """Restart every master once with --quorum=quorum, standbys first, the leader last; after each,
    wait until it votes again and a leader serves."""
    leader = cluster.wait_leader(10)
    order = [m for m in cluster.masters if m is not leader] + [leader]
    for m in order:
        t0 = time.monotonic()
        restart_with_quorum(cluster, m, quorum)
        wait_log_metrics([m], CATCH_UP_DEADLINE, recovered=1)
        cluster.wait_leader(REPLOG_FAILOVER_DEADLINE)
        record_timing(name, f"restart {m.name} with --quorum={quorum} -> voting, a leader serving",
                      time.monotonic() - t0)
    for m in cluster.masters:
        assert flag_quorum(m) == str(quorum), f"{m.name} runs with --quorum={flag_quorum(m)}"


# -- 3 ------------------------------------------------------------------------------------------
def test_grow_from_3_to_5_masters(make_cluster, request):
    name = request.node.name
    c = make_cluster(masters=3, agents=2, quorum=2, zk_path="/replog-grow")
    ids = set(agent_ids(c.agents).values())
    assert_registry(c.wait_leader(10), ids, context="3 masters, --quorum=2")

    # 1-2. The three masters restarted one at a time with --quorum=3.
    rolling_restart(c, 3, name)
    leader = c.wait_leader(10)
    assert_registry(leader, ids, master_id=leader_id(leader), context="3 masters, --quorum=3")

    # 3. Two more masters with --quorum=3 (empty logs: they catch up from the others).
    t0 = time.monotonic()
    c.quorum = 3
    c.add_master()
    c.add_master()
    wait_log_metrics(c.masters, CATCH_UP_DEADLINE, recovered=1, ensemble_size=5)
    record_timing(name, "2 masters added -> all 5 voting, ensemble_size 5", time.monotonic() - t0)
    leader = c.wait_leader(REPLOG_FAILOVER_DEADLINE)
    assert all(m.running() for m in c.masters), c.describe()
    assert [flag_quorum(m) for m in c.masters] == ["3"] * 5
    assert_registry(leader, ids, master_id=leader_id(leader), context="5 masters, --quorum=3")
    c.wait_agents(leader, timeout=5)

    failover_keeps_registry(c, ids, name, "5 masters, --quorum=3")
    wait_log_metrics([m for m in c.masters if m.running()], 15, recovered=1)


# -- 4 ------------------------------------------------------------------------------------------
def test_shrink_from_5_to_3_masters(make_cluster, request):
    name = request.node.name
    c = make_cluster(masters=5, agents=2, quorum=3, zk_path="/replog-shrink")
    ids = set(agent_ids(c.agents).values())
    leader = c.wait_leader(10)
    assert_registry(leader, ids, master_id=leader_id(leader), context="5 masters, --quorum=3")

    # 2. Two masters removed for good (the leader among them); 3 remain at --quorum=3.
    standby = next(m for m in c.masters if m is not leader)
    t0 = time.monotonic()
    for m in (standby, leader):
        rc = c.retire_master(m)
        assert rc == 0, f"{m.name} exited with {rc} after SIGTERM:\n{m.tail(20)}"
    leader = c.wait_leader(REPLOG_FAILOVER_DEADLINE)
    record_timing(name, "2 masters removed -> a leader among the 3 left", time.monotonic() - t0)
    assert len(c.masters) == 3
    wait_log_metrics(c.masters, 15, recovered=1, ensemble_size=3)
    assert_registry(leader, ids, master_id=leader_id(leader), context="3 masters left, --quorum=3")

    # 3. The three restarted one at a time with --quorum=2.
    rolling_restart(c, 2, name)
    leader = c.wait_leader(10)
    wait_log_metrics(c.masters, 15, recovered=1, ensemble_size=3)
    assert_registry(leader, ids, master_id=leader_id(leader), context="3 masters, --quorum=2")
    c.wait_agents(leader, timeout=REREGISTER_DEADLINE)

    # Failover still works with two of the three.
    failover_keeps_registry(c, ids, name, "3 masters, --quorum=2")
    for m in c.retired:
        assert not m.running(), f"retired {m.name} runs again"


# -- 6 ------------------------------------------------------------------------------------------
def test_from_1_master_to_3_starts_an_empty_registry(make_cluster, request):
    """Operational guide: leaving a single master means wiping its log; the three then start
    with an empty registry and the agents are admitted again when they reregister."""
    name = request.node.name
    c = make_cluster(masters=1, agents=1, quorum=1, zk_path="/replog-one")
    solo = c.masters[0]
    ids = set(agent_ids(c.agents).values())
    assert_registry(c.wait_leader(10), ids, master_id=leader_id(solo), context="1 master, --quorum=1")

    # 1. Stop the standalone master; 2. delete its replicated log.
    rc = c.sigterm(solo, wait=15)
    assert rc == 0, f"{solo.name} exited with {rc} after SIGTERM:\n{solo.tail(20)}"
    c.wipe_log(solo)

    # 3. It and two new masters with --quorum=2.
    with agents_held_off(c):
        t0 = time.monotonic()
        c.quorum = 2
        solo.start()
        c.add_master()
        c.add_master()
        leader = c.wait_leader(LOG_START_DEADLINE)
        record_timing(name, "3 masters (--quorum=2, empty logs) -> a leader serving", time.monotonic() - t0)
        wait_log_metrics(c.masters, CATCH_UP_DEADLINE, recovered=1, ensemble_size=3)
        registry = assert_registry(leader, set(), master_id=leader_id(leader), context="1 -> 3 masters")
        assert registry["agents"] == [], f"the registry did not start empty: {registry['agents']}"
    assert [flag_quorum(m) for m in c.masters] == ["2"] * 3

    # The agent reregisters and is admitted again.
    c.wait_agents(leader, timeout=REREGISTER_DEADLINE)
    now_ids = set(agent_ids(c.agents).values())
    assert_registry(leader, now_ids, master_id=leader_id(leader), context="after the agent reregistered")
    failover_keeps_registry(c, now_ids, name, "1 -> 3 masters")
