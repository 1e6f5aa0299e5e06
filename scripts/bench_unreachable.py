#!/usr/bin/env python3
"""How fast the leader declares a silently partitioned agent unreachable (mesos-ha.md 3.4).

A real 3-node ZooKeeper ensemble, 3 tepui masters (`--quorum=2`, `--registry=replicated_log` by
default), 2 agents, 2 s ZooKeeper sessions, and the masters run with

    --agent_ping_timeout=1secs --max_agent_ping_timeouts=3 --agent_reregister_timeout=5secs

(change with --ping-timeout / --max-pings). A PARTITION_AWARE framework keeps one `sleep` task on
agent a1. Each trial then:

  1. cuts a1 from every master (harness `isolate_from_masters`: every packet between a1's uid and
     the master ports dropped, both ways; ZooKeeper still reachable);
  2. measures, from the cut, the scheduler receiving TASK_UNREACHABLE for the task
     (`cut_to_unreachable_s`), and the master's own `unreachable_time` in that status minus the
     cut's wall clock (`cut_to_marked_s`);
  3. heals and measures the scheduler receiving the task's TASK_RUNNING with
     REASON_AGENT_REREGISTERED (`heal_to_back_s`).

Expected cut -> unreachable: the first ping that goes unanswered (0..1 ping interval after the cut)
plus max_agent_ping_timeouts intervals, plus a registry write: 3..4 s with the defaults above.

Prints one line per trial, the median (min..max) of each figure, and one final JSON line; appends
every trial and the medians to <repo>/.test-output/ha-timings.txt (TEPUI_TEST_OUTPUT overrides).
Every wait polls with a deadline; the cluster is stopped in `finally`.

    sudo .venv/bin/python scripts/bench_unreachable.py [--trials 7] [--registry in_memory]

Needs root (each node runs under its own uid; iptables), Debian's `zookeeper` package, the repo's
venv and a built tepui (target/debug/tepui, or TEPUI_BIN).
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "python"))

from harness.cluster import Cluster  # noqa: E402
from harness.replog import LOG_START_DEADLINE, wait_log_metrics  # noqa: E402
from harness.util import record_timing, wait_until  # noqa: E402
from harness.workload import SleepFramework  # noqa: E402

NAME = "bench_unreachable"


def log(msg):
    print(msg, flush=True)


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(xs), "median": round(statistics.median(xs), 3), "min": round(min(xs), 3),
            "max": round(max(xs), 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=7, help="partitions to measure (default 7; at least 5)")
    p.add_argument("--ping-timeout", type=int, default=1, help="--agent_ping_timeout in seconds (default 1)")
    p.add_argument("--max-pings", type=int, default=3, help="--max_agent_ping_timeouts (default 3)")
    p.add_argument("--registry", default="replicated_log", choices=("replicated_log", "in_memory"))
    p.add_argument("--deadline", type=float, default=30.0, help="deadline of each wait, s (default 30)")
    p.add_argument("--json-file", default=None, help="also write the final JSON object to this file")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error("--trials must be at least 1")
    if os.geteuid() != 0:
        p.error("needs root: the harness runs every node under its own uid and cuts links with iptables")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    flags = [f"--agent_ping_timeout={args.ping_timeout}secs", f"--max_agent_ping_timeouts={args.max_pings}",
             "--agent_reregister_timeout=5secs"]
    expected = (args.max_pings * args.ping_timeout, (args.max_pings + 1) * args.ping_timeout)
    log(f"{NAME}: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; registry {args.registry}; "
        f"masters {' '.join(flags)}; {args.trials} trials; expected cut -> unreachable "
        f"{expected[0]}..{expected[1]} s + a registry write")
    trials, error = [], None
    c = fw = None
    try:
        c = Cluster(NAME, masters=3, agents=2, quorum=2, session_timeout=2.0, registry=args.registry,
                    master_args=flags)
        leader = c.start(timeout=90)
        if args.registry == "replicated_log":
            wait_log_metrics(c.masters, LOG_START_DEADLINE, recovered=1, ensemble_size=3)
        agent, other = c.agents
        fw = SleepFramework(c, "bench-unreachable", capabilities=("PARTITION_AWARE",))
        fw.launch(master=leader, on_agent=agent)
        fw.quiesce(leader)
        aid, other_id = agent.agent_id, other.agent_id
        log(f"leader {leader.name}; task {fw.task_id} on {agent.name} ({aid}); logs in {c.out_dir}")
        for i in range(1, args.trials + 1):
            wait_until(lambda: agent.registered() and aid in {s["id"] for s in leader.state()["slaves"]
                                                               if s.get("active")},
                       args.deadline, f"{agent.name} active on {leader.name} before trial {i}")
            wall0 = time.time()
            t0 = time.monotonic()
            c.isolate_from_masters(agent)
            status = fw.stream.wait_for_update(fw.task_id, lambda s: s["state"] != "TASK_RUNNING",
                                               args.deadline, f"TASK_UNREACHABLE (trial {i})")
            t_unreachable = time.monotonic() - t0
            if status["state"] != "TASK_UNREACHABLE":
                raise AssertionError(f"trial {i}: expected TASK_UNREACHABLE, got {json.dumps(status)}")
            ns = (status.get("unreachable_time") or {}).get("nanoseconds")
            t_marked = ns / 1e9 - wall0 if ns is not None else None
            t1 = time.monotonic()
            c.heal(agent)
            fw.stream.wait_for_update(fw.task_id, lambda s: s.get("reason") == "REASON_AGENT_REREGISTERED",
                                      args.deadline, f"REASON_AGENT_REREGISTERED (trial {i})")
            t_back = time.monotonic() - t1
            spurious = [e for e in fw.stream.events if e["type"] == "FAILURE"
                        and (e.get("failure") or {}).get("agent_id", {}).get("value") == other_id]
            if spurious:
                raise AssertionError(f"the agent that was never cut ({other.name}) was declared lost: {spurious}")
            trials.append({"trial": i, "cut_to_unreachable_s": round(t_unreachable, 3),
                           "cut_to_marked_s": round(t_marked, 3) if t_marked is not None else None,
                           "heal_to_back_s": round(t_back, 3)})
            marked = "none" if t_marked is None else f"{t_marked:+.3f}s after the cut"
            log(f"  trial {i}: cut -> TASK_UNREACHABLE {t_unreachable:.3f}s (master's unreachable_time "
                f"{marked}); heal -> REASON_AGENT_REREGISTERED {t_back:.3f}s")
            record_timing(NAME, f"trial {i}: agent cut -> TASK_UNREACHABLE", t_unreachable)
    except KeyboardInterrupt as e:
        error = f"interrupted ({e})"
    except AssertionError as e:
        error = str(e).splitlines()[0]
        log(f"FAILED: {e}")
        if c is not None:
            log(c.describe())
            for n in c.masters + c.agents:
                log(f"--- {n.name} log tail ({n.log_path}):\n{n.tail(15)}")
    finally:
        if fw is not None:
            fw.teardown()
        if c is not None:
            c.stop()

    res = {k: summary([t[k] for t in trials]) for k in ("cut_to_unreachable_s", "cut_to_marked_s", "heal_to_back_s")}
    log(f"\n==== {NAME}: --agent_ping_timeout={args.ping_timeout}secs --max_agent_ping_timeouts={args.max_pings}, "
        f"{len(trials)} trials ====")
    for k, s in res.items():
        if s["median"] is not None:
            log(f"  {k:<22} median {s['median']:.3f}  ({s['min']:.3f}..{s['max']:.3f})")
    if res["cut_to_unreachable_s"]["median"] is not None:
        med = res["cut_to_unreachable_s"]
        record_timing(NAME, f"median of {med['n']}: agent cut -> TASK_UNREACHABLE "
                      f"(--agent_ping_timeout={args.ping_timeout}secs --max_agent_ping_timeouts={args.max_pings})",
                      med["median"])
        record_timing(NAME, f"median of {res['heal_to_back_s']['n']}: heal -> REASON_AGENT_REREGISTERED",
                      res["heal_to_back_s"]["median"])
    final = {"bench": "unreachable", "cpus": os.cpu_count(), "registry": args.registry,
             "agent_ping_timeout_s": args.ping_timeout, "max_agent_ping_timeouts": args.max_pings,
             "expected_s": list(expected), "trials": trials, "summary": res, "error": error}
    if args.json_file:
        with open(args.json_file, "w") as f:
            f.write(json.dumps(final, indent=1) + "\n")
    log(json.dumps(final, separators=(",", ":")))
    if error:
        return 1
    if len(trials) < 5:
        log(f"note: only {len(trials)} trials; the figure wants at least 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
