"""Assertions shared by the HA suites (spec mesos-ha.md sections 2-3)."""

import json

import requests

from .util import wait_until

SESSION_TIMEOUT = 2.0
# kill -9 of the leader: its znode goes when its session expires (2 s), then election + recovery.
FAILOVER_DEADLINE = SESSION_TIMEOUT + 6.0
# A leader that lost ZooKeeper must be gone within its session timeout plus slack (it may first
# need the client's read timeout, 2/3 of the session, to notice the silence).
FAIL_FAST_DEADLINE = SESSION_TIMEOUT * 2 + 4.0
REREGISTER_DEADLINE = 15.0
EXIT_FAIL_FAST = 3

LEADER_ONLY_GET = ["/state", "/state.json", "/frameworks", "/slaves", "/tasks"]


def location_of(resp):
    return resp.headers.get("Location")


def assert_redirects_to(master, leader, path="/state", method="GET", body=None, headers=None):
    """`master` answers `path` with 307 and Location //<leader ip>:<port><path>."""
    url = master.url + path
    if method == "GET":
        resp = requests.get(url, allow_redirects=False, timeout=3, headers=headers)
    else:
        resp = requests.post(url, data=body, allow_redirects=False, timeout=3, headers=headers)
    want = f"//{leader.ip}:{leader.port}{path if path != '/redirect' else ''}"
    assert resp.status_code == 307 and location_of(resp) == want, (
        f"{method} {url} on standby {master.name}: expected 307 Location {want!r}, "
        f"got {resp.status_code} Location {location_of(resp)!r} body {resp.text[:200]!r}")
    return resp


def wait_standbys_redirect(cluster, leader, timeout=5.0, paths=("/state", "/redirect")):
    """Every running master other than leader redirects (307) to it."""
    standbys = [m for m in cluster.running_masters() if m is not leader]
    assert standbys, "no running standby to check"
    for m in standbys:
        for path in paths:
            wait_until(lambda: assert_redirects_to(m, leader, path), timeout,
                       f"{m.name} to redirect {path} to {leader.name}")
    return standbys


def scheduler_subscribe_body(name="probe"):
    return json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": name}}})


JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def assert_fail_fast_exit(node, rc, started):
    """The leader exited with EXIT_FAIL_FAST and logged `fail-fast`."""
    import time

    assert rc is not None, (
        f"{node.name} (old leader) still runs {time.monotonic() - started:.1f}s after losing ZooKeeper; "
        f"expected exit code {EXIT_FAIL_FAST}; log tail:\n{node.tail(30)}")
    assert rc == EXIT_FAIL_FAST, (
        f"{node.name} exited with code {rc}, expected {EXIT_FAIL_FAST}; log tail:\n{node.tail(30)}")
    assert "fail-fast" in node.current_log(), (
        f"no 'fail-fast' line in the output of {node.name}'s last run ({node.log_path}):\n{node.tail(30)}")
