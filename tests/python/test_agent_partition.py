"""Agent health checking by the leader (mesos-ha.md 3.4-3.6) on real processes: 3 ZooKeeper nodes,
3 masters `--quorum=2 --registry=replicated_log`, 2 agents, 2 s sessions, and fast pings:
`--agent_ping_timeout=1secs --max_agent_ping_timeouts=3 --agent_reregister_timeout=5secs`.

1. An agent silently cut from the masters (every packet dropped, both ways; ZooKeeper still
   reachable) becomes unreachable after 3 missed pings: TASK_UNREACHABLE (partition-aware) /
   TASK_LOST (others), FAILURE with only the agent id, `/state` and metrics follow; the task keeps
   running. After the heal the agent re-registers with the same id and every framework hears the
   task's latest state with REASON_AGENT_REREGISTERED.
2. MARK_AGENT_GONE: TASK_GONE_BY_OPERATOR / TASK_LOST, the agent is told to shut down and exits; the
   gone id can never come back (a REREGISTER with it gets SHUTDOWN; a restart on the same work_dir
   registers a new id or is refused: which one is printed).
3. An agent that stays down across a failover is listed in `recovered_slaves` by the new leader,
   then marked unreachable after `--agent_reregister_timeout` (only FAILURE, no task updates).
4. An agent that is unreachable when the leader fails over stays unreachable for the next leader
   (counted in `unreachable_slaves` / `master/slaves_unreachable`, not in `recovered_slaves`) and can
   still re-register with its id.

Timings are printed and appended to <output>/ha-timings.txt; the medians over many trials come from
scripts/bench_unreachable.py. Deadlines here are generous (a loaded CI machine)."""

import json
import time

import pytest
import requests

from harness import wait_until
from harness.checks import SESSION_TIMEOUT
from harness.cluster import Cluster
from harness.replog import CATCH_UP_DEADLINE, LOG_START_DEADLINE, REPLOG_FAILOVER_DEADLINE, wait_log_metrics
from harness.util import artifact_dir, record_timing
from harness.workload import SleepFramework
from mesos_http import RecordIODecoder, summarize

pytestmark = pytest.mark.timeout(240)

PING_TIMEOUT = 1.0
MAX_PING_TIMEOUTS = 3
REREGISTER_TIMEOUT = 5.0
HEALTH_FLAGS = [
    f"--agent_ping_timeout={int(PING_TIMEOUT)}secs",
    f"--max_agent_ping_timeouts={MAX_PING_TIMEOUTS}",
    f"--agent_reregister_timeout={int(REREGISTER_TIMEOUT)}secs",
]
# Expected 3-4 s (the first unanswered ping, then 3 misses) plus a registry write; generous.
UNREACHABLE_DEADLINE = PING_TIMEOUT * (MAX_PING_TIMEOUTS + 1) + 8.0
# After the heal the agent must notice its stream is gone (the master's FIN, retransmitted, gets
# through now) and re-register; backoff 100 ms.
BACK_DEADLINE = 20.0
GONE_DEADLINE = 15.0


@pytest.fixture(scope="module")
def health_cluster(request):
    c = Cluster(request.node.nodeid + "__module", masters=3, agents=2, quorum=2,
                session_timeout=SESSION_TIMEOUT, registry="replicated_log", master_args=HEALTH_FLAGS)
    try:
        c.start(timeout=90)
        wait_log_metrics(c.masters, LOG_START_DEADLINE, recovered=1, ensemble_size=3)
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(health_cluster, request):
    c = health_cluster
    c.mark_logs(f"test {request.node.nodeid} setup")
    c.ensure_healthy(timeout=60)
    # Every replica VOTING, so that a failover finds a quorum at once.
    wait_log_metrics(c.masters, CATCH_UP_DEADLINE, recovered=1, ensemble_size=len(c.masters))
    c.mark_logs(f"test {request.node.nodeid} begins")
    try:
        yield c
    finally:
        c.mark_logs(f"test {request.node.nodeid} ends")
        c.heal_all()
        try:
            with open(f"{artifact_dir(request.node.nodeid)}/cluster.txt", "w") as f:
                f.write(c.describe() + "\n")
        except Exception:  # noqa: BLE001 - diagnostics only
            pass


# -- helpers ---------------------------------------------------------------------------------------
def launch_pair(cluster, leader, agent, tag):
    """A PARTITION_AWARE framework and a plain one, each with a `sleep` task on `agent`; both
    quiesced (suppressed, no held offers) so that neither keeps the agent's resources."""
    aware = SleepFramework(cluster, f"{tag}-aware", capabilities=("PARTITION_AWARE",))
    plain = SleepFramework(cluster, f"{tag}-plain")
    aware.launch(master=leader, on_agent=agent)
    aware.quiesce(leader)
    plain.launch(master=leader, on_agent=agent)
    plain.quiesce(leader)
    return aware, plain


def next_update(fw, timeout, what):
    """The next UPDATE of fw's task that is not the agent's TASK_STAGING/STARTING/RUNNING stream."""
    return fw.stream.wait_for_update(fw.task_id, lambda s: s.get("source") == "SOURCE_MASTER", timeout, what)


def failure_index(fw, agent_id):
    for i, e in enumerate(fw.stream.events):
        if e["type"] == "FAILURE" and (e.get("failure") or {}).get("agent_id", {}).get("value") == agent_id:
            return i
    return None


def wait_failure(fw, agent_id, timeout):
    event = fw.stream.wait_for(
        lambda e: e["type"] == "FAILURE" and (e.get("failure") or {}).get("agent_id", {}).get("value") == agent_id,
        timeout, f"FAILURE for agent {agent_id} on framework {fw.framework_info['name']}")
    assert event["failure"] == {"agent_id": {"value": agent_id}}, (
        f"FAILURE should carry only agent_id (mesos-ha.md 3.4): {event}")
    return event


def update_index(fw, status):
    for i, e in enumerate(fw.stream.events):
        if e["type"] == "UPDATE" and e["update"]["status"] == status:
            return i
    return None


def assert_master_status(status, state, reason, agent_id, fw):
    name = fw.framework_info["name"]
    assert status["state"] == state, f"{name}: expected {state}, got {json.dumps(status)}"
    if reason is not None:
        assert status.get("reason") == reason, f"{name}: expected reason {reason}: {json.dumps(status)}"
    assert status.get("source") == "SOURCE_MASTER", f"{name}: {json.dumps(status)}"
    assert "uuid" not in status, f"{name}: a master-generated status must carry no uuid: {json.dumps(status)}"
    assert status.get("agent_id", {}).get("value") == agent_id, f"{name}: {json.dumps(status)}"


def framework_entry(master, fw):
    for f in master.state().get("frameworks", []):
        if f.get("id") == fw.framework_id:
            return f
    raise AssertionError(f"{master.name}'s /state does not list framework {fw.framework_id}")


def where_listed(master, fw):
    """{list name: state} for fw's task in master's /state (tasks, unreachable_tasks, completed_tasks)."""
    f = framework_entry(master, fw)
    out = {}
    for key in ("tasks", "unreachable_tasks", "completed_tasks"):
        for t in f.get(key, []):
            if t.get("id") == fw.task_id:
                out[key] = t.get("state")
    return out


def mark_gone(master, agent_id):
    return requests.post(master.url + "/api/v1",
                         json={"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}},
                         timeout=15, allow_redirects=False)


def reregister_probe(master, agent, agent_id, timeout=10):
    """What a restarted agent that kept its checkpointed id would send: REREGISTER on the internal
    agent link (POST /internal/v1/agent). Returns (status code, [records])."""
    body = {
        "type": "REREGISTER", "protocol_version": 1,
        "agent_info": {"id": {"value": agent_id}, "hostname": agent.ip, "port": agent.port, "resources": []},
        "endpoint": f"{agent.ip}:{agent.port}", "version": "1.11.0", "tasks": [], "frameworks": [],
    }
    records = []
    with requests.post(master.url + "/internal/v1/agent", json=body, stream=True, timeout=timeout,
                       allow_redirects=False) as r:
        if r.status_code != 200:
            return r.status_code, [r.text[:300]]
        decoder = RecordIODecoder()
        deadline = time.monotonic() + timeout
        for chunk in r.iter_content(chunk_size=None):
            records += [json.loads(x) for x in decoder.feed(chunk)]
            if records and records[0].get("type") != "SHUTDOWN" or time.monotonic() > deadline:
                break  # a stream that goes on (REGISTERED, pings) would not end by itself
        return r.status_code, records


def metric(master, name):
    return master.metrics().get(name)


# -- 1. silent partition between one agent and the masters ------------------------------------------
def test_agent_cut_from_masters_becomes_unreachable_and_comes_back(cluster, request):
    name = request.node.name
    leader = cluster.wait_leader(10)
    agent, other = cluster.agents
    aware = plain = None
    deviations = []
    try:
        aware, plain = launch_pair(cluster, leader, agent, "part")
        aid, other_id = agent.agent_id, other.agent_id
        agent_pid = agent.pid
        base = metric(leader, "master/slaves_unreachable")  # 0 unless an earlier case left one

        log_mark = len(agent.current_log())
        t0 = time.monotonic()
        cluster.isolate_from_masters(agent)
        unreachable = next_update(aware, UNREACHABLE_DEADLINE, f"TASK_UNREACHABLE for {aware.task_id}")
        t_unreachable = time.monotonic() - t0
        lost = next_update(plain, 5, f"TASK_LOST for {plain.task_id}")
        t_lost = time.monotonic() - t0
        record_timing(name, "agent cut from masters -> TASK_UNREACHABLE (partition-aware)", t_unreachable)
        record_timing(name, "agent cut from masters -> TASK_LOST (plain)", t_lost)

        assert_master_status(unreachable, "TASK_UNREACHABLE", "REASON_AGENT_REMOVED", aid, aware)
        assert unreachable.get("unreachable_time"), f"TASK_UNREACHABLE without unreachable_time: {unreachable}"
        assert_master_status(lost, "TASK_LOST", None, aid, plain)
        for fw, status in ((aware, unreachable), (plain, lost)):
            wait_failure(fw, aid, 5)
            # mesos-ha.md 3.4: the tasks' statuses first, then FAILURE.
            assert update_index(fw, status) < failure_index(fw, aid), (
                f"{fw.framework_info['name']}: FAILURE came before the task's status: {summarize(fw.stream.events)}")

        # The registry moved the agent to unreachable (written before anyone was told).
        registry = leader.registry()
        assert aid in {u["id"]["value"] for u in registry.get("unreachable", [])}, (
            f"registry lacks {aid} under unreachable: {json.dumps(registry)[:600]}")
        if aid in {a["id"]["value"] for a in registry.get("agents", [])}:
            # Checked last, so that the rest of the case still runs.
            deviations.append(f"mesos-ha.md 3.4/3.7: MarkUnreachable should move {aid} from the registry's "
                              f"admitted agents to unreachable; {leader.name}'s /registrar(1)/registry lists it "
                              f"under both: agents={[a['id']['value'] for a in registry.get('agents', [])]} "
                              f"unreachable={registry.get('unreachable')}")
        state = leader.state()
        assert state["unreachable_slaves"] == base + 1, (state["unreachable_slaves"], base)
        assert aid not in {s["id"] for s in state["slaves"]}, "the unreachable agent is still under slaves"
        assert where_listed(leader, aware) == {"unreachable_tasks": "TASK_UNREACHABLE"}, where_listed(leader, aware)
        plain_where = where_listed(leader, plain)
        assert "tasks" not in plain_where, f"the plain framework's lost task is still active: {plain_where}"
        m = leader.metrics()
        assert m.get("master/slaves_unreachable") == base + 1 and m.get("master/tasks_unreachable") == 1, (
            {k: v for k, v in m.items() if "unreachable" in k})
        # Only the master link failed: the agent, its tasks and the other agent are untouched.
        assert aware.pid_alive() and plain.pid_alive(), "a task process died during the partition"
        assert agent.running() and agent.pid == agent_pid, f"{agent.name} exited:\n{agent.tail(20)}"
        assert aware.agent_task_state() == "TASK_RUNNING" and plain.agent_task_state() == "TASK_RUNNING"
        # The master closed the agent's stream; the agent has not heard it: packets master -> agent
        # are dropped too (a one-way cut would let the close through at once).
        since_cut = agent.current_log()[log_mark:]
        assert "the master closed the stream" not in since_cut, (
            f"{agent.name} heard the master close its stream during the cut: the cut was not silent both "
            f"ways:\n{since_cut[-1500:]}")
        assert other_id in {s["id"] for s in state["slaves"] if s.get("active")}, (
            f"{other.name} (not cut) is not active: {state['slaves']}")
        print(f"[partition] plain framework's task while unreachable is listed under {plain_where}; "
              f"/metrics master/tasks_lost={m.get('master/tasks_lost')}")

        t1 = time.monotonic()
        cluster.heal(agent)
        back = aware.stream.wait_for_update(
            aware.task_id, lambda s: s.get("reason") == "REASON_AGENT_REREGISTERED", BACK_DEADLINE,
            f"REASON_AGENT_REREGISTERED for {aware.task_id} after the heal")
        t_back = time.monotonic() - t1
        back_plain = plain.stream.wait_for_update(
            plain.task_id, lambda s: s.get("reason") == "REASON_AGENT_REREGISTERED", 5,
            f"REASON_AGENT_REREGISTERED for {plain.task_id} (plain framework) after the heal")
        record_timing(name, "heal -> REASON_AGENT_REREGISTERED (partition-aware)", t_back)
        assert_master_status(back, "TASK_RUNNING", "REASON_AGENT_REREGISTERED", aid, aware)
        assert_master_status(back_plain, "TASK_RUNNING", "REASON_AGENT_REREGISTERED", aid, plain)

        cluster.wait_agents(leader, timeout=5)
        state = leader.state()
        assert state["unreachable_slaves"] == base, (state["unreachable_slaves"], base)
        active_ids = {s["id"] for s in state["slaves"] if s.get("active")}
        assert aid in active_ids and agent.agent_id == aid, (
            f"{agent.name} came back as {agent.agent_id}, expected its old id {aid}; active: {active_ids}")
        assert where_listed(leader, aware) == {"tasks": "TASK_RUNNING"}, where_listed(leader, aware)
        plain_where = where_listed(leader, plain)
        assert plain_where.get("tasks") == "TASK_RUNNING", plain_where
        if "completed_tasks" in plain_where:
            print(f"[partition] note: the plain task is listed both active and completed after the heal: {plain_where}")
        m = leader.metrics()
        assert m.get("master/slaves_unreachable") == base and m.get("master/tasks_unreachable") == 0, (
            {k: v for k, v in m.items() if "unreachable" in k})
        registry = leader.registry()
        assert aid in {a["id"]["value"] for a in registry.get("agents", [])}
        assert aid not in {u["id"]["value"] for u in registry.get("unreachable", [])}
        assert agent.pid == agent_pid and agent.running()
        aware.assert_survived(leader=leader)
        plain.assert_survived(leader=leader)
        assert not deviations, "\n".join(deviations)
    finally:
        cluster.heal_all()
        for fw in (aware, plain):
            if fw is not None:
                fw.teardown()


# -- 2. MARK_AGENT_GONE ----------------------------------------------------------------------------
def test_mark_agent_gone_shuts_the_agent_down_for_good(cluster, request):
    name = request.node.name
    leader = cluster.wait_leader(10)
    agent = cluster.agents[1]
    aware = plain = None
    try:
        aware, plain = launch_pair(cluster, leader, agent, "gone")
        aid = agent.agent_id
        gone_before = metric(leader, "master/tasks_gone_by_operator") or 0
        unreachable_before = leader.state()["unreachable_slaves"]

        t0 = time.monotonic()
        r = mark_gone(leader, aid)
        assert r.status_code == 200, f"MARK_AGENT_GONE answered {r.status_code}: {r.text[:300]!r}"
        gone = next_update(aware, 10, f"TASK_GONE_BY_OPERATOR for {aware.task_id}")
        lost = next_update(plain, 10, f"TASK_LOST for {plain.task_id}")
        assert_master_status(gone, "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR", aid, aware)
        assert_master_status(lost, "TASK_LOST", None, aid, plain)

        rc = agent.wait_exit(GONE_DEADLINE)
        t_exit = time.monotonic() - t0
        assert rc is not None, f"{agent.name} still runs {GONE_DEADLINE}s after MARK_AGENT_GONE:\n{agent.tail(20)}"
        assert "Agent has been marked gone" in agent.current_log(), (
            f"{agent.name} exited ({rc}) without logging the master's SHUTDOWN:\n{agent.tail(20)}")
        record_timing(name, "MARK_AGENT_GONE -> agent process exited", t_exit)
        print(f"[gone] {agent.name} exited with code {rc}")
        # An agent told to shut down kills its tasks.
        wait_until(lambda: not aware.pid_alive() and not plain.pid_alive(), 10,
                   f"the tasks of {agent.name} to be killed after its shutdown")

        state = leader.state()
        assert aid not in {s["id"] for s in state["slaves"]}, f"gone agent {aid} still under slaves"
        assert state["unreachable_slaves"] == unreachable_before, "a gone agent is not unreachable"
        assert where_listed(leader, aware) == {"completed_tasks": "TASK_GONE_BY_OPERATOR"}, where_listed(leader, aware)
        registry = leader.registry()
        assert aid in {g["id"]["value"] for g in registry.get("gone", [])}, (
            f"registry lacks {aid} under gone: {json.dumps(registry)[:600]}")
        assert aid not in {a["id"]["value"] for a in registry.get("agents", [])}
        assert metric(leader, "master/tasks_gone_by_operator") == gone_before + 1

        # What an agent that kept its id would do: REREGISTER with it -> SHUTDOWN, never REGISTERED.
        status, records = reregister_probe(leader, agent, aid)
        assert status == 200 and records and records[0].get("type") == "SHUTDOWN" and \
            "marked gone" in records[0].get("message", ""), (
            f"REREGISTER of gone agent {aid}: expected a SHUTDOWN 'Agent has been marked gone', got "
            f"{status} {records}")
        assert aid not in {s["id"] for s in leader.state()["slaves"]}

        # The real agent restarted on the same work_dir: refused (exits again) or a new agent id.
        cluster.restart(agent)

        def outcome():
            if not agent.running():
                return ("refused", agent.returncode)
            if agent.registered():
                new_id = agent.agent_id
                return ("new id", new_id) if new_id else None
            return None

        kind, detail = wait_until(outcome, 20, f"restarted {agent.name} to register or exit")
        print(f"[gone] restart of {agent.name} on the same work_dir: {kind} ({detail})")
        if kind == "refused":
            assert "marked gone" in agent.current_log(), agent.tail(20)
            # Clean slate, so the agent (and the next tests) can go on.
            agent.reset_work_dir()
            agent.start()
        else:
            assert detail != aid, f"the gone agent came back with its old id {aid}"
        cluster.wait_agents(leader, timeout=15)
        active_ids = {s["id"] for s in leader.state()["slaves"] if s.get("active")}
        assert aid not in active_ids and agent.agent_id != aid, (aid, active_ids)
    finally:
        for fw in (aware, plain):
            if fw is not None:
                fw.teardown()


# -- 3. an agent that stays down across a failover -----------------------------------------------
def test_agent_down_across_failover_is_marked_unreachable_after_reregister_timeout(cluster, request):
    name = request.node.name
    old = cluster.wait_leader(10)
    victim, survivor = cluster.agents
    fw = SleepFramework(cluster, "down-aware", capabilities=("PARTITION_AWARE",))
    try:
        fw.launch(master=old, on_agent=victim)
        vid, sid = victim.agent_id, survivor.agent_id
        base = metric(old, "master/slaves_unreachable")
        base_registry = {u["id"]["value"] for u in old.registry().get("unreachable", [])}

        assert cluster.kill9(victim) == -9
        assert cluster.kill9(old) == -9
        t0 = time.monotonic()
        new = cluster.wait_leader(REPLOG_FAILOVER_DEADLINE, exclude=[old])
        t_elected = time.monotonic() - t0
        t1 = time.monotonic()
        recovered = {s["id"] for s in new.state().get("recovered_slaves", [])}
        assert vid in recovered, (
            f"{new.name} should list the down agent {vid} in recovered_slaves right after its election: {recovered}")
        fw.resubscribe(new)
        cluster.wait_agents(new, agents=[survivor], timeout=10)

        event = wait_failure(fw, vid, REREGISTER_TIMEOUT + 10)
        t_failure = time.monotonic() - t1
        record_timing(name, "kill -9 of leader (and agent) -> new leader serving", t_elected)
        record_timing(name, "new leader serving -> FAILURE for the agent that stayed down", t_failure)
        # Not before the reregistration timeout (generous margin for when we saw it serving).
        assert t_failure >= REREGISTER_TIMEOUT - 2.0, (
            f"FAILURE {t_failure:.2f}s after {new.name} served, before --agent_reregister_timeout "
            f"({REREGISTER_TIMEOUT}s): {event}")

        state = new.state()
        assert state.get("recovered_slaves") == [], f"recovered_slaves after the timeout: {state.get('recovered_slaves')}"
        assert state["unreachable_slaves"] == base + 1, (state["unreachable_slaves"], base)
        assert metric(new, "master/slaves_unreachable") == base + 1
        assert {s["id"] for s in state["slaves"] if s.get("active")} == {sid}, state["slaves"]
        registry = new.registry()
        assert {u["id"]["value"] for u in registry.get("unreachable", [])} == base_registry | {vid}, registry
        # mesos-ha.md 3.5: the new master has no task list for it: FAILURE only, no task status.
        from_master = [s for s in fw.stream.updates_for(fw.task_id) if s.get("source") == "SOURCE_MASTER"]
        assert not from_master, f"master-generated statuses for a task of a never-returned agent: {from_master}"
        assert where_listed(new, fw) == {}, where_listed(new, fw)

        # The agent comes back (same work_dir): with its old id (reachable again) or a new one.
        cluster.restart(victim)
        wait_until(lambda: victim.registered() and victim.agent_id, 20, f"restarted {victim.name} to register")
        back_id = victim.agent_id
        kind = "same id" if back_id == vid else "new id"
        print(f"[down] {victim.name} restarted after being marked unreachable: {kind} ({back_id})")
        cluster.wait_agents(new, timeout=10)
        if kind == "same id":
            wait_until(lambda: new.state()["unreachable_slaves"] == base, 10, "the agent to be reachable again")
    finally:
        fw.teardown()


# -- 4. unreachable agents across a failover -------------------------------------------------------
def test_unreachable_agent_stays_unreachable_across_failover(cluster, request):
    """The registry's unreachable agents are recovered by the next leader (mesos-ha.md 3.5, 3.7):
    `/state` `unreachable_slaves` and `master/slaves_unreachable` keep counting it, it is not a
    `recovered_slaves` entry, and it can still re-register with its id."""
    name = request.node.name
    old = cluster.wait_leader(10)
    agent = cluster.agents[0]
    fw = SleepFramework(cluster, "unreach-failover", capabilities=("PARTITION_AWARE",))
    try:
        fw.launch(master=old, on_agent=agent)
        aid = agent.agent_id
        base = metric(old, "master/slaves_unreachable")
        cluster.isolate_from_masters(agent)
        next_update(fw, UNREACHABLE_DEADLINE, f"TASK_UNREACHABLE for {fw.task_id}")
        wait_until(lambda: metric(old, "master/slaves_unreachable") == base + 1, 5,
                   f"{old.name} to count {aid} unreachable")

        assert cluster.kill9(old) == -9
        t0 = time.monotonic()
        new = cluster.wait_leader(REPLOG_FAILOVER_DEADLINE, exclude=[old])
        record_timing(name, "kill -9 of leader -> new leader serving", time.monotonic() - t0)
        registry = new.registry()
        assert aid in {u["id"]["value"] for u in registry.get("unreachable", [])}, (
            f"{new.name}'s registry lost the unreachable agent {aid}: {json.dumps(registry)[:600]}")
        state = new.state()
        recovered = {s["id"] for s in state.get("recovered_slaves", [])}
        assert aid not in recovered, f"unreachable agent {aid} listed in recovered_slaves: {recovered}"
        problems = []
        if state["unreachable_slaves"] != base + 1:
            problems.append(f"/state unreachable_slaves is {state['unreachable_slaves']}, expected {base + 1}")
        m = metric(new, "master/slaves_unreachable")
        if m != base + 1:
            problems.append(f"master/slaves_unreachable is {m}, expected {base + 1}")
        # (Checked last, so that the re-registration below still runs.)

        cluster.heal(agent)
        fw.resubscribe(new)
        wait_until(lambda: agent.registered() and aid in {s["id"] for s in new.state()["slaves"] if s.get("active")},
                   BACK_DEADLINE, f"{agent.name} to re-register with {new.name} under its id {aid}")
        wait_until(lambda: aid not in {u["id"]["value"] for u in new.registry().get("unreachable", [])}, 5,
                   f"{new.name}'s registry to drop {aid} from unreachable after its re-registration")
        fw.assert_survived(leader=new)
        assert not problems, (
            f"{new.name} (new leader) does not count the agent {aid} that its registry lists as unreachable: "
            + "; ".join(problems))
    finally:
        cluster.heal_all()
        fw.teardown()
