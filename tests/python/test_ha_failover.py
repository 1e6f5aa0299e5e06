"""Leader failover on real processes (mesos-ha.md 2-3): 3 ZooKeeper nodes, 3 masters --quorum=2,
2 agents, 2 s ZooKeeper sessions. Each case keeps a `sleep` task running across the fault."""

import re
import time
import uuid

import pytest
import requests

from harness import wait_until
from harness.checks import (
    FAILOVER_DEADLINE,
    JSON,
    LEADER_ONLY_GET,
    REREGISTER_DEADLINE,
    SESSION_TIMEOUT,
    assert_redirects_to,
    scheduler_subscribe_body,
    wait_standbys_redirect,
)
from harness.fixtures import cluster, ha_cluster  # noqa: F401 - fixtures
from harness.util import record_timing
from harness.workload import SleepFramework

pytestmark = pytest.mark.timeout(240)


def test_kill9_leader_fails_over_and_task_survives(cluster, request):
    name = request.node.name
    fw = SleepFramework(cluster, "ha-kill9")
    try:
        old = cluster.wait_leader(10)
        fw.launch(master=old, on_agent=cluster.agents[0])

        ids_before = sorted(s["id"] for s in old.state()["slaves"])

        t0 = time.monotonic()
        assert cluster.kill9(old) == -9
        new = cluster.wait_leader(FAILOVER_DEADLINE, exclude=[old])
        t_elected = time.monotonic() - t0
        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        t_agents = time.monotonic() - t0
        active = new.active_agent_hosts()
        assert active == sorted(a.ip for a in cluster.agents), f"{new.name} lists active agents {active}"
        ids_after = sorted(s["id"] for s in new.state()["slaves"] if s.get("active"))
        assert ids_after == ids_before, f"agents reregistered under other ids: {ids_before} -> {ids_after}"
        record_timing(name, "kill -9 -> new leader elected", t_elected)
        record_timing(name, "kill -9 -> both agents active on new leader", t_agents)

        # The task never stopped; its agent still lists it.
        fw.assert_survived()
        # The remaining standby redirects to the new leader.
        wait_standbys_redirect(cluster, new)
        # The scheduler resubscribes (same framework id) through the new leader and reconciles.
        fw.resubscribe(new)
        status = fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
        assert status["agent_id"]["value"] == fw.agent_id, status
        fw.assert_survived(leader=new)
        record_timing(name, "kill -9 -> scheduler reconciled TASK_RUNNING", time.monotonic() - t0)

        # The killed master, restarted, comes back as a standby of the new leader.
        cluster.restart(old)
        wait_until(old.healthy, 15, f"restarted {old.name} to answer /health")
        wait_until(lambda: assert_redirects_to(old, new, "/state"), 10,
                   f"restarted {old.name} to redirect /state to {new.name}")
        assert old.elected() is False
        assert cluster.leader() is new
    finally:
        fw.teardown()


def test_sigterm_leader_hands_over_faster_than_session_timeout(cluster, request):
    name = request.node.name
    fw = SleepFramework(cluster, "ha-sigterm")
    zk = cluster.zk.client()
    try:
        old = cluster.wait_leader(10)
        fw.launch(master=old, on_agent=cluster.agents[1])
        children = [c for c in zk.get_children(cluster.zk_path) if c.startswith("json.info_")]
        lowest = min(children)
        data = zk.get(f"{cluster.zk_path}/{lowest}")[0].decode()
        assert f'"{old.ip}"' in data, f"lowest znode {lowest} is not {old.name}'s: {data}"

        t0 = time.monotonic()
        cluster.sigterm(old)
        wait_until(lambda: zk.exists(f"{cluster.zk_path}/{lowest}") is None, SESSION_TIMEOUT / 2,
                   f"{old.name}'s znode {lowest} to vanish at once after SIGTERM", interval=0.01)
        t_znode = time.monotonic() - t0
        new = cluster.wait_leader(SESSION_TIMEOUT, exclude=[old], interval=0.02)
        t_elected = time.monotonic() - t0
        rc = old.wait_exit(15)
        t_exit = time.monotonic() - t0
        assert rc == 0, f"{old.name} exited with {rc} after SIGTERM, expected 0; log:\n{old.tail(30)}"
        assert t_elected < SESSION_TIMEOUT, t_elected
        record_timing(name, "SIGTERM -> leader znode gone", t_znode)
        record_timing(name, "SIGTERM -> new leader elected", t_elected)
        record_timing(name, "SIGTERM -> old leader exited", t_exit)

        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        fw.assert_survived()
        wait_standbys_redirect(cluster, new)
        fw.resubscribe(new)
        fw.assert_reconciled_running(timeout=REREGISTER_DEADLINE)
        fw.assert_survived(leader=new)
    finally:
        zk.stop()
        zk.close()
        fw.teardown()


def _ip_uint32(ip):
    a, b, c, d = (int(x) for x in ip.split("."))
    return d * 2**24 + c * 2**16 + b * 2**8 + a


def test_znodes_are_json_info_with_master_info(cluster):
    """Spec 2.2/2.3: one EPHEMERAL_SEQUENTIAL json.info_<10 digits> per master; lowest = leader."""
    import json

    leader = cluster.wait_leader(10)
    zk = cluster.zk.client()
    try:
        def members():
            names = zk.get_children(cluster.zk_path)
            bad = [n for n in names if n != "log_replicas" and not re.fullmatch(r"json\.info_\d{10}", n)]
            assert not bad, f"unexpected children of {cluster.zk_path}: {bad} (all: {names})"
            infos = sorted(n for n in names if n.startswith("json.info_"))
            # Nodes of masters killed by an earlier test vanish when their sessions expire (2 s).
            return infos if len(infos) == len(cluster.masters) else None

        infos = wait_until(members, SESSION_TIMEOUT * 3, f"{len(cluster.masters)} json.info_ znodes")
        by_ip = {}
        for n in infos:
            data, stat = zk.get(f"{cluster.zk_path}/{n}")
            assert stat.ephemeralOwner != 0, f"{n} is not ephemeral"
            info = json.loads(data.decode("utf-8"))
            ip = info["address"]["ip"]
            by_ip[ip] = n
            assert info["address"]["port"] == 5050, info
            assert info["pid"] == f"master@{ip}:5050", info
            assert info["port"] == 5050, info
            assert info["hostname"] == ip and info["address"]["hostname"] == ip, info
            assert info["ip"] == _ip_uint32(ip), f"ip {info['ip']} != {_ip_uint32(ip)} for {ip}"
            uuid.UUID(info["id"])
            assert info.get("version"), info
        assert sorted(by_ip) == sorted(m.ip for m in cluster.masters), by_ip
        assert by_ip[leader.ip] == infos[0], f"leader {leader.name} owns {by_ip[leader.ip]}, lowest is {infos[0]}"
        state = leader.state()
        assert state.get("leader") == f"master@{leader.ip}:5050", state.get("leader")
    finally:
        zk.stop()
        zk.close()


def test_redirects_and_503_without_leader(cluster):
    leader = cluster.wait_leader(10)
    standbys = [m for m in cluster.masters if m is not leader]
    wait_standbys_redirect(cluster, leader)

    for m in cluster.masters:
        r = m.get("/")
        assert r.status_code in (200, 301, 302, 307), f"GET {m.url}/ answered {r.status_code}"
        assert m.get("/health").status_code == 200, m.name
        assert m.elected() is (m is leader), f"{m.name} master/elected wrong (leader is {leader.name})"
    r = leader.get("/redirect")
    assert r.status_code == 307 and r.headers.get("Location") == f"//{leader.ip}:5050", (r.status_code, r.headers)
    for path in LEADER_ONLY_GET:
        assert leader.get(path).status_code == 200, path

    for m in standbys:
        for path in LEADER_ONLY_GET:
            assert_redirects_to(m, leader, path)
        assert_redirects_to(m, leader, "/redirect")
        assert_redirects_to(m, leader, "/api/v1/scheduler", "POST", scheduler_subscribe_body(), JSON)
        assert_redirects_to(m, leader, "/api/v1", "POST", '{"type":"GET_STATE"}', JSON)
        assert_redirects_to(m, leader, "/teardown", "POST", "frameworkId=x",
                            {"Content-Type": "application/x-www-form-urlencoded"})

    # A master that knows no leader (its ZooKeeper is unreachable) answers 503.
    lonely = cluster.spawn_master("m9", 29, zk_url=f"zk://127.77.{cluster.slot.n}.19:2181/mesos")
    wait_until(lonely.healthy, 15, f"{lonely.name} (no ZooKeeper) to answer /health:\n{lonely.tail(20)}")
    for path in LEADER_ONLY_GET + ["/redirect"]:
        r = lonely.get(path)
        assert r.status_code == 503, f"GET {path} on a master without leader: {r.status_code} {r.headers}"
    r = requests.post(lonely.url + "/api/v1/scheduler", data=scheduler_subscribe_body(), headers=JSON,
                      allow_redirects=False, timeout=3)
    assert r.status_code == 503, f"SUBSCRIBE on a master without leader: {r.status_code}"
    assert lonely.elected() is False
    assert lonely.running(), f"{lonely.name} exited ({lonely.returncode}):\n{lonely.tail(20)}"
    # It did not disturb the real cluster.
    assert cluster.leader() is leader


def test_status_update_during_failover_reaches_scheduler_through_new_leader(cluster, request):
    """A task finishes while there is no leader; its TASK_FINISHED is not lost: the agent keeps
    it and delivers it through the new leader once the scheduler has resubscribed (spec 3.5)."""
    import os
    import shutil
    import tempfile

    name = request.node.name
    godir = tempfile.mkdtemp(prefix="tepui-ha-go-", dir="/tmp")
    os.chmod(godir, 0o755)
    go = os.path.join(godir, "finish")
    fw = SleepFramework(cluster, "ha-update")
    try:
        old = cluster.wait_leader(10)
        fw.launch(master=old, on_agent=cluster.agents[0])
        waiter = fw.launch_command(f"while [ ! -e {go} ]; do sleep 0.05; done; echo finished",
                                   on_agent=cluster.agents[0], prefix="ha-finish")
        t0 = time.monotonic()
        cluster.kill9(old)
        open(go, "w").close()  # the task exits now, with no leader to report to
        agent = cluster.agents[0]

        def finished_on_agent():
            # Wherever the agent lists it (a terminal task whose update is not acknowledged yet
            # may still sit with the live executors).
            for f in agent.state().get("frameworks", []):
                for ex in f.get("executors", []) + f.get("completed_executors", []):
                    for t in ex.get("tasks", []) + ex.get("completed_tasks", []):
                        if t.get("id") == waiter and t.get("state") == "TASK_FINISHED":
                            return True
            return False

        wait_until(finished_on_agent, 10, f"{agent.name} to list {waiter} as TASK_FINISHED")
        new = cluster.wait_leader(FAILOVER_DEADLINE, exclude=[old])
        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        fw.resubscribe(new)
        # Agents retry unacknowledged updates (first retry after 10 s, spec 3.5).
        status = fw.stream.wait_for_update(waiter, lambda s: s["state"] == "TASK_FINISHED", 30,
                                           f"TASK_FINISHED for {waiter} through {new.name}")
        assert status.get("uuid"), f"an agent's update must carry a uuid: {status}"
        record_timing(name, "kill -9 -> TASK_FINISHED (sent while leaderless) delivered", time.monotonic() - t0)
        fw.assert_survived(leader=new)
    finally:
        fw.teardown()
        shutil.rmtree(godir, ignore_errors=True)
