"""A real pymesos framework runs a command task on `tepui dev` (spec sections 5, 7, 8, 11)."""

import getpass
import threading

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

from conftest import get_json, wait_until
from mesos_http import unique_id

TASK_TIMEOUT = 60
TERMINAL_FAILURES = {"TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}


class RecordingScheduler(Scheduler):
    """Launches one task on the first offer that fits; records everything it is told."""

    def __init__(self, task_id, command, cpus=0.1, mem=32.0):
        self.task_id = task_id
        self.command = command
        self.cpus = cpus
        self.mem = mem
        self._lock = threading.Lock()
        self.launched_on = None  # agent id
        self.framework_id = None
        self.states = []  # task states, in arrival order
        self.statuses = []
        self.errors = []
        self.offers_seen = 0

    def _snapshot(self):
        with self._lock:
            return list(self.states)

    def registered(self, driver, framework_id, master_info):
        with self._lock:
            self.framework_id = framework_id.value

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self._lock:
                self.offers_seen += 1
                launch = self.launched_on is None and self._fits(offer)
                if launch:
                    self.launched_on = offer.agent_id.value
            if not launch:
                driver.declineOffer(offer.id)
                continue
            task = Dict()
            task.task_id.value = self.task_id
            task.agent_id.value = offer.agent_id.value
            task.name = self.task_id
            task.command.value = self.command
            task.resources = [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": self.mem}},
            ]
            driver.launchTasks(offer.id, [task])

    def _fits(self, offer):
        have = {}
        for r in offer.resources:
            if r.type == "SCALAR":
                have[r.name] = have.get(r.name, 0.0) + r.scalar.value
        return have.get("cpus", 0.0) >= self.cpus and have.get("mem", 0.0) >= self.mem

    def statusUpdate(self, driver, update):
        with self._lock:
            if update.task_id.value == self.task_id:
                self.states.append(update.state)
                self.statuses.append(update.to_dict() if hasattr(update, "to_dict") else dict(update))

    def error(self, driver, message):
        with self._lock:
            self.errors.append(message)


def find_sandbox(agent_state, executor_id):
    """The `directory` of the executor with this id, wherever the agent lists it."""
    for fw in agent_state.get("frameworks", []) + agent_state.get("completed_frameworks", []):
        for ex in fw.get("executors", []) + fw.get("completed_executors", []):
            if ex.get("id") == executor_id and ex.get("directory"):
                return ex["directory"]
    return None


def stop_driver(driver, timeout=20):
    driver.stop()
    joiner = threading.Thread(target=driver.join, daemon=True)
    joiner.start()
    joiner.join(timeout)
    assert not joiner.is_alive(), f"pymesos driver did not stop within {timeout}s"


def test_pymesos_framework_runs_command_task(dev):
    task_id = unique_id("pymesos-echo")
    sched = RecordingScheduler(task_id, "echo hello")
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "pymesos-test"
    driver = MesosSchedulerDriver(sched, framework, f"{dev.ip}:{dev.master_port}", use_addict=True)
    driver.start()
    stopped = False
    try:
        # 1. Subscribed, offered, launched, and the task ran to completion.
        wait_until(lambda: sched.framework_id, 30, "pymesos framework to be SUBSCRIBED")
        wait_until(lambda: sched.launched_on, 30, "an offer with cpus>=0.1 and mem>=32 to be launched on")
        wait_until(
            lambda: "TASK_FINISHED" in sched._snapshot() or set(sched._snapshot()) & TERMINAL_FAILURES,
            TASK_TIMEOUT,
            f"a terminal update for {task_id}",
        )
        states = sched._snapshot()
        assert "TASK_FINISHED" in states, f"task did not finish: states {states}, statuses {sched.statuses}"
        assert "TASK_RUNNING" in states, f"no TASK_RUNNING before TASK_FINISHED: {states}"
        assert states.index("TASK_RUNNING") < states.index("TASK_FINISHED"), states
        assert sched.errors == [], f"scheduler got ERROR events: {sched.errors}"
        assert driver.framework_id == sched.framework_id

        # 2. The sandbox (found through the agent's /state) has "hello" in stdout.
        sandbox = wait_until(
            lambda: find_sandbox(dev.agent_state(), task_id), 15,
            f"agent /state to list an executor {task_id} with a sandbox directory",
        )

        def stdout_has_hello():
            resp = get_json(
                dev.agent_url + "/files/read",
                params={"path": sandbox + "/stdout", "offset": 0, "length": 65536},
            )
            assert resp["offset"] == 0, resp
            return "hello" in resp["data"] and resp

        wait_until(stdout_has_hello, 15, f"'hello' in {sandbox}/stdout via /files/read")

        # 3. The master's /state lists the framework with the task completed.
        def task_completed_on_master():
            state = dev.master_state()
            fws = [f for f in state.get("frameworks", []) if f.get("id") == sched.framework_id]
            if not fws:
                return None
            done = [t for t in fws[0].get("completed_tasks", []) if t.get("id") == task_id]
            return done and (fws[0], done[0])

        fw, task = wait_until(
            task_completed_on_master, 15,
            f"master /state to list framework {sched.framework_id} with {task_id} in completed_tasks",
        )
        assert fw["name"] == "pymesos-test"
        assert fw["user"] == getpass.getuser()
        assert task["state"] == "TASK_FINISHED", task
        assert task.get("slave_id") == sched.launched_on, task
        assert all(t.get("id") != task_id for t in fw.get("tasks", [])), "task still listed as active"

        # 4. Stopping the driver tears the framework down.
        stop_driver(driver)
        stopped = True

        def framework_completed():
            state = dev.master_state()
            active = [f["id"] for f in state.get("frameworks", [])]
            completed = [f["id"] for f in state.get("completed_frameworks", [])]
            return sched.framework_id not in active and sched.framework_id in completed

        wait_until(framework_completed, 15,
                   "framework to move to completed_frameworks after the driver's TEARDOWN")
    finally:
        if not stopped:
            driver.stop()

