#!/usr/bin/env python3
"""Marathon benchmark (issue 6 figures) on real processes: a 3-node ZooKeeper ensemble, 3 tepui
masters (--quorum=2), 3 agents and 2 `tepui marathon` instances, each on its own loopback address.

Measures, printing each figure and one final JSON line:

  mass        POST one app with --instances `sleep 600` instances (default 1,000) over the 3 agents:
              seconds until /v2/apps shows all TASK_RUNNING, and tasks/s, beside the machine's
              sequential `sh -c true` spawn rate measured in the same run
  latency     --apps one-instance apps POSTed one after the other (default 100): POST -> the
              app's task TASK_RUNNING (polled every 5 ms), p50 / p99
  list        GET /v2/apps?embed=apps.tasks while the mass app's tasks run: p50 / p99 / max over
              --gets requests (default 200)
  failover    with --stored apps stored (default 1,000, 0 instances each, POSTed in a burst):
              kill -9 of the Marathon leader -> the other instance answers GET /v2/apps with 200
              and every stored app

    sudo .venv/bin/python scripts/bench_marathon.py [--instances 1000] [--apps 100] [--stored 1000]

Needs root (the harness runs each node under its own uid), Debian's `zookeeper` package and the
repo's venv. Use release binaries (TEPUI_BIN=target/release/tepui) for figures worth quoting.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "python"))

import requests  # noqa: E402
from harness import Cluster, wait_until  # noqa: E402
from harness.marathon import add_marathons, wait_marathon_leader  # noqa: E402

SMALL = {"cpus": 0.001, "mem": 1, "disk": 0}


def spawn_rate(count=500):
    t0 = time.monotonic()
    for _ in range(count):
        subprocess.run(["sh", "-c", "true"], check=True)
    return count / (time.monotonic() - t0)


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def running_count(url, app_id):
    r = requests.get(f"{url}/v2/apps/{app_id}", timeout=30)
    if r.status_code != 200:
        return 0
    return sum(1 for t in r.json()["app"]["tasks"] if t["state"] == "TASK_RUNNING")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--stored", type=int, default=1000)
    args = parser.parse_args()
    figures = {}
    per_agent = max(1, args.instances // 3 + 10)
    cluster = Cluster("bench-marathon", masters=3, agents=3,
                      agent_resources=f"cpus:{per_agent * SMALL['cpus'] * 2 + 4};mem:{per_agent * 2 + 2048};"
                                      "disk:4096;ports:[31000-32000]")
    try:
        cluster.start()
        marathons = add_marathons(cluster, 2)
        leader = wait_marathon_leader(marathons, 60)
        url = leader.url
        print(f"marathon leader {leader.address}", flush=True)

        figures["sh_c_true_per_s"] = round(spawn_rate(), 1)
        print(f"sequential spawn+wait of sh -c true: {figures['sh_c_true_per_s']}/s", flush=True)

        # mass launch
        t0 = time.monotonic()
        r = requests.post(url + "/v2/apps", json=dict(SMALL, id="/mass", cmd="sleep 600",
                                                      instances=args.instances), timeout=30)
        assert r.status_code == 201, r.text
        wait_until(lambda: running_count(url, "mass") >= args.instances, 1200,
                   f"{args.instances} instances running", interval=0.2)
        mass = time.monotonic() - t0
        figures.update(mass_instances=args.instances, mass_s=round(mass, 3),
                       mass_tasks_per_s=round(args.instances / mass, 1),
                       mass_ratio_to_sh_c_true=round(args.instances / mass / figures["sh_c_true_per_s"], 3))
        print(f"mass: {args.instances} instances running in {mass:.2f} s = "
              f"{figures['mass_tasks_per_s']} tasks/s", flush=True)

        # GET /v2/apps?embed=apps.tasks with the mass app's tasks running
        samples = []
        for _ in range(args.gets):
            t = time.monotonic()
            r = requests.get(url + "/v2/apps", params={"embed": "apps.tasks"}, timeout=30)
            samples.append((time.monotonic() - t) * 1000)
            assert r.status_code == 200
        figures.update(list_p50_ms=round(percentile(samples, 50), 2), list_p99_ms=round(percentile(samples, 99), 2),
                       list_max_ms=round(max(samples), 2))
        print(f"GET /v2/apps?embed=apps.tasks with {args.instances} tasks: p50 {figures['list_p50_ms']} ms, "
              f"p99 {figures['list_p99_ms']} ms, max {figures['list_max_ms']} ms", flush=True)

        # one-instance POST -> RUNNING
        latencies = []
        for i in range(args.apps):
            app_id = f"one-{i}"
            t = time.monotonic()
            r = requests.post(url + "/v2/apps", json=dict(SMALL, id=app_id, cmd="sleep 600", instances=1), timeout=30)
            assert r.status_code == 201, r.text
            wait_until(lambda: running_count(url, app_id) == 1, 60, f"{app_id} running", interval=0.005)
            latencies.append((time.monotonic() - t) * 1000)
        figures.update(post_to_running_p50_ms=round(percentile(latencies, 50), 1),
                       post_to_running_p99_ms=round(percentile(latencies, 99), 1))
        print(f"POST -> TASK_RUNNING over {args.apps} apps: p50 {figures['post_to_running_p50_ms']} ms, "
              f"p99 {figures['post_to_running_p99_ms']} ms", flush=True)

        # failover with many stored apps
        for i in range(args.stored):
            r = requests.post(url + "/v2/apps", json=dict(SMALL, id=f"stored/s{i}", cmd="sleep 600", instances=0),
                              timeout=30)
            assert r.status_code == 201, r.text
        expected = args.stored + args.apps + 1
        wait_until(lambda: len(requests.get(url + "/v2/apps", timeout=30).json()["apps"]) == expected, 120,
                   "every app listed")
        standby = next(m for m in marathons if m is not leader)
        t0 = time.monotonic()
        cluster.kill9(leader)

        def serves():
            try:
                r = requests.get(standby.url + "/v2/apps", timeout=5)
            except requests.RequestException:
                return False
            return r.status_code == 200 and len(r.json()["apps"]) == expected
        wait_until(serves, 120, "the new leader to serve every app", interval=0.02)
        failover = time.monotonic() - t0
        figures.update(stored_apps=expected, failover_to_apps_s=round(failover, 3))
        print(f"kill -9 of the Marathon leader with {expected} apps -> new leader serves GET /v2/apps: "
              f"{failover:.2f} s", flush=True)
    finally:
        cluster.stop()
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
