"""The `tepui` client verbs (crates/cli) run as a real binary (TEPUI_BIN) against a real `tepui dev`
(master, agent and Marathon) and, for zk:// discovery, a 3-master cluster on a real ZooKeeper.

Exit codes checked: 0 success, 1 refused/failed, 2 usage (bad FILE.json), 3 unreachable,
4 not found.
"""

import json
import os
import queue
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import TEPUI_BIN, wait_until

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
SMALL = {"cpus": 0.01, "mem": 8, "disk": 0}


def cli(*args, master=None, timeout=60, stdin=None):
    """Runs `tepui <args>`; returns the CompletedProcess (text)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MESOS_MASTER", "TEPUI_MARATHON", "TEPUI_LOG")}
    if master:
        env["TEPUI_MASTER"] = master
    else:
        env.pop("TEPUI_MASTER", None)
    return subprocess.run([TEPUI_BIN, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          input=stdin)


def cli_on_terminal(*args, master, timeout=60):
    """Runs `tepui <args>` with stdout on a pseudo-terminal, as a person runs it; returns (exit code,
    everything written there)."""
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("MESOS_MASTER", "TEPUI_MARATHON", "TEPUI_LOG")}
    env["TEPUI_MASTER"] = master
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([TEPUI_BIN, *args], env=env, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(controller)
    return proc.wait(timeout=max(1, deadline - time.monotonic())), out.decode()


def ok(result):
    assert result.returncode == EXIT_OK, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def json_doc(result):
    return json.loads(ok(result))


def write_app(tmp_path, name, app):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(app))
    return str(path)


class LineReader:
    """Collects a running process's stdout lines on a thread, so the test can wait with a deadline."""

    def __init__(self, proc):
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, wanted, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {wanted!r}; saw {self.seen[-10:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line == wanted:
                return


def test_app_lifecycle_logs_and_cluster_views(dev_marathon, tmp_path):
    dev = dev_marathon
    master = f"{dev.ip}:{dev.master_port}"

    # add: exits 0 once the deployment finished with both instances running.
    hello = write_app(tmp_path, "hello", {"id": "/hello", "cmd": "echo hello; sleep 600", "instances": 2, **SMALL})
    out = ok(cli("app", "add", hello, master=master))
    assert re.search(r"deployment \S+ finished in [0-9.]+ s", out), out
    app = json_doc(cli("app", "show", "/hello", "--json", master=master))["app"]
    assert app["tasksRunning"] == 2 and app["instances"] == 2, app

    # app list / show, human and JSON.
    out = ok(cli("app", "list", master=master))
    assert re.search(r"^/hello\s+2/2\s", out, re.M), out
    apps = json_doc(cli("app", "list", "--json", master=master))["apps"]
    assert [a["id"] for a in apps] == ["/hello"]
    out = ok(cli("app", "show", "hello", master=master))
    assert "2 running, 0 staged, 2 wanted" in out, out
    assert out.count("TASK_RUNNING") == 2, out

    # tasks / agents / frameworks / status, human and JSON.
    tasks = json_doc(cli("tasks", "--json", master=master))
    hello_tasks = [t for t in tasks if t["name"] == "hello" and t["state"] == "TASK_RUNNING"]
    assert len(hello_tasks) == 2, tasks
    out = ok(cli("tasks", master=master))
    assert re.search(r"^hello\.instance-\S+\s+hello\s+TASK_RUNNING\s+marathon\s", out, re.M), out
    agents = json_doc(cli("agents", "--json", master=master))
    assert [a["id"] for a in agents] == [dev.agent_id]
    out = ok(cli("agents", master=master))
    assert dev.agent_id in out and f"{dev.ip}:{dev.agent_port}" in out, out
    frameworks = json_doc(cli("frameworks", "--json", master=master))
    assert [f["name"] for f in frameworks] == ["marathon"]
    status = json_doc(cli("status", "--json", master=master))
    assert status["leader"]["address"] == master, status
    assert status["agents"] == {"active": 1, "total": 1}, status
    assert status["tasks_running"] == 2 and status["frameworks"] == 1, status
    assert status["marathon"]["leader"] == f"{dev.ip}:8080", status
    out = ok(cli("status", master=master))
    assert f"at {master}" in out and "1 active / 1 total" in out and f"Marathon leader: {dev.ip}:8080" in out, out

    # scale follows to 3 running.
    out = ok(cli("app", "scale", "hello", "3", master=master))
    assert "finished in" in out, out
    app = json_doc(cli("app", "show", "hello", "--json", master=master))["app"]
    assert app["tasksRunning"] == 3, app

    # On a terminal the progress is one line redrawn in place; the result ends it.
    code, out = cli_on_terminal("app", "scale", "hello", "4", master=master)
    assert code == EXIT_OK, out
    assert re.fullmatch(r"scaling /hello: deployment [^\r\n]*\r\n(\r\x1b\[2Kdeployment \S+: step [^\r\n]*)*(\r\x1b\[2K)?deployment \S+ finished in [0-9.]+ s\r\n",
                        out), repr(out)

    # task logs: the sandbox stdout through the master's file proxy, by unique prefix too.
    task_id = hello_tasks[0]["id"]
    assert ok(cli("task", "logs", task_id, master=master)).splitlines() == ["hello"]
    assert ok(cli("task", "logs", task_id[:-3], master=master)).splitlines() == ["hello"]
    ambiguous = cli("task", "logs", "hello.", master=master)
    assert ambiguous.returncode == EXIT_USAGE and "matches" in ambiguous.stderr, ambiguous

    # --follow shows lines written after it started.
    counter = write_app(tmp_path, "counter", {
        "id": "/counter", "cmd": "for i in $(seq 1 100); do echo line$i; sleep 0.2; done; sleep 600", **SMALL})
    ok(cli("app", "add", counter, master=master))
    counter_id = next(t["id"] for t in json_doc(cli("tasks", "--json", master=master)) if t["name"] == "counter")
    before = wait_until(lambda: ok(cli("task", "logs", counter_id, master=master)).split(), 10, "counter's first lines")
    last_before = max(int(w[len("line"):]) for w in before)
    env = {k: v for k, v in os.environ.items() if k not in ("MESOS_MASTER", "TEPUI_MARATHON")}
    env["TEPUI_MASTER"] = master
    follower = subprocess.Popen([TEPUI_BIN, "task", "logs", counter_id, "--follow"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        LineReader(follower).wait_for(f"line{last_before + 5}", 20)
    finally:
        follower.kill()
        follower.wait(timeout=10)

    # remove: exits 0 and the app is gone; then it is not found (4).
    for app_id in ("hello", "counter"):
        out = ok(cli("app", "remove", app_id, master=master))
        assert "finished in" in out, out
    assert json_doc(cli("app", "list", "--json", master=master))["apps"] == []
    missing = cli("app", "show", "hello", master=master)
    assert missing.returncode == EXIT_NOT_FOUND and "does not exist" in missing.stderr, missing
    missing = cli("app", "scale", "nope", "2", master=master)
    assert missing.returncode == EXIT_NOT_FOUND, missing
    for verb in (["app", "restart", "nope"], ["app", "remove", "nope"], ["task", "logs", "no-such-task"]):
        missing = cli(*verb, master=master)
        assert missing.returncode == EXIT_NOT_FOUND, missing
    missing = cli("deployment", "watch", "no-such-deployment", master=master)
    assert missing.returncode == EXIT_NOT_FOUND, missing

    # A deployment that cannot finish (more cpus than the agent has) is held: a change without
    # --force is refused (409, exit 1); with --force it cancels the first one, whose watcher then
    # reports that the app did not reach its goal (exit 1).
    big = write_app(tmp_path, "big", {"id": "/big", "cmd": "sleep 600", "instances": 50, "cpus": 0.5, "mem": 8})
    created = ok(cli("app", "add", big, "--no-wait", "--json", master=master)).splitlines()
    deployment_id = json.loads(created[0])["deployments"][0]["id"]
    watcher = subprocess.Popen([TEPUI_BIN, "deployment", "watch", deployment_id], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        locked = cli("app", "scale", "big", "1", master=master)
        assert locked.returncode == EXIT_FAILED and "409" in locked.stderr and "--force" in locked.stderr, locked
        ok(cli("app", "scale", "big", "1", "--force", master=master))
        _, err = watcher.communicate(timeout=30)
        assert watcher.returncode == EXIT_FAILED and "cancelled or rolled back" in err, (watcher.returncode, err)
    finally:
        watcher.kill()
        watcher.wait(timeout=10)
    ok(cli("app", "remove", "big", master=master))

    # A refused definition (422) exits 1 with Marathon's message and the failing path.
    bad = write_app(tmp_path, "negative", {"id": "/neg", "cmd": "sleep 1", "cpus": -1, "mem": 8})
    refused = cli("app", "add", bad, master=master)
    assert refused.returncode == EXIT_FAILED and "/cpus" in refused.stderr, refused


def test_a_bad_definition_file_is_a_usage_error_naming_it(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    for path in (str(bad), str(tmp_path / "missing.json")):
        result = cli("app", "add", path, master="127.0.0.1:1", timeout=10)
        assert result.returncode == EXIT_USAGE, result
        assert path in result.stderr, result.stderr
    result = cli("app", "add", "-", master="127.0.0.1:1", stdin="[1, 2]", timeout=10)
    assert result.returncode == EXIT_USAGE and "stdin" in result.stderr, result


def test_an_unreachable_master_exits_3_quickly():
    # A closed port: refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    started = time.monotonic()
    result = cli("status", master=f"127.0.0.1:{closed}", timeout=15)
    assert result.returncode == EXIT_UNREACHABLE, result
    assert f"127.0.0.1:{closed}" in result.stderr, result.stderr
    assert time.monotonic() - started < 5
    # A port that accepts connections but never answers: bounded too.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = cli("agents", master=address, timeout=15)
        assert result.returncode == EXIT_UNREACHABLE, result
        assert address in result.stderr, result.stderr
        assert time.monotonic() - started < 8
    # A ZooKeeper that is not there.
    started = time.monotonic()
    result = cli("status", master=f"zk://127.0.0.1:{closed}/mesos", timeout=15)
    assert result.returncode == EXIT_UNREACHABLE, result
    assert time.monotonic() - started < 8


@pytest.mark.timeout(240)
def test_zk_discovery_finds_the_leader_standbys_and_marathon(request):
    from harness import Cluster
    from harness.marathon import add_marathons, wait_marathon_leader

    cluster = Cluster(request.node.name, masters=3, agents=1, agent_resources="cpus:1;mem:512;disk:512",
                      registry="replicated_log")
    try:
        leader = cluster.start()
        marathon = wait_marathon_leader(add_marathons(cluster, 1), 60)
        zk = cluster.zk_url
        result = cli("status", "--json", "--master", zk)
        assert result.stderr == "", result.stderr  # no log chatter from the ZooKeeper client
        status = json_doc(result)
        assert status["leader"]["address"] == f"{leader.ip}:{leader.port}", status
        standbys = sorted(s["address"] for s in status["standbys"])
        assert standbys == sorted(f"{m.ip}:{m.port}" for m in cluster.masters if m is not leader), status
        assert status["quorum"] == "2", status
        assert status["agents"] == {"active": 1, "total": 1}, status
        assert status["marathon"]["leader"] == marathon.address, status
        out = ok(cli("status", "--master", zk))
        standby_line = next(line for line in out.splitlines() if line.startswith("Standbys:"))
        assert f"at {leader.ip}:{leader.port}" in out and standby_line.count(":5050 (") == 2, out
        # Given a standby's host:port, its /redirect leads to the leader.
        standby = next(m for m in cluster.masters if m is not leader)
        status = json_doc(cli("status", "--json", "--master", f"{standby.ip}:{standby.port}"))
        assert status["leader"]["address"] == f"{leader.ip}:{leader.port}", status
        # Marathon's verbs find it through its leader latch beside the masters' znode.
        assert json_doc(cli("app", "list", "--json", "--master", zk))["apps"] == []
    finally:
        cluster.stop()
