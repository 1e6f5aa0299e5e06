"""Registration load for the replicated-log suites: `tepui-bench sim-agents`, and witnesses.

    sim = SimAgents(cluster, count=200, octet=60).start()   # target/debug/tepui-bench sim-agents
    sim.wait_event(lambda e: e["event"] == "all_registered", 30, "all 200 registered")
    sim.stop()                                               # SIGTERM; exit code 0 expected

    w = RegistrationWitnesses(cluster, octet=61, threads=6).start()
    ... faults ...
    w.stop(); w.acked   # {agent id: Ack} for every REGISTERED an agent actually received

sim-agents' report file (crates/bench/src/sim_agents/report.rs) has leader changes, `all_registered`,
progress and `stop` lines with counts, but no agent ids; and each simulated agent REREGISTERs with
its id after every leader change, which re-admits an id the new leader's registry had lost (a
REREGISTER of an unknown agent is admitted again, master/src/http/agent_link.rs). So the ids that
were acknowledged come from the witnesses: agents speaking the same wire protocol (POST
/internal/v1/agent, REGISTER, RecordIO stream) that each register once, record the id of the
REGISTERED message they received, close their stream and never come back. An id of theirs that is
missing from a later leader's registry was lost by the log, not papered over by a reregistration.
"""

import http.client
import json
import os
import random
import signal
import sys
import threading
import time

from .util import ManagedProcess, tepui_bin, wait_until

_TESTS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from mesos_http import RecordIODecoder  # noqa: E402

AGENT_PATH = "/internal/v1/agent"
PROTOCOL_VERSION = 1


def bench_bin():
    return os.environ.get("TEPUI_BENCH_BIN") or os.path.join(os.path.dirname(tepui_bin()), "tepui-bench")


class SimAgents:
    """`tepui-bench sim-agents --master <cluster zk> --count N --ip 127.77.S.<octet>` as a process
    of ours (root), its output in <artifacts>/<name>.log, its report in <artifacts>/<name>.jsonl."""

    def __init__(self, cluster, count, octet=60, name="sim-agents", backoff="100ms", extra_args=()):
        self.cluster = cluster
        self.count = count
        self.ip = cluster.slot.ip(octet)
        self.name = name
        self.report_path = os.path.join(cluster.out_dir, f"{name}.jsonl")
        self.log_path = os.path.join(cluster.out_dir, f"{name}.log")
        path = bench_bin()
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise RuntimeError(f"tepui-bench not found at {path} (cargo build --bins, or set TEPUI_BENCH_BIN)")
        self.argv = [
            path, "sim-agents", "--master", cluster.zk_url, "--count", str(count), "--ip", self.ip,
            "--zk_session_timeout", cluster.session_timeout_flag, "--registration_backoff_factor", backoff,
            "--report-file", self.report_path, "--progress-interval", "1", *extra_args,
        ]
        self.process = ManagedProcess(name, lambda: self.argv, self.log_path, slot=cluster.slot)

    def start(self):
        try:
            os.unlink(self.report_path)
        except OSError:
            pass
        self.process.start()
        return self

    def running(self):
        return self.process.running()

    def events(self):
        """Every report line so far, parsed (a torn last line is skipped)."""
        out = []
        try:
            with open(self.report_path) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def wait_event(self, predicate, timeout, message):
        def find():
            if not self.running():
                raise AssertionError(f"sim-agents exited with {self.process.returncode}:\n{self.process.tail(20)}")
            return next((e for e in reversed(self.events()) if predicate(e)), None)

        try:
            return wait_until(find, timeout, message, interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast report lines: {self.events()[-5:]}\nlog tail:\n{self.process.tail(15)}") from None

    def stop(self, timeout=15):
        """SIGTERM; returns the exit code (0 = stopped cleanly)."""
        self.process.signal(signal.SIGTERM)
        rc = self.process.wait_exit(timeout)
        if rc is None:
            self.process.stop(grace=0.1)
        return rc


class Ack:
    __slots__ = ("agent_id", "hostname", "master_id", "via", "sent", "acked")

    def __init__(self, agent_id, hostname, master_id, via, sent, acked):
        self.agent_id, self.hostname, self.master_id = agent_id, hostname, master_id
        self.via, self.sent, self.acked = via, sent, acked

    def __repr__(self):
        return f"<Ack {self.agent_id} {self.hostname} by master {self.master_id} at t={self.acked:.3f}>"


class RegistrationWitnesses:
    """`threads` threads, each registering one new agent after the other (hostname
    `<prefix>-<k>`, connections from 127.77.S.<octet>) through whatever master leads, until stop()
    or `limit` agents were acknowledged. An agent whose attempt failed (503, reset, leader gone)
    tries again with a new REGISTER; once a REGISTERED arrives its id is recorded in `acked` and
    the agent goes away for good (stream closed, no reregistration)."""

    def __init__(self, cluster, octet=61, threads=6, prefix="witness", limit=None, read_timeout=15.0):
        self.cluster = cluster
        self.ip = cluster.slot.ip(octet)
        self.threads = threads
        self.prefix = prefix
        self.limit = limit
        self.read_timeout = read_timeout
        self.acked = {}  # agent id -> Ack
        self.attempts = 0
        self.failures = {}  # kind -> count
        self.errors = []  # unexpected answers (kept for failure messages)
        self.t0 = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._leader = None  # (ip, port) cached
        self._leader_at = 0.0
        self._workers = []

    # -- control ------------------------------------------------------------------------------------
    def start(self):
        self.t0 = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, name=f"{self.prefix}-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self, timeout=20):
        self._stop.set()
        for t in self._workers:
            t.join(timeout)
        alive = [t.name for t in self._workers if t.is_alive()]
        assert not alive, f"witness threads still running after {timeout}s: {alive}"
        return self

    def count(self):
        with self._lock:
            return len(self.acked)

    def acked_by(self, master_id):
        with self._lock:
            return [a for a in self.acked.values() if a.master_id == master_id]

    def wait_acked(self, n, timeout, master_id=None):
        """Wait until at least n acknowledgements (by that master, if given)."""
        def enough():
            got = len(self.acked_by(master_id)) if master_id else self.count()
            return got >= n

        wait_until(enough, timeout, f"{n} witness registrations acknowledged"
                   f"{f' by master {master_id}' if master_id else ''} (have {self.count()}; "
                   f"failures {self.failures}; last errors {self.errors[-3:]})", interval=0.05)

    def summary(self):
        with self._lock:
            return (f"{len(self.acked)} acknowledged of {self._next} agents, {self.attempts} attempts, "
                    f"failures {dict(self.failures)}")

    # -- internals ----------------------------------------------------------------------------------
    def _fail(self, kind, detail=None):
        with self._lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1
            if detail is not None:
                self.errors.append(detail)
                del self.errors[:-20]

    def _leader_address(self, refresh=False):
        with self._lock:
            if self._leader is not None and not refresh:
                return self._leader
            if refresh and time.monotonic() - self._leader_at < 0.05 and self._leader is not None:
                return self._leader
        try:
            leader = self.cluster.leader()
        except Exception:  # noqa: BLE001 - split brain etc. is another test's business; retry
            leader = None
        with self._lock:
            self._leader = (leader.ip, leader.port) if leader is not None else None
            self._leader_at = time.monotonic()
            return self._leader

    def _claim(self):
        with self._lock:
            if self.limit is not None and self._next >= self.limit:
                return None
            k = self._next
            self._next += 1
            return k

    def _run(self):
        rng = random.Random(os.getpid() ^ threading.get_ident())
        while not self._stop.is_set():
            k = self._claim()
            if k is None:
                return
            hostname = f"{self.prefix}-{k}"
            while not self._stop.is_set():
                if self._register(hostname, k):
                    break
                self._stop.wait(0.03 + 0.05 * rng.random())

    def _register(self, hostname, k):
        target = self._leader_address()
        if target is None:
            self._leader_address(refresh=True)
            self._fail("no leader")
            return False
        body = json.dumps({
            "type": "REGISTER",
            "protocol_version": PROTOCOL_VERSION,
            "agent_info": {"hostname": hostname, "port": 30000 + k % 30000, "resources": [], "attributes": []},
            "endpoint": f"{self.ip}:{30000 + k % 30000}",
            "version": "1.11.0",
        })
        for _hop in range(3):
            with self._lock:
                self.attempts += 1
            sent = time.monotonic() - self.t0
            conn = http.client.HTTPConnection(target[0], target[1], timeout=self.read_timeout,
                                              source_address=(self.ip, 0))
            try:
                conn.request("POST", AGENT_PATH, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                if resp.status == 307:
                    loc = resp.getheader("Location") or ""
                    hostport = loc.split("//", 1)[-1].split("/", 1)[0]
                    host, _, port = hostport.rpartition(":")
                    if not host or not port.isdigit():
                        self._fail("bad redirect", f"307 Location {loc!r}")
                        return False
                    target = (host, int(port))
                    continue
                if resp.status != 200:
                    text = resp.read(300).decode("utf-8", "replace")
                    self._fail(f"status {resp.status}", f"{target}: {resp.status} {text!r}")
                    if resp.status == 503:
                        self._leader_address(refresh=True)
                    return False
                decoder = RecordIODecoder()
                while True:
                    data = resp.read1(65536)
                    if not data:
                        self._fail("stream ended before REGISTERED")
                        return False
                    for record in decoder.feed(data):
                        msg = json.loads(record.decode("utf-8"))
                        if msg.get("type") == "REGISTERED":
                            agent_id = msg["agent_id"]["value"] if isinstance(msg["agent_id"], dict) else msg["agent_id"]
                            master_id = (msg.get("master_info") or {}).get("id")
                            ack = Ack(agent_id, hostname, master_id, f"{target[0]}:{target[1]}", sent,
                                      time.monotonic() - self.t0)
                            with self._lock:
                                self.acked[agent_id] = ack
                            return True
                        if msg.get("type") == "SHUTDOWN":
                            self._fail("SHUTDOWN", f"{target}: {msg}")
                            return False
            except (OSError, http.client.HTTPException) as e:
                self._fail(type(e).__name__)
                self._leader_address(refresh=True)
                return False
            finally:
                conn.close()
        self._fail("too many redirects")
        return False
