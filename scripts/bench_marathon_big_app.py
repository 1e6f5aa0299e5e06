#!/usr/bin/env python3
"""Marathon with one big app: how fast one app of N instances gets all of them running.

Starts a `tepui dev` (master, one agent with --resources large enough for every instance, and
Marathon with in-memory state, in one process), measures the machine's sequential
`sh -c true` spawn+wait rate, POSTs one app of --instances `exec sleep 600` instances
(cpus 0.001, mem 1, no ports) and prints the RUNNING count over time, then the overall
tasks/s, the time until all are RUNNING and the ratio to the spawn rate; one JSON line last.

    .venv/bin/python scripts/bench_marathon_big_app.py [--instances 2000] [--tepui target/release/tepui]
        [--perf perf.data]   # also `perf record -g` the tepui dev process during the launch
        [--restart]          # then time a rolling restart of every instance

Runs as any user; nothing but the tepui dev process group (and its tasks) is started, and it is
stopped on every exit path (SIGINT, then SIGKILL of the group after a deadline). The temporary work
directory (sandboxes, the tepui log) is removed after a successful run and kept after a failure.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))

APP = {"id": "/big", "cmd": "exec sleep 600", "cpus": 0.001, "mem": 1, "disk": 0, "portDefinitions": []}
STOP_DEADLINE_S = 120


def spawn_rate(count=500):
    t0 = time.monotonic()
    for _ in range(count):
        subprocess.run(["sh", "-c", "true"], check=True)
    return count / (time.monotonic() - t0)


def wait_for(condition, deadline_s, what, interval=0.1):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {deadline_s} s waiting for {what}")


def app_counts(url):
    # The list with an id filter carries the counts but not the tasks: polling /v2/apps/<id>
    # (every task embedded, megabytes at 10,000) would load the process being measured.
    r = requests.get(f"{url}/v2/apps", params={"id": APP["id"]}, timeout=30)
    r.raise_for_status()
    app = next(a for a in r.json()["apps"] if a["id"] == APP["id"])
    return app["tasksRunning"], app["tasksStaged"]


class Dev:
    """A `tepui dev` in its own process group, with its output in a log file."""

    def __init__(self, tepui, work_dir, resources, ports):
        self.log_path = os.path.join(work_dir, "tepui-dev.log")
        self.log = open(self.log_path, "wb")
        master, agent, marathon = ports
        self.proc = subprocess.Popen(
            [tepui, "dev", "--ip", "127.0.0.1", "--port", str(master), "--agent_port", str(agent),
             "--marathon_port", str(marathon), "--work_dir", os.path.join(work_dir, "dev"),
             "--resources", resources],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.master_url = f"http://127.0.0.1:{master}"
        self.marathon_url = f"http://127.0.0.1:{marathon}"

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"tepui dev exited with {self.proc.returncode}; see {self.log_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                print(f"tepui dev did not stop within {STOP_DEADLINE_S} s; killing its process group", flush=True)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # launcher daemon and tasks share the group
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def restart(dev, args, figures):
    """A rolling restart of every instance (the default upgrade strategy: start all new ones, then
    kill the old), timed from the POST until the deployment is gone and every instance runs."""
    t0 = time.monotonic()
    r = requests.post(f"{dev.marathon_url}/v2/apps{APP['id']}/restart", timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"POST restart answered {r.status_code}: {r.text}")
    deployment = r.json()["deploymentId"]
    last_print = 0.0
    while True:
        dev.check_alive()
        elapsed = time.monotonic() - t0
        if elapsed > args.deadline:
            raise TimeoutError(f"restart not done after {elapsed:.0f} s")
        listed = requests.get(f"{dev.marathon_url}/v2/deployments", timeout=30).json()
        running, staged = app_counts(dev.marathon_url)
        if not any(d["id"] == deployment for d in listed) and running == args.instances:
            break
        if elapsed - last_print >= 2:
            print(f"{elapsed:7.1f} s  restarting: running {running:6d}  staged {staged:6d}", flush=True)
            last_print = elapsed
        time.sleep(0.2)
    took = time.monotonic() - t0
    figures.update(restart_s=round(took, 2), restart_tasks_per_s=round(args.instances / took, 1))
    print(f"rolling restart of {args.instances} instances done in {took:.2f} s "
          f"= {args.instances / took:.1f} replaced/s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--tepui", default=os.environ.get("TEPUI_BIN", os.path.join(REPO, "target", "release", "tepui")))
    parser.add_argument("--ports", default="15050,15051,18080", help="master,agent,marathon ports")
    parser.add_argument("--perf", metavar="FILE", help="perf record -g the tepui dev process into FILE during the launch")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds allowed for all instances to run")
    parser.add_argument("--work_dir", help="default: a fresh temporary directory")
    parser.add_argument("--restart", action="store_true",
                        help="then POST /v2/apps/<id>/restart and time the rolling restart until its deployment ends")
    args = parser.parse_args()
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    ports = [int(p) for p in args.ports.split(",")]
    if len(ports) != 3:
        parser.error("--ports takes three comma-separated ports: master,agent,marathon")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tepui-big-app-")
    resources = (f"cpus:{args.instances * APP['cpus'] + 8};mem:{args.instances * APP['mem'] + 4096};"
                 "disk:100000;ports:[31000-32000]")
    figures = {"instances": args.instances}
    dev = Dev(args.tepui, work_dir, resources, ports)
    perf = None
    succeeded = False
    try:
        wait_for(lambda: dev.check_alive() or requests.get(dev.marathon_url + "/ping", timeout=2).ok, 60, "Marathon")
        wait_for(lambda: dev.check_alive() or requests.get(dev.master_url + "/state", timeout=5).json()["activated_slaves"] >= 1,
                 60, "the agent")
        wait_for(lambda: requests.get(dev.marathon_url + "/v2/info", timeout=5).json().get("frameworkId"), 60,
                 "Marathon's framework id")
        print(f"tepui dev pid {dev.proc.pid}, work dir {work_dir}", flush=True)

        figures["sh_c_true_per_s"] = round(spawn_rate(), 1)
        print(f"sequential spawn+wait of sh -c true: {figures['sh_c_true_per_s']}/s", flush=True)

        if args.perf:
            perf = subprocess.Popen(["perf", "record", "-g", "-o", args.perf, "-p", str(dev.proc.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        r = requests.post(dev.marathon_url + "/v2/apps", json=dict(APP, instances=args.instances), timeout=60)
        if r.status_code != 201:
            raise RuntimeError(f"POST /v2/apps answered {r.status_code}: {r.text}")
        last_print, samples, running = 0.0, [], 0
        while running < args.instances:
            dev.check_alive()
            elapsed = time.monotonic() - t0
            if elapsed > args.deadline:
                raise TimeoutError(f"{running}/{args.instances} running after {elapsed:.0f} s")
            running, staged = app_counts(dev.marathon_url)
            samples.append((round(elapsed, 2), running))
            if elapsed - last_print >= 2 or running >= args.instances:
                print(f"{elapsed:7.1f} s  running {running:6d}  staged {staged:6d}  "
                      f"({running / max(elapsed, 1e-9):.1f} tasks/s so far)", flush=True)
                last_print = elapsed
            time.sleep(0.2)
        took = time.monotonic() - t0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
            perf = None
        rate = args.instances / took
        figures.update(all_running_s=round(took, 2), tasks_per_s=round(rate, 1),
                       ratio_to_sh_c_true=round(rate / figures["sh_c_true_per_s"], 3))
        half = next((t for t, n in samples if n >= args.instances // 2), None)
        figures["half_running_s"] = half
        print(f"{args.instances} instances RUNNING in {took:.2f} s = {rate:.1f} tasks/s "
              f"({figures['ratio_to_sh_c_true']} x the sh -c true rate)", flush=True)
        if args.restart:
            restart(dev, args, figures)
        succeeded = True
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        dev.stop()
        if succeeded and not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not succeeded:
            print(f"kept {work_dir} (tepui log: {dev.log_path})", flush=True)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
