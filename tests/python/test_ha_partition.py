"""Silent partitions from ZooKeeper (iptables DROP by the node's uid), mesos-ha.md 2.4, 3.2, 3.3."""

import time

import pytest

from harness import SplitBrainMonitor, wait_until
from harness.checks import (
    FAIL_FAST_DEADLINE,
    FAILOVER_DEADLINE,
    REREGISTER_DEADLINE,
    SESSION_TIMEOUT,
    assert_fail_fast_exit,
    assert_redirects_to,
    wait_standbys_redirect,
)
from harness.fixtures import cluster, ha_cluster  # noqa: F401 - fixtures
from harness.util import observe, record_timing
from harness.workload import SleepFramework

pytestmark = pytest.mark.timeout(240)


def test_leader_cut_from_zookeeper_exits_and_no_split_brain(cluster, request):
    name = request.node.name
    fw = SleepFramework(cluster, "ha-cut-leader")
    monitor = None
    try:
        old = cluster.wait_leader(10)
        fw.launch(master=old, on_agent=cluster.agents[0])
        monitor = SplitBrainMonitor(cluster).start()

        t0 = time.monotonic()
        cluster.cut_from_zk(old)
        rc = old.wait_exit(FAIL_FAST_DEADLINE)
        t_exit = time.monotonic() - t0
        assert_fail_fast_exit(old, rc, t0)
        new = cluster.wait_leader(FAILOVER_DEADLINE, exclude=[old])
        t_new = time.monotonic() - t0
        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        t_agents = time.monotonic() - t0
        # Keep watching a little after the failover (a late re-election would show up here).
        observe(1.0, lambda: None, "observation window")
        monitor.stop()
        record_timing(name, "cut -> old leader exited (code 3)", t_exit)
        record_timing(name, "cut -> new leader elected", t_new)
        record_timing(name, "cut -> both agents active on new leader", t_agents)
        t_new_seen = monitor.first_time(lambda em: any(e for m, e in em.items() if m != old.name))
        t_old_gone = monitor.first_time(lambda em: em.get(old.name) is not True)
        if t_new_seen is not None and t_old_gone is not None:
            record_timing(name, "new leader elected minus old leader stopped reporting elected",
                          t_new_seen - t_old_gone)

        assert len(monitor.rounds) >= 20 and monitor.rounds[0][1].get(old.name) is True, (
            f"the split-brain monitor did not observe the failover ({len(monitor.rounds)} polls):\n"
            f"{monitor.timeline()}")
        violations = monitor.violations()
        assert not violations, (
            f"split brain: {len(violations)} polls saw two masters reporting master/elected=1, first at "
            f"t={violations[0][0]:.2f}s after the cut ({violations[0][1]}); timeline (E = elected):\n"
            f"{monitor.timeline()}")
        assert new.elected() and sum(1 for m in cluster.running_masters() if m.elected()) == 1

        fw.assert_survived()
        wait_standbys_redirect(cluster, new)
        fw.resubscribe(new)
        fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
        fw.assert_survived(leader=new)
    finally:
        if monitor is not None:
            monitor.stop()
        cluster.heal_all()
        fw.teardown()


def test_agent_cut_from_zookeeper_keeps_tasks_and_reregisters(cluster, request):
    name = request.node.name
    agent = cluster.agents[0]
    fw = SleepFramework(cluster, "ha-cut-agent")
    try:
        leader = cluster.wait_leader(10)
        leader_pid, agent_pid = leader.pid, agent.pid
        fw.launch(master=leader, on_agent=agent)
        assert agent.registered() is True

        t0 = time.monotonic()
        cluster.cut_from_zk(agent)

        def noticed():
            assert fw.pid_alive(), f"task process {fw.pid} died while {agent.name} was cut off"
            assert agent.running(), f"{agent.name} exited ({agent.returncode}):\n{agent.tail(30)}"
            return agent.registered() is False

        wait_until(noticed, FAIL_FAST_DEADLINE,
                   f"{agent.name} (cut from ZooKeeper) to report slave/registered 0 (no leader detected)")
        t_noticed = time.monotonic() - t0
        assert fw.pid_alive()
        assert agent.healthy(), f"{agent.name} stopped serving HTTP while cut off"
        assert cluster.leader() is leader

        t1 = time.monotonic()
        cluster.heal(agent)
        wait_until(lambda: agent.registered() is True, REREGISTER_DEADLINE,
                   f"{agent.name} to register again after the heal")
        cluster.wait_agents(leader, timeout=REREGISTER_DEADLINE)
        t_back = time.monotonic() - t1
        record_timing(name, "agent cut -> agent reports no master", t_noticed)
        record_timing(name, "heal -> agent active on the leader again", t_back)

        assert agent.pid == agent_pid and agent.running(), "the agent was restarted or exited"
        assert leader.pid == leader_pid and cluster.leader() is leader, "leadership changed"
        assert agent.healthy()
        fw.assert_survived(leader=leader)
        fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
    finally:
        cluster.heal_all()
        fw.teardown()


def test_standby_cut_from_zookeeper_keeps_running_and_contends_again(cluster, request):
    name = request.node.name
    leader = cluster.wait_leader(10)
    standby = next(m for m in cluster.masters if m is not leader)
    pid = standby.pid
    zk = cluster.zk.client()
    try:
        def own_znodes():
            out = []
            for child in zk.get_children(cluster.zk_path):
                if child.startswith("json.info_"):
                    data = zk.get(f"{cluster.zk_path}/{child}")[0].decode()
                    if f'"{standby.ip}"' in data:
                        out.append(child)
            return out

        before = own_znodes()
        assert len(before) == 1, f"{standby.name} should own one json.info_ znode: {before}"
        t0 = time.monotonic()
        cluster.cut_from_zk(standby)
        # The server expires its session: its znode goes; the standby itself keeps running.
        wait_until(lambda: not own_znodes(), SESSION_TIMEOUT + 4,
                   f"{standby.name}'s znode {before[0]} to expire while it is cut off")

        def still_standby():
            assert standby.running() and standby.pid == pid, (
                f"standby {standby.name} exited (code {standby.returncode}):\n{standby.tail(20)}")
            assert standby.elected() is False
            assert cluster.leader() is leader

        observe(SESSION_TIMEOUT + 1.0, still_standby, f"standby {standby.name} cut from ZooKeeper")
        cluster.heal(standby)
        after = wait_until(own_znodes, SESSION_TIMEOUT * 3 + 5,
                           f"{standby.name} to contend again (a new json.info_ znode) after the heal")
        record_timing(name, "standby cut+heal -> contending again (s since cut)", time.monotonic() - t0)
        assert len(after) == 1 and after[0] > before[0], (before, after)
        still_standby()
        wait_until(lambda: assert_redirects_to(standby, leader, "/state"), 10,
                   f"{standby.name} to redirect to {leader.name} again")
    finally:
        zk.stop()
        zk.close()
        cluster.heal_all()
