#!/usr/bin/env python3
"""Master failover benchmark: a real 3-node ZooKeeper ensemble, 3 tepui masters, 2 real agents and
N simulated agents (`tepui-bench sim-agents`), every process on its own loopback address.

For each agent count (default 100, then 1000) a fresh cluster is started, then `--rounds` rounds are
run, each round being one failover of each kind, alternating:

  kill9    SIGKILL of the leader (its ZooKeeper session must expire: --zk_session_timeout=2secs)
  sigterm  SIGTERM of the leader (it withdraws: its znode is deleted before it exits)

and for each failover it measures, from the signal:

  serving       a surviving master answers GET /state with 200 (only the leader does; standbys
                answer 307/503)
  reregistered  that leader's /state lists N+2 agents with `active` true (with the in-memory
                registry a new leader knows only the agents that re-registered with it)

While the agents re-register it also samples the new leader's /health (back to back, own thread)
and /state (the polling above), and reports their max and p99 latency. The killed master is then
restarted as a standby (waits for /health 200, and for it to contend again in ZooKeeper) before the
next round. Every wait polls with a deadline; every process is stopped in `finally`.

Logs (every node's, ZooKeeper's, the simulated agents' with their JSON-lines report) stay in
/tmp/tepui-bench-failover/bench-failover-<count>-<time>/ (--out).

Prints per-round lines, medians (min/max) per kind and agent count, and one final JSON line.

    sudo .venv/bin/python scripts/bench_failover.py [--rounds 10] [--counts 100,1000]
    (or scripts/bench-failover.sh, which builds the release binaries first)

Needs root (the harness in tests/python/harness runs each node under its own uid), Debian's
`zookeeper` package and the repo's venv (`requests`; `kazoo` optional, for the ZooKeeper check).
"""

import argparse
import concurrent.futures
import json
import math
import os
import signal
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "python"))

import requests  # noqa: E402
from harness import Deadline, wait_until  # noqa: E402

KINDS = ("kill9", "sigterm")
DEFAULT_OUT = "/tmp/tepui-bench-failover"
POLL_SERVING = 0.02      # s between rounds of GET /state on the survivors
POLL_STATE = 0.05        # s between GET /state on the new leader while agents re-register
POLL_HEALTH = 0.01       # s between GET /health samples on the new leader
SAMPLE_TIMEOUT = 10.0    # s; a slow answer is a sample, not an error, up to this
SIM_IP_OCTET = 60        # sim agents connect from 127.77.N.60
STEADY_HEALTH_SAMPLES = 20  # baseline /health samples on the leader before each failover
STEADY_STATE_SAMPLES = 5    # baseline /state samples on the leader before each failover


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of values; None if empty."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(s)))
    return s[min(rank, len(s)) - 1]


def r3(x):
    return None if x is None else round(x, 3)


def summary(values):
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": r3(statistics.median(values)), "min": r3(min(values)),
            "max": r3(max(values))}


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------
_local = threading.local()


def session():
    s = getattr(_local, "session", None)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # no proxies for loopback
        _local.session = s
    return s


def timed_get(url, timeout):
    """(status or None, seconds, response or exception). Fresh connection per request, so a sample
    includes accepting the connection (what a new client would see)."""
    t0 = time.monotonic()
    try:
        r = requests.get(url, timeout=timeout, allow_redirects=False,
                         proxies={"http": None, "https": None})
        # Read the whole body inside the timing.
        _ = r.content
        return r.status_code, time.monotonic() - t0, r
    except requests.RequestException as e:
        return None, time.monotonic() - t0, e


def active_agents(state):
    return sum(1 for s in state.get("slaves", []) if s.get("active"))


class HealthSampler(threading.Thread):
    """GET /health on one master back to back (POLL_HEALTH apart) until stopped."""

    def __init__(self, url):
        super().__init__(name="health-sampler", daemon=True)
        self.url = url + "/health"
        self.samples = []
        self.errors = []
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            status, took, r = timed_get(self.url, SAMPLE_TIMEOUT)
            if status == 200:
                self.samples.append(took)
            else:
                self.errors.append(f"{status}: {r!r}"[:200])
            self._stop_event.wait(POLL_HEALTH)

    def stop(self):
        self._stop_event.set()
        self.join(SAMPLE_TIMEOUT + 5)


# ---------------------------------------------------------------------------------------------
# The simulated agents
# ---------------------------------------------------------------------------------------------
class SimAgents:
    def __init__(self, cluster, bench_bin, count, backoff, session_timeout_flag, out_dir):
        from harness.util import ManagedProcess

        self.count = count
        self.ip = cluster.slot.ip(SIM_IP_OCTET)
        self.report_path = os.path.join(out_dir, f"sim-agents-{count}.jsonl")
        self.log_path = os.path.join(out_dir, f"sim-agents-{count}.log")
        if os.path.exists(self.report_path):
            os.unlink(self.report_path)
        argv = [bench_bin, "sim-agents", "--master", cluster.zk_url, "--count", str(count),
                "--ip", self.ip, "--zk_session_timeout", session_timeout_flag,
                "--registration_backoff_factor", backoff, "--report-file", self.report_path]
        self.process = ManagedProcess(f"sim-agents-{count}", lambda: argv, self.log_path, slot=cluster.slot)

    def start(self):
        self.process.start()

    def running(self):
        return self.process.running()

    def stop(self):
        return self.process.stop(grace=10.0)

    def events(self):
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

    def all_registered_after(self, ts, leader_endpoint):
        """The sim's own view: the first `all_registered` event for this leader after wall time ts."""
        for e in self.events():
            if e.get("event") == "all_registered" and e.get("ts", 0) >= ts and e.get("leader") == leader_endpoint:
                return e
        return None


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, count):
        self.args = args
        self.count = count
        self.want = count + 2  # 2 real agents
        self.cluster = None
        self.sim = None
        self.zk_client = None
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="poll")
        self.rounds = []
        self.notes = []

    def note(self, text):
        log(f"  NOTE: {text}")
        self.notes.append(text)

    # -- setup -------------------------------------------------------------------------------
    def start(self):
        from harness import Cluster

        name = f"bench-failover-{self.count}-{time.strftime('%Y%m%d-%H%M%S')}"
        session_timeout = self.args.session_timeout
        out_dir = None
        if self.args.out:
            out_dir = os.path.join(os.path.abspath(self.args.out), name)
            os.makedirs(out_dir, exist_ok=True)
        self.cluster = Cluster(name, masters=3, agents=2, quorum=2, session_timeout=session_timeout,
                               registration_backoff_factor=self.args.backoff, out_dir=out_dir)
        c = self.cluster
        log(f"\n=== {self.count} simulated + 2 real agents; logs in {c.out_dir}")
        t0 = time.monotonic()
        leader = c.start(timeout=self.args.timeout)
        log(f"  ZooKeeper {c.zk.connect_string}, masters {[m.url for m in c.masters]}, "
            f"agents {[a.url for a in c.agents]}; leader {leader.name} after {time.monotonic() - t0:.1f}s")
        try:
            import kazoo  # noqa: F401
            self.zk_client = c.zk.client()
        except ImportError:
            self.note("kazoo is not installed: the check that a restarted master contends again is skipped")
        st_flag = f"{int(round(session_timeout * 1000))}ms"
        self.sim = SimAgents(c, self.args.bench, self.count, self.args.backoff, st_flag, c.out_dir)
        t0 = time.monotonic()
        self.sim.start()
        log(f"  sim-agents: {self.count} agents from {self.sim.ip} (log {self.sim.log_path})")
        leader = self.wait_all_registered(c.leader() or c.wait_leader(self.args.timeout), Deadline(self.args.timeout))
        log(f"  {self.want} agents active on {leader.name} after {time.monotonic() - t0:.1f}s")

    def stop(self):
        errors = []
        if self.sim is not None:
            try:
                code = self.sim.stop()
                if code not in (0, None):
                    self.note(f"sim-agents exited with code {code} (log {self.sim.log_path})")
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if self.zk_client is not None:
            try:
                self.zk_client.stop()
                self.zk_client.close()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if self.cluster is not None:
            self.cluster.stop()
        self.pool.shutdown(wait=False)
        if errors:
            log(f"  errors while stopping: {errors!r}")

    # -- conditions --------------------------------------------------------------------------
    def check_processes(self):
        if self.sim is not None and not self.sim.running():
            raise BenchError(f"sim-agents exited with code {self.sim.process.returncode}:\n{self.sim.process.tail(30)}")
        for a in self.cluster.agents:
            if not a.running():
                raise BenchError(f"agent {a.name} exited with code {a.returncode}:\n{a.tail(30)}")

    def wait_all_registered(self, leader, deadline, state_samples=None):
        """Poll leader's /state until N+2 agents are active; returns the leader."""
        last = None
        while True:
            self.check_processes()
            status, took, r = timed_get(leader.url + "/state", SAMPLE_TIMEOUT)
            if status == 200:
                if state_samples is not None:
                    state_samples.append(took)
                try:
                    n = active_agents(r.json())
                except ValueError as e:
                    n, last = None, f"bad JSON: {e}"
                if n is not None:
                    last = f"{n} active"
                    if n >= self.want:
                        if n > self.want:
                            self.note(f"{leader.name} lists {n} active agents, more than {self.want}")
                        return leader
            else:
                last = f"GET /state answered {status}: {r!r}"[:300]
                if status is not None and state_samples is not None:
                    state_samples.append(took)
            if deadline.expired():
                raise BenchError(f"{leader.name}'s /state did not list {self.want} active agents within "
                                 f"{deadline.seconds:.0f}s (last: {last})")
            time.sleep(min(POLL_STATE, deadline.remaining()))

    def wait_new_leader(self, survivors, deadline):
        """Poll GET /state on every survivor until one answers 200; returns (master, seconds of
        that answer)."""
        last = {}
        while True:
            futures = {m: self.pool.submit(timed_get, m.url + "/state", 2.0) for m in survivors}
            serving = []
            for m, f in futures.items():
                status, took, r = f.result()
                last[m.name] = status if status is not None else type(r).__name__
                if status == 200:
                    serving.append(m)
            if len(serving) > 1:
                self.note(f"more than one master answered /state 200 at once: {[m.name for m in serving]}")
            if serving:
                return serving[0]
            if deadline.expired():
                raise BenchError(f"no surviving master served /state within {deadline.seconds:.0f}s "
                                 f"(last answers: {last})")
            time.sleep(min(POLL_SERVING, deadline.remaining()))

    def contenders(self):
        """Children of the election path that are `json.info_` members (None without kazoo)."""
        if self.zk_client is None:
            return None
        children = self.zk_client.get_children(self.cluster.zk_path)
        return sorted(c for c in children if c.startswith("json.info_"))

    def wait_ready_for_round(self, deadline):
        c = self.cluster
        for m in c.masters:
            if not m.running():
                raise BenchError(f"master {m.name} is not running (exit code {m.returncode}):\n{m.tail(30)}")
        wait_until(lambda: all(m.healthy() for m in c.masters), deadline, "every master to answer /health")
        if self.zk_client is not None:
            wait_until(lambda: len(self.contenders()) == 3, deadline, "3 masters contending in ZooKeeper")
        leader = c.wait_leader(deadline)
        self.wait_all_registered(leader, deadline)
        return leader

    def steady_samples(self, leader):
        """Baseline latencies with every agent registered and nothing happening."""
        health, state = [], []
        for i in range(STEADY_HEALTH_SAMPLES):
            status, took, _ = timed_get(leader.url + "/health", SAMPLE_TIMEOUT)
            if status == 200:
                health.append(took)
            if i % (STEADY_HEALTH_SAMPLES // STEADY_STATE_SAMPLES) == 0:
                status, took, _ = timed_get(leader.url + "/state", SAMPLE_TIMEOUT)
                if status == 200:
                    state.append(took)
            time.sleep(POLL_HEALTH)
        return health, state

    # -- one failover ------------------------------------------------------------------------
    def failover(self, kind, index):
        c = self.cluster
        deadline = Deadline(self.args.timeout)
        old = self.wait_ready_for_round(deadline)
        steady_health, steady_state = self.steady_samples(old)
        survivors = [m for m in c.masters if m is not old]
        sig = signal.SIGKILL if kind == "kill9" else signal.SIGTERM
        kill_ts = time.time()
        t0 = time.monotonic()
        old.process.signal(sig)
        exited = {}

        def watch_exit():
            exited["code"] = old.wait_exit(60)
            exited["at"] = time.monotonic() - t0

        watcher = threading.Thread(target=watch_exit, name="exit-watcher", daemon=True)
        watcher.start()
        deadline = Deadline(self.args.timeout)
        new = self.wait_new_leader(survivors, deadline)
        t_serving = time.monotonic() - t0
        health = HealthSampler(new.url)
        health.start()
        state_samples = []
        try:
            self.wait_all_registered(new, deadline, state_samples)
        finally:
            health.stop()
        t_all = time.monotonic() - t0
        # The old leader's exit.
        watcher.join(65)
        code, t_exit = exited.get("code"), exited.get("at")
        if code is None:
            raise BenchError(f"{old.name} did not exit within 60s of {kind}:\n{old.tail(30)}")
        expected = -9 if kind == "kill9" else 0
        if code != expected:
            self.note(f"round {index} {kind}: {old.name} exited with code {code} (expected {expected}):\n{old.tail(15)}")
        elected = new.elected()
        if elected is not True:
            self.note(f"round {index} {kind}: {new.name} served /state but master/elected is {elected}")
        # The simulated agents' own view (detector change -> all N registered).
        sim_event = None
        sim_deadline = Deadline(10)
        new_endpoint = f"{new.ip}:{new.port}"
        while sim_event is None and not sim_deadline.expired():
            sim_event = self.sim.all_registered_after(kill_ts, new_endpoint)
            if sim_event is None:
                time.sleep(0.05)
        # Restart the killed master as a standby.
        t1 = time.monotonic()
        c.restart(old)
        wait_until(old.healthy, Deadline(self.args.timeout), f"restarted {old.name} to answer /health")
        t_restart = time.monotonic() - t1
        rec = {
            "count": self.count, "kind": kind, "round": index, "old": old.name, "new": new.name,
            "serving_s": r3(t_serving), "reregistered_s": r3(t_all),
            "storm_s": r3(t_all - t_serving), "old_exit_code": code, "old_exit_s": r3(t_exit),
            "sim_change_to_all_s": r3(sim_event.get("seconds_since_change")) if sim_event else None,
            "sim_kill_to_all_s": r3(sim_event["ts"] - kill_ts) if sim_event else None,
            "health_n": len(health.samples), "health_errors": len(health.errors),
            "health_max_ms": r3(max(health.samples) * 1e3) if health.samples else None,
            "health_p99_ms": r3(pct(health.samples, 99) * 1e3) if health.samples else None,
            "state_n": len(state_samples),
            "state_max_ms": r3(max(state_samples) * 1e3) if state_samples else None,
            "state_p99_ms": r3(pct(state_samples, 99) * 1e3) if state_samples else None,
            "restart_s": r3(t_restart),
            "_health": health.samples, "_state": state_samples,
            "_steady_health": steady_health, "_steady_state": steady_state,
        }
        if health.errors:
            self.note(f"round {index} {kind}: {len(health.errors)} /health samples failed, e.g. {health.errors[0]}")
        log(f"  round {index:>2} {kind:<7} {old.name}->{new.name}: serving {t_serving:6.3f}s, "
            f"all {self.want} re-registered {t_all:6.3f}s (sim: change->all "
            f"{rec['sim_change_to_all_s']}s); /health max {rec['health_max_ms']}ms "
            f"(n={rec['health_n']}), /state max {rec['state_max_ms']}ms (n={rec['state_n']}); "
            f"old exit {code} at {t_exit:.3f}s; restart {t_restart:.2f}s")
        self.rounds.append(rec)

    def run(self):
        for i in range(1, self.args.rounds + 1):
            for kind in self.args.kinds:
                self.failover(kind, i)

    # -- report ------------------------------------------------------------------------------
    def results(self):
        out = {"count": self.count, "agents_total": self.want, "kinds": {}, "notes": self.notes}
        for kind in self.args.kinds:
            rs = [r for r in self.rounds if r["kind"] == kind]
            health = [x for r in rs for x in r["_health"]]
            state = [x for r in rs for x in r["_state"]]
            out["kinds"][kind] = {
                "rounds": len(rs),
                "serving_s": summary([r["serving_s"] for r in rs]),
                "reregistered_s": summary([r["reregistered_s"] for r in rs]),
                "storm_s": summary([r["storm_s"] for r in rs]),
                "sim_change_to_all_s": summary([r["sim_change_to_all_s"] for r in rs
                                                if r["sim_change_to_all_s"] is not None]),
                "health": latency(health),
                "state": latency(state),
                "steady_health": latency([x for r in rs for x in r["_steady_health"]]),
                "steady_state": latency([x for r in rs for x in r["_steady_state"]]),
                "restart_s": summary([r["restart_s"] for r in rs]),
                "per_round": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rs],
            }
        return out


def latency(samples):
    """n, median, p99 and max in ms of latency samples in seconds."""
    if not samples:
        return {"n": 0, "median_ms": None, "p99_ms": None, "max_ms": None}
    return {"n": len(samples), "median_ms": r3(statistics.median(samples) * 1e3),
            "p99_ms": r3(pct(samples, 99) * 1e3), "max_ms": r3(max(samples) * 1e3)}


def print_summary(all_results):
    log("\n================ tepui failover benchmark ================")
    log("seconds from the signal to the leader; medians over the rounds (min..max)")
    fmt = lambda s: "-" if s["median"] is None else f"{s['median']:7.3f} ({s['min']:.3f}..{s['max']:.3f})"  # noqa: E731
    for res in all_results:
        if "error" in res and not res.get("kinds"):
            log(f"{res['count']} simulated + 2 real agents: FAILED: {res['error']}")
            continue
        log(f"{res['count']} simulated + 2 real agents:")
        for kind, k in res.get("kinds", {}).items():
            log(f"  {kind:<7} (n={k['rounds']}): new leader serving /state {fmt(k['serving_s'])}; "
                f"all {res['agents_total']} re-registered {fmt(k['reregistered_s'])}")
            log(f"  {'':<7}  sim view (detector change -> all {res['count']} sim agents) "
                f"{fmt(k['sim_change_to_all_s'])}; restart of the old leader to /health {fmt(k['restart_s'])}")
            for label, h, st in (("during re-registration", k["health"], k["state"]),
                                 ("steady, before the kill", k["steady_health"], k["steady_state"])):
                log(f"  {'':<7}  {label}: /health median {h['median_ms']} p99 {h['p99_ms']} max "
                    f"{h['max_ms']} ms (n={h['n']}); /state median {st['median_ms']} p99 {st['p99_ms']} "
                    f"max {st['max_ms']} ms (n={st['n']})")
        if res.get("error"):
            log(f"  FAILED after {sum(k['rounds'] for k in res['kinds'].values())} failovers: {res['error']}")
        for n in res.get("notes", []):
            log(f"  note: {n.splitlines()[0]}")
    log("===========================================================")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10, help="failovers of each kind per agent count (default 10)")
    p.add_argument("--counts", default="100,1000", help="simulated agent counts, comma-separated (default 100,1000)")
    p.add_argument("--kinds", default=",".join(KINDS), help="kill9,sigterm (default both, alternating)")
    p.add_argument("--tepui", default=os.path.join(REPO, "target", "release", "tepui"))
    p.add_argument("--bench", default=os.path.join(REPO, "target", "release", "tepui-bench"))
    p.add_argument("--backoff", default="1secs", help="--registration_backoff_factor of every agent (default 1secs)")
    p.add_argument("--session-timeout", type=float, default=2.0, help="ZooKeeper session timeout, s (default 2)")
    p.add_argument("--timeout", type=float, default=120.0, help="deadline of each wait, s (default 120)")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"parent directory of the logs and work dirs (default {DEFAULT_OUT}; not .test-output/, "
                        "which scripts/test.sh empties when it starts)")
    p.add_argument("--json-file", default=None, help="also write the final JSON object to this file")
    args = p.parse_args(argv)
    args.counts = [int(x) for x in args.counts.split(",") if x.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if any(k not in KINDS for k in args.kinds) or not args.kinds:
        p.error(f"--kinds must be a subset of {','.join(KINDS)}")
    if args.rounds < 1 or not args.counts or any(n < 1 for n in args.counts):
        p.error("--rounds and every count must be at least 1")
    for path in (args.tepui, args.bench):
        if not os.access(path, os.X_OK):
            p.error(f"{path} is missing: cargo build --release -p tepui -p bench")
    if os.geteuid() != 0:
        p.error("needs root: the harness runs every node under its own uid")
    os.environ["TEPUI_BIN"] = args.tepui

    # A signal becomes KeyboardInterrupt so every `finally` runs (SIGINT too: a shell starting this
    # in the background would otherwise leave it ignored).
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started = time.time()
    load_before = os.getloadavg()[0]
    log(f"bench_failover: {os.cpu_count()} cpus, load {load_before:.2f}; tepui {args.tepui}; "
        f"counts {args.counts}, {args.rounds} rounds of {args.kinds}; agents' backoff factor {args.backoff}, "
        f"zk session timeout {args.session_timeout}s")
    all_results = []
    interrupted_by = None
    for count in args.counts:
        bench = Bench(args, count)
        res = None
        try:
            bench.start()
            bench.run()
        except KeyboardInterrupt as e:
            interrupted_by = str(e) or "Ctrl-C"
            res = bench.results()
            res["error"] = f"interrupted ({interrupted_by})"
        except (BenchError, AssertionError) as e:
            res = bench.results()
            res["error"] = str(e).splitlines()[0]
            log(f"  FAILED: {e}")
            if bench.cluster is not None:
                try:
                    log(bench.cluster.describe())
                except Exception:  # noqa: BLE001
                    pass
                for m in bench.cluster.masters:
                    log(f"  --- {m.name} log tail ({m.log_path}):\n{m.tail(25)}")
                if bench.sim is not None:
                    log(f"  --- sim-agents log tail ({bench.sim.log_path}):\n{bench.sim.process.tail(25)}")
        finally:
            try:
                bench.stop()
            except KeyboardInterrupt:
                bench.stop()
        if res is None:
            res = bench.results()
        res["logs"] = bench.cluster.out_dir if bench.cluster else None
        all_results.append(res)
        if interrupted_by:
            break

    print_summary(all_results)
    final = {
        "bench": "failover", "cpus": os.cpu_count(), "load_1min_start": r3(load_before),
        "load_1min_end": r3(os.getloadavg()[0]), "rounds": args.rounds, "backoff_factor": args.backoff,
        "zk_session_timeout_s": args.session_timeout, "duration_s": r3(time.time() - started),
        "results": all_results,
    }
    if args.json_file:
        with open(args.json_file, "w") as f:
            f.write(json.dumps(final, indent=1) + "\n")
    # The last line: every figure but the per-round details and the notes' text.
    brief = dict(final)
    brief["results"] = [
        {**{k: v for k, v in res.items() if k not in ("kinds", "notes")}, "notes": len(res.get("notes", [])),
         "kinds": {kind: {k: v for k, v in kr.items() if k != "per_round"} for kind, kr in res.get("kinds", {}).items()}}
        for res in all_results
    ]
    line = json.dumps(brief, separators=(",", ":"))
    log(line)
    failed = interrupted_by or any(r.get("error") for r in all_results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
