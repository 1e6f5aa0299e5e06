#!/usr/bin/env python3
"""What an operator waits for with `tepui local-cluster` and the client CLI, measured on real processes.

    scripts/bench_local_cluster.py [--bin target/release/tepui] [--runs 3] [--ip_prefix 127.0.50]

Each run starts `tepui local-cluster up` (3 ZooKeeper nodes, 3 masters with quorum 2, 3 Marathons,
3 agents, 4 s ZooKeeper sessions) in a fresh directory and measures:
  - up: start → the "ready" summary (every server up, a leader, agents registered, a Marathon leader);
  - `tepui status --master zk://...`: one command's wall time (20 calls: p50 / max);
  - `tepui app add` of 2 instances: wall time until it has followed the deployment to the end;
  - kill-leader: `tepui local-cluster kill-leader` → another master serves `/state` (200);
  - stop: SIGINT → `up` exited (every server and task stopped, nothing left behind).
Prints one line per run and the medians. Needs Debian's zookeeper package; run as root (as CI does).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state_code(address):
    try:
        with urllib.request.urlopen(f"http://{address}/state", timeout=1) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


urllib.request.install_opener(urllib.request.build_opener(NoRedirect))


def wait(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def one_run(binary, prefix, index):
    directory = tempfile.mkdtemp(prefix="tepui-bench-lc-", dir="/tmp")
    log_path = os.path.join(directory, "up.out")
    masters = [f"{prefix}.{i}:5050" for i in (1, 2, 3)]
    zk = "zk://" + ",".join(f"{prefix}.{10 + i}:2181" for i in (1, 2, 3)) + "/mesos"
    env = dict(os.environ, TEPUI_MASTER=zk)
    figures = {}
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        up = subprocess.Popen([binary, "local-cluster", "up", "--ip_prefix", prefix, "--dir", directory,
                               "--zk_session_timeout", "4secs"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait(lambda: "local cluster ready in" in open(log_path, errors="replace").read(), 120, "ready",
                 interval=0.05)
            figures["up_s"] = time.monotonic() - t0

            status_times = []
            for _ in range(20):
                t = time.monotonic()
                result = subprocess.run([binary, "status", "--json"], env=env, capture_output=True, text=True)
                status_times.append(time.monotonic() - t)
                if result.returncode != 0:
                    raise SystemExit(f"tepui status failed: {result.stderr}")
            leader = json.loads(result.stdout)["leader"]["address"]
            figures["status_p50_ms"] = statistics.median(status_times) * 1000
            figures["status_max_ms"] = max(status_times) * 1000

            app = os.path.join(directory, "app.json")
            with open(app, "w") as f:
                json.dump({"id": f"/bench{index}", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2}, f)
            t = time.monotonic()
            result = subprocess.run([binary, "app", "add", app], env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"tepui app add failed: {result.stdout} {result.stderr}")
            figures["app_add_s"] = time.monotonic() - t

            t = time.monotonic()
            result = subprocess.run([binary, "local-cluster", "kill-leader", "--dir", directory],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"kill-leader failed: {result.stdout} {result.stderr}")
            wait(lambda: next((m for m in masters if m != leader and state_code(m) == 200), None), 60,
                 "a new leader")
            figures["failover_s"] = time.monotonic() - t

            t = time.monotonic()
            up.send_signal(signal.SIGINT)
            code = up.wait(120)
            figures["stop_s"] = time.monotonic() - t
            if code != 0:
                raise SystemExit(f"`up` exited with {code}; see {log_path}")
        finally:
            if up.poll() is None:
                up.send_signal(signal.SIGTERM)
                up.wait(120)
    shutil.rmtree(directory, ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tepui"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ip_prefix", default="127.0.50")
    args = parser.parse_args()
    if not os.path.isfile(args.bin):
        sys.exit(f"--bin: no tepui binary at {args.bin} (cargo build --release)")
    keys = ["up_s", "status_p50_ms", "status_max_ms", "app_add_s", "failover_s", "stop_s"]
    runs = []
    print("run  " + "  ".join(f"{k:>13}" for k in keys))
    for index in range(1, args.runs + 1):
        figures = one_run(args.bin, args.ip_prefix, index)
        runs.append(figures)
        print(f"{index:>3}  " + "  ".join(f"{figures[k]:>13.2f}" for k in keys), flush=True)
    print("med  " + "  ".join(f"{statistics.median(r[k] for r in runs):>13.2f}" for k in keys))


if __name__ == "__main__":
    main()
