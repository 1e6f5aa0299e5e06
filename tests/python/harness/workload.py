"""A v1 HTTP scheduler that keeps a long `sleep` task running across master failovers.

    fw = SleepFramework(cluster, "ha-test")
    fw.launch(on_agent=cluster.agents[0])     # TASK_RUNNING; fw.pid is the task's `sleep` process
    ... fault ...
    fw.resubscribe(new_leader)                # SUBSCRIBE with the same framework id
    fw.reconcile_running(timeout=15)          # implicit RECONCILE -> TASK_RUNNING for the task
    fw.assert_survived(cluster, leader)       # pid alive, agent /state and leader /state list it
    fw.teardown()

Built on tests/python/mesos_http.py (SchedulerStream), without following a standby's redirect.
"""

import getpass
import os
import random
import sys

from .util import find_pids, proc_alive, proc_start_time, wait_until

_TESTS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from mesos_http import (  # noqa: E402
    SchedulerStream,
    command_task,
    summarize,
    unique_id,
)


class Stream(SchedulerStream):
    """SchedulerStream that does not follow a standby's redirect: an HA test subscribes to the
    master it means."""

    def __init__(self, master_url, framework_info, connect_timeout=10.0, auto_ack=True):
        super().__init__(master_url, framework_info, connect_timeout, auto_ack, allow_redirects=False)


class SleepFramework:
    """One framework with one `sleep` task, followed across failovers."""

    def __init__(self, cluster, name="ha-sleeper", failover_timeout=3600.0, capabilities=()):
        """capabilities: FrameworkInfo capability types, e.g. ("PARTITION_AWARE",)."""
        self.cluster = cluster
        self.framework_info = {
            "user": getpass.getuser(),
            "name": name,
            "failover_timeout": failover_timeout,
            "checkpoint": True,
        }
        if capabilities:
            self.framework_info["capabilities"] = [{"type": c} for c in capabilities]
        self.stream = None
        self.framework_id = None
        self.task_id = None
        self.agent = None  # harness Agent node running the task
        self.agent_id = None
        self.marker = None
        self.pid = None
        self.pid_start = None
        self.subscriptions = 0

    # -- subscription ------------------------------------------------------------------------------
    def subscribe(self, master):
        """(Re)subscribe through `master` (a harness Master); with a known framework id this is a
        resubscription. Closes the previous stream."""
        info = dict(self.framework_info)
        if self.framework_id:
            info["id"] = {"value": self.framework_id}
        old = self.stream
        self.stream = Stream(master.url, info)
        self.subscriptions += 1
        if old is not None:
            old.close()
        if self.framework_id:
            assert self.stream.framework_id == self.framework_id, (
                f"resubscription through {master.name} got framework id {self.stream.framework_id}, "
                f"expected {self.framework_id}")
        self.framework_id = self.stream.framework_id
        return self.stream

    resubscribe = subscribe

    def _wait_offer(self, want_id, timeout):
        """The first offer on agent want_id (any agent if None) this framework holds; offers on
        other agents are declined at once (refuse 1 s) rather than held, so the allocator can move
        those resources (a held offer keeps them from every framework until it is used)."""
        return self.stream.take_offer(
            timeout, f"an offer for agent {want_id or '(any)'}",
            fits=lambda o: want_id is None or o["agent_id"]["value"] == want_id)

    # -- the task ----------------------------------------------------------------------------------
    def launch(self, master=None, on_agent=None, timeout=30):
        """Subscribe (to the leader unless master is given) and launch `sleep 3600.<random>` on
        on_agent (or any agent); wait for TASK_RUNNING and find the sleep process's pid."""
        master = master or self.cluster.wait_leader(10)
        if self.stream is None:
            self.subscribe(master)
        want_id = on_agent.agent_id if on_agent is not None else None
        if on_agent is not None:
            assert want_id, f"{on_agent.name} has no agent id (not registered?)"

        offer = self._wait_offer(want_id, timeout)
        self.agent_id = offer["agent_id"]["value"]
        self.agent = on_agent or next((a for a in self.cluster.agents if a.agent_id == self.agent_id), None)
        self.marker = f"3600.{random.randrange(10**8, 10**9)}"
        self.task_id = unique_id("ha-sleep")
        # refuse_seconds=0: the rest of the offer comes back at the next allocation (the default
        # filter would hold it back for 5 s).
        self.stream.accept_launch(offer, [command_task(self.task_id, self.agent_id, f"exec sleep {self.marker}")],
                                  refuse_seconds=0)
        status = self.stream.wait_for_update(
            self.task_id, lambda s: s["state"] not in ("TASK_STAGING", "TASK_STARTING"), timeout,
            f"TASK_RUNNING for {self.task_id}")
        assert status["state"] == "TASK_RUNNING", f"task did not run: {status}"
        pids = wait_until(lambda: find_pids(["sleep", self.marker]), 10,
                          f"a process `sleep {self.marker}`")
        assert len(pids) == 1, f"several processes `sleep {self.marker}`: {pids}"
        self.pid = pids[0]
        self.pid_start = proc_start_time(self.pid)
        return status

    def launch_command(self, command, on_agent=None, timeout=30, prefix="ha-cmd"):
        """Launch one more task (shell command) through the current stream; wait for TASK_RUNNING;
        return its task id."""
        want_id = on_agent.agent_id if on_agent is not None else self.agent_id

        offer = self._wait_offer(want_id, timeout)
        task_id = unique_id(prefix)
        self.stream.accept_launch(offer, [command_task(task_id, offer["agent_id"]["value"], command)],
                                  refuse_seconds=0)
        status = self.stream.wait_for_update(
            task_id, lambda s: s["state"] not in ("TASK_STAGING", "TASK_STARTING"), timeout,
            f"TASK_RUNNING for {task_id}")
        assert status["state"] == "TASK_RUNNING", f"task {task_id} did not run: {status}"
        return task_id

    def quiesce(self, master, timeout=10):
        """SUPPRESS, then DECLINE (refuse 1 h) every offer `master`'s /state lists for this
        framework until it lists none: its held offers no longer keep resources from other
        frameworks (there is no offer timeout)."""
        self.stream.call("SUPPRESS")

        def no_offers():
            fw = next((f for f in master.state().get("frameworks", []) if f.get("id") == self.framework_id), None)
            assert fw is not None, f"{master.name}'s /state does not list framework {self.framework_id}"
            held = [{"value": o["id"]} for o in fw.get("offers", [])]
            if held:
                self.stream.call("DECLINE", {"offer_ids": held, "filters": {"refuse_seconds": 3600}})
                return False
            return True

        wait_until(no_offers, timeout, f"framework {self.framework_id} to hold no offers on {master.name}",
                   interval=0.1)

    def pid_alive(self):
        return self.pid is not None and proc_alive(self.pid, self.pid_start)

    def reconcile_running(self, timeout=20, retry_every=2.0):
        """Implicit RECONCILE (no tasks) until an UPDATE says TASK_RUNNING for our task with reason
        REASON_RECONCILIATION; return that status. Retries (a new leader answers nothing for a
        task whose agent has not reregistered yet)."""
        import time

        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            self.stream.call("RECONCILE", {"tasks": []})
            try:
                return self.stream.wait_for_update(
                    self.task_id,
                    lambda s: s.get("reason") == "REASON_RECONCILIATION",
                    min(retry_every, max(0.1, deadline - time.monotonic())),
                    f"a reconciliation update for {self.task_id}")
            except AssertionError as e:
                last_error = e
                if self.stream._closed is not None or time.monotonic() >= deadline:
                    raise AssertionError(
                        f"no reconciliation answer for {self.task_id} within {timeout}s: {last_error}; "
                        f"events: {summarize(self.stream.events)}") from None

    def assert_reconciled_running(self, timeout=20):
        status = self.reconcile_running(timeout)
        assert status["state"] == "TASK_RUNNING", f"reconciliation answered {status}"
        return status

    # -- where it is listed ------------------------------------------------------------------------
    def agent_task_state(self, agent=None):
        """The task's state in the agent's /state (None if not listed as a live task)."""
        agent = agent or self.agent
        for fw in agent.state().get("frameworks", []):
            for ex in fw.get("executors", []):
                for t in ex.get("tasks", []):
                    if t.get("id") == self.task_id:
                        return t.get("state")
        return None

    def master_task_state(self, master):
        for fw in master.state().get("frameworks", []):
            if fw.get("id") != self.framework_id:
                continue
            for t in fw.get("tasks", []):
                if t.get("id") == self.task_id:
                    return t.get("state")
        return None

    def assert_survived(self, leader=None, timeout=15):
        """The sleep process still runs (same pid), the agent's /state lists the task RUNNING, and
        (if given) the leader's /state lists it RUNNING under our framework."""
        assert self.pid_alive(), f"task process {self.pid} (`sleep {self.marker}`) is gone"
        wait_until(lambda: self.agent_task_state() == "TASK_RUNNING", timeout,
                   f"{self.agent.name}'s /state to list {self.task_id} as TASK_RUNNING")
        if leader is not None:
            wait_until(lambda: self.master_task_state(leader) == "TASK_RUNNING", timeout,
                       f"{leader.name}'s /state to list {self.task_id} of {self.framework_id} as TASK_RUNNING")
        assert self.pid_alive(), f"task process {self.pid} (`sleep {self.marker}`) is gone"

    # -- cleanup -----------------------------------------------------------------------------------
    def teardown(self):
        """TEARDOWN through the current stream (best effort); kill the sleep if still there."""
        if self.stream is not None:
            try:
                self.stream.teardown()
            except Exception:  # noqa: BLE001
                pass
        if self.pid_alive():
            try:
                os.kill(self.pid, 9)
            except OSError:
                pass
