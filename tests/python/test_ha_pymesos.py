"""pymesos given `zk://.../mesos` (its kazoo detector, spec 2.5) finds the leader, runs a task, and
after kill -9 of the leader resubscribes with the same framework id and keeps getting updates."""

import getpass
import random
import threading
import time

import pytest
from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

from harness import wait_until
from harness.checks import FAILOVER_DEADLINE, REREGISTER_DEADLINE, SESSION_TIMEOUT
from harness.fixtures import cluster, ha_cluster  # noqa: F401 - fixtures
from harness.util import find_pids, proc_alive, record_timing
from mesos_http import unique_id

pytestmark = pytest.mark.timeout(240)


class HAScheduler(Scheduler):
    """Launches queued tasks on offers; records registrations and every status update."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = []  # (task_id, command)
        self.registrations = []  # ("registered"|"reregistered", framework_id or None, master_info)
        self.updates = []  # (monotonic time, task_id, state, reason)
        self.errors = []
        self.framework_id = None

    def queue(self, task_id, command):
        with self.lock:
            self.pending.append((task_id, command))

    def registered(self, driver, framework_id, master_info):
        with self.lock:
            self.framework_id = framework_id.value
            self.registrations.append(("registered", framework_id.value, dict(master_info)))

    def reregistered(self, driver, master_info):
        with self.lock:
            self.registrations.append(("reregistered", None, dict(master_info)))

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self.lock:
                job = self.pending.pop(0) if self.pending and self._fits(offer) else None
            if job is None:
                driver.declineOffer(offer.id, {"refuse_seconds": 1})
                continue
            task = Dict()
            task.task_id.value = job[0]
            task.agent_id.value = offer.agent_id.value
            task.name = job[0]
            task.command.value = job[1]
            task.resources = [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ]
            driver.launchTasks(offer.id, [task])

    @staticmethod
    def _fits(offer):
        have = {}
        for r in offer.resources:
            if r.type == "SCALAR":
                have[r.name] = have.get(r.name, 0.0) + r.scalar.value
        return have.get("cpus", 0.0) >= 0.1 and have.get("mem", 0.0) >= 32

    def statusUpdate(self, driver, update):
        with self.lock:
            self.updates.append((time.monotonic(), update.task_id.value, update.state, update.get("reason")))

    def error(self, driver, message):
        with self.lock:
            self.errors.append(message)

    def states(self, task_id, since=0.0):
        with self.lock:
            return [s for t, tid, s, _ in self.updates if tid == task_id and t >= since]


def test_pymesos_with_zk_url_survives_leader_kill9(cluster, request):
    name = request.node.name
    sched = HAScheduler()
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "pymesos-ha"
    framework.failover_timeout = 3600.0
    marker = f"3600.{random.randrange(10**8, 10**9)}"
    sleeper = unique_id("pymesos-sleep")
    sched.queue(sleeper, f"exec sleep {marker}")
    driver = MesosSchedulerDriver(sched, framework, cluster.zk_url, use_addict=True)
    driver.start()
    pid = None
    try:
        old = cluster.wait_leader(10)
        wait_until(lambda: sched.framework_id, 30, "pymesos (zk:// detector) to be SUBSCRIBED")
        fid = sched.framework_id
        assert sched.registrations[0][2].get("hostname") == old.ip, sched.registrations
        wait_until(lambda: "TASK_RUNNING" in sched.states(sleeper), 30, f"TASK_RUNNING for {sleeper}")
        pids = wait_until(lambda: find_pids(["sleep", marker]), 10, f"process `sleep {marker}`")
        pid = pids[0]

        t0 = time.monotonic()
        cluster.kill9(old)
        new = cluster.wait_leader(FAILOVER_DEADLINE, exclude=[old])
        cluster.wait_agents(new, timeout=REREGISTER_DEADLINE)
        # pymesos sees the old znode vanish (the leader's 2 s session expires), reads the new one.
        wait_until(lambda: any(r[0] == "reregistered" for r in sched.registrations),
                   SESSION_TIMEOUT + 20, f"pymesos to resubscribe with {new.name}; registrations "
                   f"{sched.registrations}")
        t_resub = time.monotonic() - t0
        record_timing(name, "kill -9 -> pymesos resubscribed", t_resub)
        assert driver.framework_id == fid, f"framework id changed: {driver.framework_id} != {fid}"
        re = [r for r in sched.registrations if r[0] == "reregistered"][-1]
        assert re[2].get("hostname") == new.ip, f"pymesos resubscribed to {re[2]}, leader is {new.name}"

        # Updates still flow: reconciliation answers, and a new task runs to completion.
        t1 = time.monotonic()
        driver.reconcileTasks([])
        wait_until(lambda: "TASK_RUNNING" in sched.states(sleeper, since=t1), REREGISTER_DEADLINE,
                   f"a TASK_RUNNING update for {sleeper} after reconciliation with {new.name}")
        echo = unique_id("pymesos-echo")
        sched.queue(echo, "echo after-failover")
        driver.reviveOffers()
        wait_until(lambda: "TASK_FINISHED" in sched.states(echo), 30,
                   f"TASK_FINISHED for {echo} launched through {new.name}; got {sched.states(echo)}")
        assert proc_alive(pid), "the sleep task died across the failover"

        def listed():
            fws = [f for f in new.state().get("frameworks", []) if f.get("id") == fid]
            return fws and any(t.get("id") == sleeper and t.get("state") == "TASK_RUNNING"
                               for t in fws[0].get("tasks", []))

        wait_until(listed, 10, f"{new.name}'s /state to list {fid} with {sleeper} TASK_RUNNING")
        assert sched.errors == [], sched.errors
    finally:
        driver.stop()
        joiner = threading.Thread(target=driver.join, daemon=True)
        joiner.start()
        joiner.join(20)
        if pid is not None and proc_alive(pid):
            import os

            os.kill(pid, 9)
