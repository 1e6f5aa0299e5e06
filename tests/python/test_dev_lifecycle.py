"""`tepui dev` lifecycle: it announces its endpoints, runs a task, and Ctrl-C stops everything."""

import getpass
import random
import re
import subprocess

import requests

from conftest import SHUTDOWN_TIMEOUT, wait_until
from mesos_http import SchedulerStream, command_task, scalar, unique_id


def pgrep(pattern, exact=False):
    """PIDs whose full command line matches pattern (pgrep -f [-x])."""
    args = ["pgrep", "-f"] + (["-x"] if exact else []) + [pattern]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), f"pgrep failed: {out.stderr}"
    return {int(p) for p in out.stdout.split()}


def test_dev_announces_endpoints_and_serves_health_and_redirect(dev):
    wait_until(
        lambda: re.search(rf"^master: http://{re.escape(dev.ip)}:{dev.master_port}\s*$", dev.log_text(), re.M),
        10, f"a 'master: http://{dev.ip}:{dev.master_port}' line in {dev.log_path}",
    )
    wait_until(
        lambda: re.search(rf"^agent: http://{re.escape(dev.ip)}:{dev.agent_port}\s*$", dev.log_text(), re.M),
        10, f"an 'agent: http://{dev.ip}:{dev.agent_port}' line in {dev.log_path}",
    )

    for url in (dev.master_url + "/health", dev.agent_url + "/health"):
        resp = requests.get(url, timeout=5)
        assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text!r}"

    version = requests.get(dev.master_url + "/version", timeout=5).json()
    assert version["version"] == "1.11.0", version

    # /redirect on the leader: 307 to //<leader hostname>:<port>, with no path.
    state = dev.master_state()
    resp = requests.get(dev.master_url + "/redirect", allow_redirects=False, timeout=5)
    assert resp.status_code == 307, f"/redirect: {resp.status_code} {resp.text!r}"
    location = resp.headers.get("Location", "")
    m = re.fullmatch(r"//([^/:]+):(\d+)", location)
    assert m, f"/redirect Location should be //host:port, got {location!r}"
    known_names = {dev.ip, state.get("hostname"), (state.get("leader_info") or {}).get("hostname")}
    assert m.group(1) in known_names, f"Location host {m.group(1)!r} is not the master ({known_names})"
    assert int(m.group(2)) == dev.master_port, location

    # Paths below /redirect/ are a loop guard: 404.
    resp = requests.get(dev.master_url + "/redirect/state", allow_redirects=False, timeout=5)
    assert resp.status_code == 404, f"/redirect/state: {resp.status_code}"


def test_ctrl_c_stops_dev_and_its_running_task(dev):
    # A unique duration identifies the task's process: `sleep 600.<random>`.
    marker = f"sleep 600.{random.randrange(10**8, 10**9)}"
    assert not pgrep(marker), f"a process matching {marker!r} already exists"

    stream = SchedulerStream(
        dev.master_url, {"user": getpass.getuser(), "name": "lifecycle-test", "failover_timeout": 0.0}
    )
    offer = stream.take_offer(30)
    assert offer["agent_id"]["value"] == dev.agent_id, offer
    assert scalar(offer, "cpus") >= 0.1 and scalar(offer, "mem") >= 32, offer

    task_id = unique_id("sleeper")
    stream.accept_launch(offer, [command_task(task_id, offer["agent_id"]["value"], f"exec {marker}")])
    status = stream.wait_for_update(
        task_id,
        lambda s: s["state"] == "TASK_RUNNING" or s["state"] not in ("TASK_STAGING", "TASK_STARTING"),
        30, f"TASK_RUNNING for {task_id}",
    )
    assert status["state"] == "TASK_RUNNING", f"task did not run: {status}"

    sleeper = wait_until(lambda: pgrep(marker, exact=True), 10, f"a process `{marker}` on this machine")
    related = pgrep(marker)  # the sleep itself, plus any wrapper whose argv names it

    # Ctrl-C with the scheduler's stream still open: everything must stop.
    assert dev.interrupt(), (
        f"tepui dev did not exit within {SHUTDOWN_TIMEOUT}s of SIGINT (with a running task and an open "
        f"scheduler stream); log {dev.log_path}"
    )
    stream.close()
    try:
        wait_until(lambda: not (pgrep(marker) & (sleeper | related)), 5,
                   f"task process(es) {sorted(sleeper | related)} to be gone after tepui dev exited")
    finally:
        for pid in pgrep(marker):
            subprocess.run(["kill", "-9", str(pid)], check=False)
