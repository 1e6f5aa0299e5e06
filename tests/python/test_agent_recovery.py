"""Agents that survive (replicated-log.md 8): a standalone `tepui master` and `tepui agent` as real
processes; the agent is killed with SIGKILL and started again on the same work_dir.

Checked: the tasks' processes outlive the agent (their parent is the agent's launcher daemon,
`tepui launcher`); after the restart the agent re-registers under the same id, the master and the
scheduler see the tasks RUNNING, an update produced while the agent was down (a task that exited)
is delivered exactly once, an update not acknowledged before the kill is redelivered once with the
same uuid; `--recover=cleanup` kills the tasks and registers a new agent; a launcher daemon killed
under a running agent costs its tasks (TASK_LOST, their orphaned processes killed) but not the agent.
"""

import getpass
import glob
import json
import os
import random
import signal
import subprocess
import tempfile

import queue
import time

import pytest
import requests

from conftest import TEPUI_BIN, allocate_ip, artifact_dir, get_json, wait_until
from mesos_http import SchedulerStream, command_task, summarize, unique_id

WAIT = 30


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children(pid):
    """Pids whose parent is pid."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


class Node:
    """One tepui process, restartable, logging to <artifacts>/<name>.log."""

    def __init__(self, out_dir, name, args):
        self.name = name
        self.args = args
        self.log_path = os.path.join(out_dir, f"{name}.log")
        self.proc = None

    def start(self, extra=()):
        log = open(self.log_path, "ab")
        cmd = [TEPUI_BIN] + self.args + list(extra)
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=dict(os.environ, RUST_BACKTRACE="1"))
        log.close()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, lines=40):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])


class Cluster:
    def __init__(self, name):
        self.ip = allocate_ip()
        self.out_dir = artifact_dir(name)
        # A fresh work_dir beside the logs (kept as an artifact: sandboxes, checkpoints, launcher.log).
        self.work_dir = tempfile.mkdtemp(prefix="agent-work-", dir=self.out_dir)
        self.master_url = f"http://{self.ip}:5050"
        self.agent_url = f"http://{self.ip}:5051"
        self.master = Node(self.out_dir, "master", ["master", "--ip", self.ip, "--port", "5050",
                                                    "--registry=in_memory", "--allocation_interval=100ms"])
        self.agent = Node(self.out_dir, "agent", [
            "agent", f"--master={self.ip}:5050", f"--ip={self.ip}", "--port=5051",
            f"--work_dir={self.work_dir}", "--registration_backoff_factor=10ms",
            "--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31100]",
        ])
        self.streams = []

    @property
    def meta(self):
        return os.path.join(self.work_dir, "meta")

    def launcher_pid(self):
        with open(os.path.join(self.meta, "launcher.pid")) as f:
            return int(f.read().strip())

    def active_agents(self):
        return [s for s in get_json(self.master_url + "/state").get("slaves", []) if s.get("active")]

    def wait_agent(self, what, predicate=lambda agents: len(agents) == 1):
        def check():
            assert self.agent.proc.poll() is None, f"the agent exited:\n{self.agent.log_tail()}"
            agents = self.active_agents()
            return agents if predicate(agents) else None

        return wait_until(check, WAIT, what)

    def start(self):
        self.master.start()
        wait_until(lambda: requests.get(self.master_url + "/health", timeout=2).ok, WAIT, "the master")
        self.agent.start()
        return self.wait_agent("one active agent")[0]["id"]

    def subscribe(self):
        stream = SchedulerStream(self.master_url, {"user": getpass.getuser(), "name": "recovery-test",
                                                   "failover_timeout": 3600.0}, auto_ack=False)
        self.streams.append(stream)
        return stream

    def task_updates_file(self, agent_id, framework_id, task_id):
        found = glob.glob(os.path.join(self.meta, "slaves", agent_id, "frameworks", framework_id, "executors",
                                       task_id, "runs", "*", "task.updates"))
        return found[0] if found else None

    def ack_checkpointed(self, agent_id, framework_id, task_id, uuid):
        """The agent recorded the acknowledgement (or the run completed and its checkpoints went)."""
        path = self.task_updates_file(agent_id, framework_id, task_id)
        if path is None:
            return True
        with open(path) as f:
            return any(json.loads(line).get("uuid") == uuid and json.loads(line).get("type") == "ACK"
                       for line in f if line.strip().endswith("}"))

    def teardown(self):
        """Stops everything; the agent keeps its tasks on SIGTERM, so they are killed here, by
        process group, from the daemon's children. Streams close last: closing one blocks until the
        master sends something (a heartbeat every 15 s) or goes away."""
        self.agent.stop()
        try:
            daemon = self.launcher_pid()
        except (OSError, ValueError):
            daemon = None
        if daemon is not None:
            for child in children(daemon):
                try:
                    os.killpg(child, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.kill(daemon, signal.SIGKILL)
            except OSError:
                pass
        self.master.stop()
        for stream in self.streams:
            stream.close()


@pytest.fixture
def cluster(request):
    c = Cluster(request.node.nodeid)
    try:
        yield c
    finally:
        c.teardown()


def launch(stream, tasks):
    offer = stream.take_offer(WAIT)
    stream.accept_launch(offer, [command_task(t, offer["agent_id"]["value"], cmd) for t, cmd in tasks],
                         refuse_seconds=0)


def find_update(stream, task_id, predicate, what):
    """The first update of task_id (received at any time) matching predicate, waiting for it."""
    deadline = time.monotonic() + WAIT
    while True:
        for status in stream.updates_for(task_id):
            if predicate(status):
                return status
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {what}; events: {summarize(stream.events)}"
        try:
            stream._drain(min(remaining, 0.2))  # reads (and records) what the master sent
        except queue.Empty:
            pass


def state_of(stream, task_id, state, ack=True):
    status = find_update(stream, task_id, lambda s: s["state"] == state, f"{state} for {task_id}")
    if ack:
        stream.acknowledge(status)
    return status


def master_task_states(cluster):
    state = get_json(cluster.master_url + "/state")
    return {t["id"]: t["state"] for f in state.get("frameworks", []) for t in f.get("tasks", [])}


def test_a_killed_agent_keeps_its_tasks_and_delivers_each_update_once(cluster):
    agent_id = cluster.start()
    stream = cluster.subscribe()
    marker = f"600.{random.randrange(10**8, 10**9)}"
    steady, finisher, unacked = unique_id("steady"), unique_id("finisher"), unique_id("unacked")
    launch(stream, [(steady, f"exec sleep {marker}"), (finisher, "while [ ! -e go ]; do sleep 0.02; done")])
    fw = stream.framework_id
    running = {}
    for task in (steady, finisher):
        state_of(stream, task, "TASK_STARTING")
        running[task] = state_of(stream, task, "TASK_RUNNING")
        wait_until(lambda: cluster.ack_checkpointed(agent_id, fw, task, running[task]["uuid"]), WAIT,
                   f"the acknowledgement of {task}'s TASK_RUNNING checkpointed by the agent")
    # The last task's TASK_RUNNING is not acknowledged before the agent dies (killed at once, well
    # before the agent's 10 s resend).
    launch(stream, [(unacked, f"exec sleep {marker}")])
    state_of(stream, unacked, "TASK_STARTING")
    running[unacked] = state_of(stream, unacked, "TASK_RUNNING", ack=False)
    cluster.agent.kill9()
    pids = {task: s["container_status"]["executor_pid"] for task, s in running.items()}
    assert all(alive(p) for p in pids.values()), "task processes died with the agent"
    assert alive(cluster.launcher_pid()), "the launcher daemon died with the agent"

    # The finisher ends while no agent runs.
    sandbox = os.path.join(cluster.work_dir, "slaves", agent_id, "frameworks", fw, "executors", finisher,
                           "runs", "latest")
    open(os.path.join(sandbox, "go"), "w").close()
    wait_until(lambda: not alive(pids[finisher]), WAIT, "the finisher to exit")

    cluster.agent.start()
    cluster.wait_agent("the agent back, same id", lambda agents: [a["id"] for a in agents] == [agent_id])
    wait_until(lambda: master_task_states(cluster).get(steady) == "TASK_RUNNING"
               and master_task_states(cluster).get(unacked) == "TASK_RUNNING", WAIT,
               "the master to list the recovered tasks RUNNING")
    finished = state_of(stream, finisher, "TASK_FINISHED")
    assert finished.get("message") == "Command exited with status 0", finished
    unacked_uuid = running[unacked]["uuid"]
    delivered = lambda: [s for s in stream.updates_for(unacked) if s.get("uuid") == unacked_uuid]  # noqa: E731
    find_update(stream, unacked, lambda s: len(delivered()) == 2, "the unacknowledged TASK_RUNNING again")
    redelivered = delivered()[1]
    assert redelivered["state"] == "TASK_RUNNING"
    stream.acknowledge(redelivered)
    for task, uuid in ((finisher, finished["uuid"]), (unacked, unacked_uuid)):
        wait_until(lambda: cluster.ack_checkpointed(agent_id, fw, task, uuid), WAIT,
                   f"the acknowledgement of {task} checkpointed")
    # Once acknowledged nothing is resent; the master answers a reconciliation after everything it
    # forwarded before, so by its answer any duplicate would be here.
    stream.call("RECONCILE", {"tasks": [{"task_id": {"value": steady}, "agent_id": {"value": agent_id}}]})
    find_update(stream, steady, lambda s: s.get("reason") == "REASON_RECONCILIATION", "the reconciliation answer")
    assert [s["state"] for s in stream.updates_for(finisher)] == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert len(delivered()) == 2, f"before the kill, and once more after: {stream.updates_for(unacked)}"
    assert [s["state"] for s in stream.updates_for(steady) if s.get("reason") != "REASON_RECONCILIATION"] == \
        ["TASK_STARTING", "TASK_RUNNING"], "nothing acknowledged is resent"

    # The same processes, re-attached.
    assert alive(pids[steady]) and alive(pids[unacked])
    agent_state = get_json(cluster.agent_url + "/state")
    states = {t["id"]: t["state"] for f in agent_state["frameworks"] for e in f["executors"] for t in e["tasks"]}
    assert states[steady] == states[unacked] == "TASK_RUNNING", states
    metrics = get_json(cluster.agent_url + "/metrics/snapshot")
    assert metrics["slave/recovery_errors"] == 0
    stream.call("KILL", {"task_id": {"value": steady}, "agent_id": {"value": agent_id}})
    state_of(stream, steady, "TASK_KILLED")
    wait_until(lambda: not alive(pids[steady]), WAIT, "the killed task's process to be gone")

    # --recover=cleanup: the tasks die and a new agent registers.
    cluster.agent.kill9()
    assert alive(pids[unacked])
    cluster.agent.start(["--recover=cleanup"])
    wait_until(lambda: not alive(pids[unacked]), WAIT, "cleanup to kill the remaining task")
    agents = cluster.wait_agent("a new agent", lambda agents: any(a["id"] != agent_id for a in agents))
    assert agent_id not in [a["id"] for a in agents]


def test_a_launcher_killed_under_a_running_agent_costs_its_tasks_not_the_agent(cluster):
    agent_id = cluster.start()
    stream = cluster.subscribe()
    task = unique_id("orphan")
    launch(stream, [(task, f"exec sleep 600.{random.randrange(10**8, 10**9)}")])
    state_of(stream, task, "TASK_STARTING")
    pid = state_of(stream, task, "TASK_RUNNING")["container_status"]["executor_pid"]
    old_daemon = cluster.launcher_pid()

    os.kill(old_daemon, signal.SIGKILL)
    lost = state_of(stream, task, "TASK_LOST")
    assert lost.get("reason") == "REASON_EXECUTOR_REREGISTRATION_TIMEOUT", lost
    wait_until(lambda: not alive(pid), WAIT, "the orphaned task process to be killed")
    new_daemon = wait_until(lambda: cluster.launcher_pid() != old_daemon and cluster.launcher_pid(), WAIT,
                            "a new launcher daemon")
    assert alive(new_daemon)
    assert cluster.agent.proc.poll() is None
    assert [a["id"] for a in cluster.active_agents()] == [agent_id]

    # The agent launches through the new daemon.
    second = unique_id("after")
    launch(stream, [(second, "exit 0")])
    state_of(stream, second, "TASK_STARTING")
    state_of(stream, second, "TASK_RUNNING")
    state_of(stream, second, "TASK_FINISHED")
