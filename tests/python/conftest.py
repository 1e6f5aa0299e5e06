"""Shared fixtures: run `tepui dev` (a master and an agent in one process tree) per test.

Environment:
  TEPUI_BIN          path of the tepui binary (default: <repo>/target/debug/tepui)
  TEPUI_TEST_OUTPUT  where artifacts go (default: <repo>/.test-output); each test that starts
                     `tepui dev` gets <output>/<test-name>/dev.log with the process's output and
                     <output>/<test-name>/work_dir-*/ as its work_dir (sandboxes).
"""

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEPUI_BIN = os.environ.get("TEPUI_BIN") or os.path.join(REPO, "target", "debug", "tepui")
OUTPUT_ROOT = os.environ.get("TEPUI_TEST_OUTPUT") or os.path.join(REPO, ".test-output")

MASTER_PORT = 5050
AGENT_PORT = 5051
MARATHON_PORT = 8080
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 20.0


def wait_until(predicate, timeout, message, interval=0.1):
    """Poll predicate() until it returns a truthy value, which is returned; fail after timeout.

    Exceptions raised by predicate count as "not yet" (the last one is reported on timeout).
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            last_error = None
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout}s: {message}{detail}")
        time.sleep(interval)


def get_json(url, params=None, timeout=5.0):
    resp = requests.get(url, params=params, timeout=timeout)
    assert resp.status_code == 200, f"GET {url} answered {resp.status_code}: {resp.text[:500]!r}"
    return resp.json()


# ---------------------------------------------------------------------------------------------
# Loopback address allocation: a distinct 127.0.0.X per test, also across xdist workers and
# other people's runs on the same machine (checked by binding both ports before use).
# ---------------------------------------------------------------------------------------------
_counter = itertools.count()


def _ports_free(ip, ports):
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


def allocate_ip():
    start = (os.getpid() * 37) % 240
    for _ in range(240):
        x = 10 + (start + next(_counter) * 7) % 240  # 127.0.0.10 .. 127.0.0.249
        ip = f"127.0.0.{x}"
        if _ports_free(ip, (MASTER_PORT, AGENT_PORT, MARATHON_PORT)):
            return ip
    raise RuntimeError("no free 127.0.0.X address with free ports 5050/5051")


def artifact_dir(name):
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]
    path = os.path.join(OUTPUT_ROOT, safe)
    os.makedirs(path, exist_ok=True)
    return path


def _log_tail(path, lines=60):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DevCluster:
    """A running `tepui dev`: one master and one agent on one loopback address."""

    def __init__(self, name, marathon=False, env=None):
        assert os.path.isfile(TEPUI_BIN) and os.access(TEPUI_BIN, os.X_OK), (
            f"tepui binary not found at {TEPUI_BIN} (build with `cargo build --bins` or set TEPUI_BIN)"
        )
        self.name = name
        self.ip = allocate_ip()
        self.master_port = MASTER_PORT
        self.agent_port = AGENT_PORT
        self.master_url = f"http://{self.ip}:{self.master_port}"
        self.agent_url = f"http://{self.ip}:{self.agent_port}"
        self.out_dir = artifact_dir(name)
        self.log_path = os.path.join(self.out_dir, "dev.log")
        # A fresh work_dir beside the log, kept as an artifact (sandboxes hold tasks' stdout/stderr).
        self.work_dir = tempfile.mkdtemp(prefix="work_dir-", dir=self.out_dir)
        self.cmd = [
            TEPUI_BIN, "dev",
            "--ip", self.ip,
            "--port", str(self.master_port),
            "--agent_port", str(self.agent_port),
            "--work_dir", self.work_dir,
            # Marathon only where a test asks for it (`dev_marathon`): other suites count frameworks.
            "--marathon_port", str(MARATHON_PORT if marathon else 0),
        ]
        self.marathon_url = f"http://{self.ip}:{MARATHON_PORT}" if marathon else None
        self._log = open(self.log_path, "wb")
        self._log.write(("$ " + " ".join(self.cmd) + "\n").encode())
        self._log.flush()
        env = dict(os.environ, RUST_BACKTRACE="1", **(env or {}))
        # Own process group, so that teardown can find (and clean up) anything left behind.
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
        self.pgid = self.proc.pid
        self.exit_code = None
        self._stopped = False

    # -- readiness --------------------------------------------------------------------------
    def assert_running(self):
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(
                f"tepui dev exited with code {rc}; log {self.log_path}:\n{_log_tail(self.log_path)}"
            )

    def master_state(self):
        return get_json(self.master_url + "/state")

    def agent_state(self):
        return get_json(self.agent_url + "/state")

    def active_agents(self):
        return [s for s in self.master_state().get("slaves", []) if s.get("active")]

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        def ready():
            self.assert_running()
            return len(self.active_agents()) == 1

        try:
            wait_until(ready, timeout, f"master {self.master_url}/state lists one active agent")
        except AssertionError as e:
            raise AssertionError(f"{e}\nlog {self.log_path}:\n{_log_tail(self.log_path)}") from None
        self.agent_id = self.active_agents()[0]["id"]

    def log_text(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    # -- shutdown ---------------------------------------------------------------------------
    def interrupt(self, timeout=SHUTDOWN_TIMEOUT):
        """SIGINT (Ctrl-C) and wait for exit; return True if it exited in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
        self.exit_code = self.proc.returncode
        return True

    def stop(self):
        """Stop as a user would (Ctrl-C); fail if it hangs or leaves processes behind."""
        problems = []
        if not self.interrupt():
            problems.append(f"did not exit within {SHUTDOWN_TIMEOUT}s of SIGINT; killed it")
            os.killpg(self.pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        try:
            wait_until(lambda: not _group_alive(self.pgid), 5,
                       "processes of tepui dev's process group to exit")
        except AssertionError:
            problems.append("left processes behind in its process group after exiting; killed them")
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        if problems:
            raise AssertionError(
                "tepui dev " + "; ".join(problems) + f"\nlog {self.log_path}:\n{_log_tail(self.log_path)}"
            )
        self._stopped = True

    def kill(self):
        """Last-resort cleanup (no assertions)."""
        if self._stopped:
            return
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()


def _start_dev(name, marathon=False, env=None):
    """A `tepui dev`, ready; `env`: extra environment for it."""
    cluster = DevCluster(name, marathon=marathon, env=env)
    try:
        cluster.wait_ready()
    except BaseException:
        cluster.kill()
        raise
    return cluster


@pytest.fixture
def dev(request):
    """A fresh `tepui dev` for one test; stopped with SIGINT at teardown (must exit cleanly)."""
    cluster = _start_dev(request.node.nodeid)
    yield cluster
    try:
        cluster.stop()
    finally:
        cluster.kill()  # no-op once stopped


@contextlib.contextmanager
def running_dev(name, marathon=False, env=None):
    """A `tepui dev` (with Marathon answering `/ping` when `marathon`), stopped with SIGINT on exit
    (killed if that fails); `env`: extra environment for it."""
    cluster = _start_dev(name, marathon=marathon, env=env)
    try:
        if marathon:
            wait_until(lambda: _pings(cluster.marathon_url), STARTUP_TIMEOUT, f"{cluster.marathon_url}/ping")
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            cluster.kill()


@pytest.fixture
def dev_marathon(request):
    """A fresh `tepui dev` with its Marathon on MARATHON_PORT (`dev.marathon_url`), ready to serve."""
    with running_dev(request.node.nodeid, marathon=True) as cluster:
        yield cluster


def _pings(url):
    try:
        return requests.get(url + "/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def dev_module(request):
    """One `tepui dev` shared by the tests of a module."""
    cluster = _start_dev(request.node.nodeid + "__module")
    yield cluster
    try:
        cluster.stop()
    finally:
        cluster.kill()  # no-op once stopped
