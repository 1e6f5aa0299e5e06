"""`tepui local-cluster`: the tutorial's six-server HA cluster (3 masters with ZooKeeper and Marathon,
3 agents) on one machine, run the way a person runs it: `up` in the foreground, the other verbs from
another terminal, Ctrl-C to stop.

The cluster uses --ip_prefix 127.0.42 (no other suite uses it) and a fresh --dir under /tmp (short,
since agents put a unix socket in it). The `up` output goes to `<artifacts>/<test>/up.log`; the
servers' logs stay in DIR/logs when a test fails.

`LocalCluster` wraps one `up` process and its verbs (`cli`); `tepui(...)` runs the client CLI
against the cluster's zk:// URL, as an operator would.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import TEPUI_BIN, artifact_dir, wait_until

PREFIX = "127.0.42"
MASTERS = 3
AGENTS = 3
READY_TIMEOUT = 90
FAILOVER_TIMEOUT = 45
STOP_TIMEOUT = 60
HTTP_TIMEOUT = 5


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def proc_cwd(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def proc_alive(pid):
    """True for a live process (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def processes_of(directory):
    """{pid: cmdline} of live processes whose command line names `directory` or that run in it."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        line = proc_cmdline(pid)
        cwd = proc_cwd(pid)
        if proc_alive(pid) and (directory in line or cwd == directory or cwd.startswith(directory + "/")):
            found[pid] = line
    return found


class LocalCluster:
    """One `tepui local-cluster up` process and the verbs that act on it."""

    def __init__(self, name, masters=MASTERS, agents=AGENTS, prefix=PREFIX):
        assert os.path.isfile(TEPUI_BIN), f"tepui binary not found at {TEPUI_BIN} (set TEPUI_BIN)"
        self.out_dir = artifact_dir(name)
        self.dir = tempfile.mkdtemp(prefix="tepui-lc-", dir="/tmp")
        self.prefix = prefix
        self.masters = [f"{prefix}.{i}:5050" for i in range(1, masters + 1)]
        self.marathons = [f"{prefix}.{i}:8080" for i in range(1, masters + 1)]
        self.agents = [f"{prefix}.{100 + j}:5051" for j in range(1, agents + 1)]
        self.zk_connect = ",".join(f"{prefix}.{10 + i}:2181" for i in range(1, masters + 1))
        self.cmd = [TEPUI_BIN, "local-cluster", "up", "--masters", str(masters), "--agents", str(agents),
                    "--ip_prefix", prefix, "--dir", self.dir]
        self.log_path = os.path.join(self.out_dir, "up.log")
        self.proc = None
        self.passed = False

    # -- the `up` process -----------------------------------------------------------------------
    def start(self):
        self._log = open(self.log_path, "wb")
        self._log.write(("$ " + " ".join(self.cmd) + "\n").encode())
        self._log.flush()
        # Its own session, as a terminal would give it: signals reach only what we aim at.
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def output(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def wait_output(self, pattern, timeout, what=None):
        """Wait for a regex (multiline) in the `up` output; returns the match."""
        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"`up` exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            return re.search(pattern, self.output(), re.M)
        try:
            return wait_until(found, timeout, what or f"{pattern!r} in {self.log_path}", interval=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- up output ---\n{self.output()[-4000:]}") from None

    def state(self):
        with open(os.path.join(self.dir, "cluster.json")) as f:
            return json.load(f)

    def cli(self, *args, timeout=30):
        """`tepui local-cluster <args> --dir DIR` to completion."""
        return subprocess.run([TEPUI_BIN, "local-cluster", *args, "--dir", self.dir],
                              capture_output=True, text=True, timeout=timeout)

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)

    def cleanup(self, passed):
        """Always: no process may outlive the test; DIR goes only when the test passed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in processes_of(self.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self._log.close()
        if passed:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"local cluster directory kept: {self.dir}; `up` output: {self.log_path}")

    # -- the servers ----------------------------------------------------------------------------
    def get(self, address, path, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return requests.get(f"http://{address}{path}", timeout=HTTP_TIMEOUT, **kwargs)

    def leading_masters(self):
        """Masters that serve a leader-only endpoint themselves (200), and the codes of the rest."""
        codes = {}
        for address in self.masters:
            try:
                codes[address] = self.get(address, "/state").status_code
            except requests.RequestException:
                codes[address] = None
        return [a for a, c in codes.items() if c == 200], codes

    def leader(self):
        leading, _ = self.leading_masters()
        return leading[0] if len(leading) == 1 else None

    def marathon_leader(self):
        for address in self.marathons:
            try:
                resp = self.get(address, "/v2/leader")
            except requests.RequestException:
                continue
            if resp.status_code == 200:
                return resp.json().get("leader")
        return None

    def marathon_url(self):
        return f"http://{self.marathons[0]}"


@pytest.fixture
def local_cluster(request):
    cluster = LocalCluster(request.node.name)
    yield cluster
    # A test sets `cluster.passed` as its last step; otherwise DIR stays for its logs.
    cluster.cleanup(passed=cluster.passed)


def name_of_master(address):
    return "master-" + address.split(":")[0].rsplit(".", 1)[1]


def wait_ready(cluster):
    cluster.wait_output(r"^tepui local cluster ready in", READY_TIMEOUT, "the 'ready' summary")
    out = cluster.output()
    for address in cluster.masters:
        assert f"http://{address}/" in out, f"master URL {address} missing from the summary:\n{out}"
    for address in cluster.marathons:
        assert f"http://{address}/ui/" in out, f"Marathon UI {address} missing from the summary:\n{out}"
    for address in cluster.agents:
        assert f"http://{address}/" in out, f"agent URL {address} missing from the summary:\n{out}"
    assert f"zk://{cluster.zk_connect}/mesos" in out, out
    assert f"{cluster.dir}/logs" in out, out


def assert_one_leading_master(cluster):
    leading, codes = cluster.leading_masters()
    assert len(leading) == 1, f"exactly one master should lead: /state codes {codes}"
    others = {a: c for a, c in codes.items() if a != leading[0]}
    assert all(c == 307 for c in others.values()), f"standbys should answer 307 on /state: {codes}"
    return leading[0]


def active_agents(cluster, leader):
    slaves = cluster.get(leader, "/slaves").json()["slaves"]
    return sorted(f"{s['hostname']}:{s['port']}" for s in slaves if s.get("active"))


def port_ranges(text):
    """`[31000-31332, 31400-31500]` as pairs of ints."""
    return [tuple(int(n) for n in r.split("-")) for r in text.strip("[]").split(",") if r.strip()]


def wait_app_running(cluster, app_id, instances, timeout=60):
    """Until Marathon (any instance; standbys proxy) reports `instances` running tasks and no
    deployment."""
    def running():
        app = requests.get(f"{cluster.marathon_url()}/v2/apps{app_id}", timeout=HTTP_TIMEOUT).json()["app"]
        return app.get("tasksRunning", 0) == instances and not app.get("deployments")
    wait_until(running, timeout, f"{instances} running tasks of {app_id}", interval=0.5)


def task_processes(cluster):
    """The app's `sleep 600` processes (they run in their sandboxes under DIR)."""
    return {pid: line for pid, line in processes_of(cluster.dir).items() if line == "sleep 600"}


def kill_leader_and_watch_failover(cluster, old_leader):
    result = cluster.cli("kill-leader")
    assert result.returncode == 0, f"kill-leader: {result.returncode} {result.stdout} {result.stderr}"
    old_name = name_of_master(old_leader)
    assert f"killed {old_name} ({old_leader}" in result.stdout, result.stdout
    cluster.wait_output(rf"^\[.*\] {old_name} exited \(killed by SIGKILL\); restarting in \d+ s$", FAILOVER_TIMEOUT)
    m = cluster.wait_output(rf"^\[.*\] leader is now (master-\d) \(({re.escape(cluster.prefix)}\.\d:5050)\), was {old_name}$",
                            FAILOVER_TIMEOUT, "the new leader reported by `up`")
    new_name, new_leader = m.group(1), m.group(2)
    assert new_name != old_name
    cluster.wait_output(rf"^\[.*\] {old_name} restarted \(pid \d+\)$", FAILOVER_TIMEOUT)
    wait_until(lambda: cluster.leader() == new_leader, FAILOVER_TIMEOUT, f"{new_leader} serving as leader")
    return new_leader


def kill_marathon_leader_and_watch_failover(cluster, old_leader):
    result = cluster.cli("kill-leader", "--marathon")
    assert result.returncode == 0, f"kill-leader --marathon: {result.returncode} {result.stdout} {result.stderr}"
    old_name = "marathon-" + old_leader.split(":")[0].rsplit(".", 1)[1]
    assert f"killed {old_name} ({old_leader}" in result.stdout, result.stdout
    cluster.wait_output(rf"^\[.*\] {old_name} exited \(killed by SIGKILL\); restarting in \d+ s$", FAILOVER_TIMEOUT)
    m = cluster.wait_output(rf"^\[.*\] Marathon leader is now (marathon-\d) \(([0-9.]+:8080)\), was {old_name}$",
                            FAILOVER_TIMEOUT, "the new Marathon leader reported by `up`")
    new_leader = m.group(2)
    assert new_leader != old_leader
    wait_until(lambda: cluster.marathon_leader() == new_leader, FAILOVER_TIMEOUT, f"{new_leader} leading Marathon")
    return new_leader


def assert_second_up_refused(cluster):
    result = subprocess.run(cluster.cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result
    assert "already runs on" in result.stderr and f"local-cluster stop --dir {cluster.dir}" in result.stderr, result.stderr


def interrupt_and_check_nothing_left(cluster, pids):
    cluster.interrupt()
    try:
        code = cluster.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`up` still ran {STOP_TIMEOUT} s after SIGINT:\n{cluster.output()[-3000:]}") from None
    assert code == 0, f"`up` exited with {code} after SIGINT:\n{cluster.output()[-3000:]}"
    alive = [p for p in pids if proc_alive(p)]
    assert not alive, f"processes from cluster.json still alive: {alive}"
    left = processes_of(cluster.dir)
    assert not left, f"processes of the cluster left behind: {left}"
    assert not os.path.exists(os.path.join(cluster.dir, "cluster.json")), "cluster.json should be removed"


def tepui(cluster, *args, timeout=60):
    """The client CLI against the cluster's ZooKeeper URL, as an operator would run it."""
    return subprocess.run([TEPUI_BIN, *args, "--master", f"zk://{cluster.zk_connect}/mesos"],
                          capture_output=True, text=True, timeout=timeout)


def assert_cli_status(cluster, leader):
    result = tepui(cluster, "status", "--json")
    assert result.returncode == 0, result
    status = json.loads(result.stdout)
    assert status["leader"]["address"] == leader, status
    standbys = sorted(s["address"] if isinstance(s, dict) else s for s in status["standbys"])
    assert standbys == sorted(a for a in cluster.masters if a != leader), status
    assert status["quorum"] == str(MASTERS // 2 + 1), status
    assert status["agents"] == {"active": AGENTS, "total": AGENTS}, status
    assert status["marathon"]["leader"] in cluster.marathons, status


def cli_add_app_and_follow(cluster, app_id, instances):
    """`tepui app add FILE` posts the app and follows its deployment until it is done."""
    path = os.path.join(cluster.out_dir, "hello.json")
    with open(path, "w") as f:
        json.dump({"id": app_id, "cmd": "echo hello; sleep 600", "cpus": 0.1, "mem": 16, "instances": instances}, f)
    result = tepui(cluster, "app", "add", path, timeout=120)
    assert result.returncode == 0, f"tepui app add: {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert re.search(r"^deployment \S+ finished in [0-9.]+ s$", result.stdout, re.M), result.stdout
    wait_app_running(cluster, app_id, instances)


def cli_task_logs_say_hello(cluster, app_id):
    listed = tepui(cluster, "app", "show", app_id, "--json")
    assert listed.returncode == 0, listed
    app = json.loads(listed.stdout)
    app = app.get("app", app)
    task_id = app["tasks"][0]["id"]
    logs = wait_until(lambda: (lambda r: r if r.returncode == 0 and "hello" in r.stdout else None)(
        tepui(cluster, "task", "logs", task_id)), 30, f"`tepui task logs {task_id}` printing hello")
    assert logs.stdout.strip().splitlines()[0] == "hello", logs.stdout


def test_up_fails_over_and_ctrl_c_leaves_nothing(local_cluster):
    cluster = local_cluster.start()
    wait_ready(cluster)

    leader = assert_one_leading_master(cluster)
    assert active_agents(cluster, leader) == sorted(cluster.agents)
    # The agents share the machine rather than each offering all of it.
    slaves = cluster.get(leader, "/slaves").json()["slaves"]
    offered_cpus = sum(s["resources"]["cpus"] for s in slaves)
    assert 0 < offered_cpus <= os.cpu_count(), f"agents offer {offered_cpus} cpus on {os.cpu_count()}"
    offered_ports = [set(range(r[0], r[1] + 1)) for s in slaves for r in port_ranges(s["resources"]["ports"])]
    assert sum(len(p) for p in offered_ports) == len(set().union(*offered_ports)), "agents share no port"
    marathon_leader = cluster.marathon_leader()
    assert marathon_leader in cluster.marathons, f"Marathon leader {marathon_leader!r}"

    state = cluster.state()
    assert state["supervisor_pid"] == cluster.proc.pid
    assert len(state["servers"]) == 3 * MASTERS + AGENTS
    assert all(proc_alive(s["pid"]) for s in state["servers"]), state["servers"]

    status = cluster.cli("status")
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^\s+{name_of_master(leader)}\s+master\s+{re.escape(leader)}\s.*alive\s+leader$",
                     status.stdout, re.M), status.stdout

    assert_cli_status(cluster, leader)
    cli_add_app_and_follow(cluster, "/hello", 2)
    cli_task_logs_say_hello(cluster, "/hello")
    first_tasks = task_processes(cluster)
    assert len(first_tasks) == 2, f"expected 2 `sleep 600` tasks under {cluster.dir}: {first_tasks}"

    assert_second_up_refused(cluster)
    kill_leader_and_watch_failover(cluster, leader)
    kill_marathon_leader_and_watch_failover(cluster, marathon_leader)
    # The same 2 processes run under the new leaders: a Marathon that reconciles with a new master
    # before the agents re-registered gets no answer for their tasks, so it replaces nothing.
    wait_app_running(cluster, "/hello", 2)
    assert_cli_status(cluster, cluster.leader())
    tasks = task_processes(cluster)
    assert set(tasks) == set(first_tasks), f"tasks replaced across the failovers: {first_tasks} -> {tasks}"

    # A deployment started after the failovers, followed by the CLI to its end.
    scaled = tepui(cluster, "app", "scale", "/hello", "3", timeout=120)
    assert scaled.returncode == 0, f"tepui app scale: {scaled.returncode}\n{scaled.stdout}\n{scaled.stderr}"
    assert re.search(r"^deployment \S+ finished in [0-9.]+ s$", scaled.stdout, re.M), scaled.stdout
    wait_app_running(cluster, "/hello", 3)
    tasks = task_processes(cluster)
    assert len(tasks) == 3 and set(first_tasks) <= set(tasks), tasks

    # Every pid the cluster ever had: servers before and after the restarts, tasks, the supervisor.
    pids = {s["pid"] for s in state["servers"]} | {s["pid"] for s in cluster.state()["servers"] if s["pid"]}
    pids |= set(first_tasks) | set(tasks) | {state["supervisor_pid"]}
    interrupt_and_check_nothing_left(cluster, pids)
    cluster.passed = True


def test_stop_verb_stops_a_small_cluster():
    # Its own prefix, so it may run beside the test above.
    cluster = LocalCluster("test_stop_verb", masters=1, agents=1, prefix="127.0.43")
    cluster.cmd += ["--marathon", "false"]
    try:
        cluster.start()
        cluster.wait_output(r"^tepui local cluster ready in", READY_TIMEOUT, "the 'ready' summary")
        assert cluster.leader() == cluster.masters[0]
        pids = {s["pid"] for s in cluster.state()["servers"]}
        assert len(pids) == 3, cluster.state()
        result = cluster.cli("stop", timeout=STOP_TIMEOUT + 10)
        assert result.returncode == 0, result
        assert "has stopped" in result.stdout, result.stdout
        assert cluster.proc.wait(5) == 0, cluster.output()[-3000:]
        assert not [p for p in pids if proc_alive(p)]
        assert not processes_of(cluster.dir)
        cluster.passed = True
    finally:
        cluster.cleanup(cluster.passed)


def test_cli_errors_name_the_problem(tmp_path):
    result = subprocess.run([TEPUI_BIN, "local-cluster", "--masters", "2", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert "--masters" in result.stderr and "must be odd" in result.stderr, result.stderr

    for verb in (["status"], ["kill-leader"], ["stop"]):
        result = subprocess.run([TEPUI_BIN, "local-cluster", *verb, "--dir", str(tmp_path)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 3, (verb, result)
        assert "no local cluster runs on" in result.stderr, result.stderr
