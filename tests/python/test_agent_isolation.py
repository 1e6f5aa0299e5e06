"""Agent isolation through `tepui dev` (`--isolation`, read by the agent from MESOS_ISOLATION too).

With `cgroups/cpu,cgroups/mem` (this machine mounts the memory and cpu controllers and tests run as
root), a task over its memory limit is stopped and reported TASK_FAILED with
REASON_CONTAINER_LIMITATION_MEMORY, a task within its limits runs and shows in
/monitor/statistics with its limits, and the agent says at start which isolation it runs.
"""

import getpass
import re

import pytest

from conftest import _start_dev, get_json, wait_until
from mesos_http import SchedulerStream, command_task, unique_id

HOG = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); sleep 30"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}


@pytest.fixture
def dev_cgroups(request, monkeypatch):
    """`tepui dev` whose agent runs with cgroups isolation."""
    monkeypatch.setenv("MESOS_ISOLATION", "cgroups/cpu,cgroups/mem")
    cluster = _start_dev(request.node.nodeid)
    yield cluster
    try:
        cluster.stop()
    finally:
        cluster.kill()


def test_memory_limit_is_enforced_and_reported(dev_cgroups):
    dev = dev_cgroups
    def log():
        return ANSI.sub("", dev.log_text())

    wait_until(lambda: "task isolation isolation=cgroups/cpu,cgroups/mem" in log(), 10,
               f"the agent's isolation line in {dev.log_path}")
    assert "falling back" not in log(), log()

    stream = SchedulerStream(dev.master_url, {"user": getpass.getuser(), "name": "isolation-test",
                                              "failover_timeout": 0.0})
    offer = stream.take_offer(30)
    agent_id = offer["agent_id"]["value"]
    calm, hog = unique_id("calm"), unique_id("hog")
    stream.accept_launch(offer, [
        command_task(calm, agent_id, "sleep 600", cpus=0.5, mem=64.0),
        command_task(hog, agent_id, HOG, cpus=0.1, mem=64.0),
    ])

    failed = stream.wait_for_update(hog, lambda s: s["state"] in TERMINAL, 60, f"a terminal update for {hog}")
    assert failed["state"] == "TASK_FAILED", failed
    assert failed.get("reason") == "REASON_CONTAINER_LIMITATION_MEMORY", failed
    assert "64MB" in failed.get("message", ""), failed

    # Usually seen already while waiting for the hog (wait_for only returns events not seen before).
    if not any(s["state"] == "TASK_RUNNING" for s in stream.updates_for(calm)):
        stream.wait_for_update(calm, lambda s: s["state"] == "TASK_RUNNING", 30, f"{calm} running")
    states = [s["state"] for s in stream.updates_for(calm)]
    assert states == ["TASK_STARTING", "TASK_RUNNING"], states
    stats = wait_until(
        lambda: [e for e in get_json(dev.agent_url + "/monitor/statistics") if e["executor_id"] == calm],
        10, f"{calm} in /monitor/statistics",
    )
    assert stats[0]["statistics"]["mem_limit_bytes"] == 64 * 1024 * 1024, stats
    assert stats[0]["statistics"]["cpus_limit"] == 0.5, stats
    stream.close()
