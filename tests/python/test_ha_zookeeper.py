"""ZooKeeper faults (mesos-ha.md 2.4, 3.2, 3.3): one node lost changes nothing; quorum lost makes
the leader exit and nobody lead; quorum back brings a leader and the agents back."""

import time

import pytest

from harness import wait_until
from harness.checks import (
    FAIL_FAST_DEADLINE,
    REREGISTER_DEADLINE,
    SESSION_TIMEOUT,
    assert_fail_fast_exit,
    wait_standbys_redirect,
)
from harness.fixtures import cluster, ha_cluster  # noqa: F401 - fixtures
from harness.util import observe, record_timing
from harness.workload import SleepFramework

pytestmark = pytest.mark.timeout(240)

# "Nothing changes" is watched for longer than a session timeout plus the client's reconnects.
OBSERVE = SESSION_TIMEOUT * 2 + 1.0


def _one_zk_node_killed(cluster, pick):
    fw = SleepFramework(cluster, f"ha-zk-{pick}")
    try:
        leader = cluster.wait_leader(10)
        fw.launch(master=leader, on_agent=cluster.agents[0])
        pids = {n.name: n.pid for n in cluster.masters + cluster.agents}
        zk_leader = cluster.zk.leader_index()
        assert zk_leader, cluster.zk.modes()
        victim = zk_leader if pick == "leader" else next(i for i in (1, 2, 3) if i != zk_leader)
        cluster.zk.kill9(victim)

        def unchanged():
            for n in cluster.masters + cluster.agents:
                assert n.running() and n.pid == pids[n.name], (
                    f"{n.name} exited (code {n.returncode}) or restarted; log tail:\n{n.tail(20)}")
            elected = [m.name for m, e in cluster.elected_map(timeout=1.0).items() if e]
            assert elected == [leader.name], f"elected masters: {elected}, expected only {leader.name}"
            for a in cluster.agents:
                assert a.registered() is True, f"{a.name} reports slave/registered != 1"
            assert fw.pid_alive(), "task process died"

        rounds = observe(OBSERVE, unchanged, f"after kill -9 of ZooKeeper node zk{victim} ({pick})")
        assert rounds >= 5, f"only {rounds} observations in {OBSERVE}s"
        assert leader.active_agent_hosts() == sorted(a.ip for a in cluster.agents)
        cluster.zk.restart(victim)
        fw.assert_survived(leader=leader)
        fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
    finally:
        fw.teardown()


def test_zookeeper_follower_killed_changes_nothing(cluster):
    _one_zk_node_killed(cluster, "follower")


def test_zookeeper_leader_killed_changes_nothing(cluster):
    _one_zk_node_killed(cluster, "leader")


def test_zookeeper_quorum_lost_then_restored(cluster, request):
    name = request.node.name
    fw = SleepFramework(cluster, "ha-zk-quorum")
    try:
        old = cluster.wait_leader(10)
        fw.launch(master=old, on_agent=cluster.agents[1])
        zk_leader = cluster.zk.leader_index()
        victims = [zk_leader, next(i for i in (1, 2, 3) if i != zk_leader)]

        t0 = time.monotonic()
        for i in victims:
            cluster.zk.kill9(i)
        rc = old.wait_exit(FAIL_FAST_DEADLINE)
        t_exit = time.monotonic() - t0
        assert_fail_fast_exit(old, rc, t0)
        standbys = [m for m in cluster.masters if m is not old]

        def nobody_leads():
            for m in standbys:
                assert m.running(), f"standby {m.name} exited ({m.returncode}):\n{m.tail(20)}"
            elected = [m.name for m, e in cluster.elected_map(standbys, timeout=1.0).items() if e]
            assert not elected, f"{elected} report master/elected=1 without a ZooKeeper quorum"
            return all(m.get("/state").status_code == 503 for m in standbys)

        wait_until(nobody_leads, FAIL_FAST_DEADLINE,
                   "standbys to answer /state with 503 (no leader known) while ZooKeeper has no quorum")
        t_503 = time.monotonic() - t0
        wait_until(lambda: all(a.registered() is False for a in cluster.agents), FAIL_FAST_DEADLINE,
                   "agents to report slave/registered 0 without a ZooKeeper quorum")
        observe(1.0, lambda: nobody_leads() or True, "no leader without quorum")
        assert fw.pid_alive(), "task process died while ZooKeeper had no quorum"
        for a in cluster.agents:
            assert a.running() and a.healthy(), f"{a.name} stopped serving:\n{a.tail(20)}"

        t1 = time.monotonic()
        for i in victims:
            cluster.zk.restart(i, wait=False)
        cluster.zk.wait_serving(30)
        t_zk = time.monotonic() - t1
        new = cluster.wait_leader(SESSION_TIMEOUT * 3 + 10, exclude=[old])
        t_new = time.monotonic() - t1
        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        t_agents = time.monotonic() - t1
        record_timing(name, "quorum lost -> old leader exited (code 3)", t_exit)
        record_timing(name, "quorum lost -> standbys answer 503", t_503)
        record_timing(name, "ZooKeeper restarted -> serving", t_zk)
        record_timing(name, "ZooKeeper restarted -> new leader elected", t_new)
        record_timing(name, "ZooKeeper restarted -> both agents active on new leader", t_agents)

        fw.assert_survived()
        wait_standbys_redirect(cluster, new)
        fw.resubscribe(new)
        fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
        fw.assert_survived(leader=new)
    finally:
        fw.teardown()
