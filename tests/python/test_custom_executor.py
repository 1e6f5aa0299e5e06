"""A pymesos scheduler runs a task in a custom executor written with pymesos' MesosExecutorDriver
on `tepui dev` (mesos-http-api.md section 9: the executor API on the agent; 8.2: MESSAGE events).

The executor is a real process: `python3 <file>` with the test's interpreter (the venv that has
pymesos), started by the agent through its launcher daemon, subscribing to `/api/v1/executor`.
"""

import getpass
import os
import sys
import threading

import requests
from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler, decode_data

from conftest import wait_until
from mesos_http import unique_id

TIMEOUT = 60
EXECUTOR_MESSAGE = b"hello from the executor"

EXECUTOR_SOURCE = r'''
"""A pymesos executor: a task reports TASK_RUNNING, a framework message and TASK_FINISHED; a task
named `long-*` only reports TASK_RUNNING and runs until killed or shut down."""
import logging
import sys
import threading

from pymesos import Executor, MesosExecutorDriver, encode_data

logging.basicConfig(level=logging.INFO, stream=sys.stderr)


class OneShotExecutor(Executor):
    def launchTask(self, driver, task):
        def run():
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
            if task["name"].startswith("long-"):
                return
            driver.sendFrameworkMessage(encode_data(%(message)r))
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):
        driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})


if __name__ == "__main__":
    MesosExecutorDriver(OneShotExecutor()).run()
'''


class ExecutorScheduler(Scheduler):
    """Launches one task with an ExecutorInfo on the first offer that fits; records what it hears."""

    def __init__(self, task_id, long_task_id, executor_id, command):
        self.task_id = task_id
        self.long_task_id = long_task_id
        self.long_states = []
        self.executor_id = executor_id
        self.command = command
        self._lock = threading.Lock()
        self.framework_id = None
        self.launched_on = None
        self.states = []
        self.statuses = []
        self.messages = []  # (executor_id, agent_id, decoded bytes)
        self.errors = []

    def snapshot(self):
        with self._lock:
            return list(self.states), list(self.messages)

    def registered(self, driver, framework_id, master_info):
        with self._lock:
            self.framework_id = framework_id.value

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self._lock:
                launch = self.launched_on is None
                if launch:
                    self.launched_on = offer.agent_id.value
            if not launch:
                driver.declineOffer(offer.id)
                continue
            tasks = []
            for task_id, name in ((self.task_id, self.task_id), (self.long_task_id, "long-" + self.long_task_id)):
                task = Dict()
                task.task_id.value = task_id
                task.agent_id.value = offer.agent_id.value
                task.name = name
                task.resources = [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}},
                ]
                task.executor.executor_id.value = self.executor_id
                task.executor.name = "pymesos test executor"
                task.executor.command.value = self.command
                task.executor.resources = [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}},
                ]
                tasks.append(task)
            driver.launchTasks(offer.id, tasks)

    def statusUpdate(self, driver, update):
        with self._lock:
            if update.task_id.value == self.task_id:
                self.states.append(update.state)
                self.statuses.append(update.to_dict() if hasattr(update, "to_dict") else dict(update))
            elif update.task_id.value == self.long_task_id:
                self.long_states.append(update.state)

    def frameworkMessage(self, driver, executor_id, agent_id, data):
        with self._lock:
            self.messages.append((executor_id.value, agent_id.value, decode_data(data)))

    def error(self, driver, message):
        with self._lock:
            self.errors.append(message)


def stop_driver(driver, timeout=20):
    driver.stop()
    joiner = threading.Thread(target=driver.join, daemon=True)
    joiner.start()
    joiner.join(timeout)
    assert not joiner.is_alive(), f"pymesos driver did not stop within {timeout}s"


def find_executor(agent_state, executor_id):
    for fw in agent_state.get("frameworks", []) + agent_state.get("completed_frameworks", []):
        for ex in fw.get("executors", []) + fw.get("completed_executors", []):
            if ex.get("id") == executor_id:
                return ex
    return None


def test_pymesos_custom_executor_runs_a_task_and_messages_its_framework(dev):
    executor_file = os.path.join(dev.out_dir, "pymesos_executor.py")
    with open(executor_file, "w") as f:
        f.write(EXECUTOR_SOURCE % {"message": EXECUTOR_MESSAGE})
    task_id = unique_id("custom-exec-task")
    executor_id = unique_id("custom-exec")
    command = f"exec {sys.executable} {executor_file}"
    long_task_id = unique_id("custom-exec-long")
    sched = ExecutorScheduler(task_id, long_task_id, executor_id, command)
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "pymesos-custom-executor"
    framework.checkpoint = True
    driver = MesosSchedulerDriver(sched, framework, f"{dev.ip}:{dev.master_port}", use_addict=True)
    driver.start()
    stopped = False
    try:
        wait_until(lambda: sched.framework_id, 30, "the framework to be SUBSCRIBED")
        wait_until(lambda: sched.launched_on, 30, "an offer to launch the task on")

        def finished_with_message():
            states, messages = sched.snapshot()
            failures = set(states) & {"TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_GONE"}
            assert not failures, f"task failed: {sched.statuses}"
            return "TASK_FINISHED" in states and messages

        try:
            wait_until(finished_with_message, TIMEOUT, "TASK_FINISHED and the executor's MESSAGE")
        except AssertionError:
            executor = find_executor(dev.agent_state(), executor_id) or {}
            stderr = ""
            if executor.get("directory"):
                try:
                    with open(os.path.join(executor["directory"], "stderr"), errors="replace") as f:
                        stderr = f.read()[-4000:]
                except OSError as e:
                    stderr = repr(e)
            raise AssertionError(f"statuses {sched.statuses}; executor {executor}; executor stderr:\n{stderr}")

        states, messages = sched.snapshot()
        assert states.index("TASK_RUNNING") < states.index("TASK_FINISHED"), states
        assert messages[0] == (executor_id, sched.launched_on, EXECUTOR_MESSAGE), messages
        for status in sched.statuses:
            assert status["source"] == "SOURCE_EXECUTOR", status
            assert status["executor_id"]["value"] == executor_id, status
        assert sched.errors == [], sched.errors

        # The agent lists the executor with its sandbox, where pymesos' environment checks passed.
        executor = wait_until(
            lambda: find_executor(dev.agent_state(), executor_id), 15, f"executor {executor_id} in the agent's /state"
        )
        assert executor["type"] == "CUSTOM", executor
        assert executor["directory"].endswith(executor["container"]), executor

        wait_until(lambda: "TASK_RUNNING" in sched.long_states, 15, "the second task of the executor to run")

        # Teardown (the second task still runs there, so the master tells the agent): the executor
        # gets SHUTDOWN and goes away (pymesos' executor exits on it).
        resp = requests.post(dev.master_url + "/teardown", data={"frameworkId": sched.framework_id}, timeout=10)
        assert resp.status_code == 200, resp.text

        def executor_gone():
            state = dev.agent_state()
            live = [
                ex
                for fw in state.get("frameworks", [])
                for ex in fw.get("executors", [])
                if ex.get("id") == executor_id
            ]
            return not live

        wait_until(executor_gone, 30, f"executor {executor_id} to end after the framework's teardown")
        stop_driver(driver)
        stopped = True
    finally:
        if not stopped:
            stop_driver(driver)
