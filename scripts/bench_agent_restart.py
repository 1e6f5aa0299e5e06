#!/usr/bin/env python3
"""Agent restart with running tasks: how long until every task is re-attached and reported.

Starts a standalone `tepui master` (in-memory registry) and `tepui agent` on a loopback address,
launches N `sleep` tasks through the v1 scheduler API, then kill -9s the agent and starts it again
on the same work_dir, R times. For each restart it measures, from the new agent process's start:

  reattached  the agent's own /state lists all N tasks TASK_RUNNING (recovery done, HTTP up)
  reported    the master's /state shows the agent active again with all N tasks TASK_RUNNING
              (reregistration carried them)

and checks that every task kept its pid. The agent's registration backoff is --backoff (default
10ms, so that the figure is the recovery's; Mesos' default 1secs adds a random 0-1 s).

    scripts/bench_agent_restart.py [--tepui target/release/tepui] [--tasks 100] [--runs 5]

The last line is one JSON object with the figures.
"""

import argparse
import glob
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from mesos_http import SchedulerStream, command_task  # noqa: E402


def free_ip():
    for x in range(200, 250):
        ip = f"127.0.0.{x}"
        ok = True
        for port in (5050, 5051):
            with socket.socket() as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    ok = False
        if ok:
            return ip
    sys.exit("no free 127.0.0.X with ports 5050/5051")


def poll(predicate, timeout, what, interval=0.005):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout}s: {what}")
        time.sleep(interval)


def children(pid):
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tepui", default=os.path.join(ROOT, "target", "release", "tepui"))
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backoff", default="10ms", help="the agent's --registration_backoff_factor")
    args = parser.parse_args()

    ip = free_ip()
    work = tempfile.mkdtemp(prefix="tepui-restart-bench-")
    log = open(os.path.join(work, "tepui.log"), "ab")
    master_url, agent_url = f"http://{ip}:5050", f"http://{ip}:5051"
    master = subprocess.Popen([args.tepui, "master", "--ip", ip, "--port", "5050", "--registry=in_memory",
                               "--allocation_interval=100ms"], stdout=log, stderr=log, start_new_session=True)
    agent_cmd = [args.tepui, "agent", f"--master={ip}:5050", f"--ip={ip}", "--port=5051",
                 f"--work_dir={work}/agent", f"--registration_backoff_factor={args.backoff}",
                 f"--resources=cpus:{args.tasks};mem:{64 * args.tasks};disk:1024"]
    agent = subprocess.Popen(agent_cmd, stdout=log, stderr=log, start_new_session=True)
    stream = None
    try:
        poll(lambda: requests.get(master_url + "/health", timeout=1).ok, 30, "the master")
        stream = SchedulerStream(master_url, {"user": "root", "name": "restart-bench", "failover_timeout": 3600.0})
        offer = stream.wait_for(lambda e: e["type"] == "OFFERS", 30, "an offer")["offers"]["offers"][0]
        agent_id = offer["agent_id"]["value"]
        ids = [f"t{i}" for i in range(args.tasks)]
        stream.accept_launch(offer, [command_task(t, agent_id, "exec sleep 600", cpus=0.5, mem=32) for t in ids])
        pids = {}

        def all_running(event):
            if event["type"] == "UPDATE" and event["update"]["status"]["state"] == "TASK_RUNNING":
                status = event["update"]["status"]
                pids[status["task_id"]["value"]] = status["container_status"]["executor_pid"]
            return len(pids) == args.tasks

        stream.wait_for(all_running, 120, f"all {args.tasks} tasks RUNNING")

        def agent_running():
            state = requests.get(agent_url + "/state", timeout=1).json()
            tasks = [t for f in state["frameworks"] for e in f["executors"] for t in e["tasks"]]
            return sum(t["state"] == "TASK_RUNNING" for t in tasks) == args.tasks

        def master_running():
            state = requests.get(master_url + "/state", timeout=1).json()
            active = [s for s in state["slaves"] if s["id"] == agent_id and s["active"]]
            tasks = [t for f in state["frameworks"] for t in f["tasks"] if t["state"] == "TASK_RUNNING"]
            return active and len(tasks) == args.tasks

        reattached, reported = [], []
        for run in range(args.runs):
            agent.kill()
            agent.wait()
            poll(lambda: not master_running(), 30, "the master to see the agent go")
            t0 = time.monotonic()
            agent = subprocess.Popen(agent_cmd, stdout=log, stderr=log, start_new_session=True)
            poll(agent_running, 60, "the agent to list every task running")
            reattached.append(time.monotonic() - t0)
            poll(master_running, 60, "the master to list every task running")
            reported.append(time.monotonic() - t0)
            for t, pid in pids.items():
                with open(f"/proc/{pid}/stat") as f:
                    assert f.read().rsplit(")", 1)[1].split()[0] != "Z", f"{t} ({pid}) died"
            print(f"run {run + 1}: re-attached {reattached[-1] * 1000:.0f} ms, reported {reported[-1] * 1000:.0f} ms",
                  flush=True)

        def figures(xs):
            return {"median_ms": round(statistics.median(xs) * 1000, 1), "min_ms": round(min(xs) * 1000, 1),
                    "max_ms": round(max(xs) * 1000, 1)}

        print(json.dumps({"tasks": args.tasks, "runs": args.runs, "backoff": args.backoff,
                          "reattached": figures(reattached), "reported": figures(reported)}))
    finally:
        if stream is not None:
            stream.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        try:
            with open(os.path.join(work, "agent", "meta", "launcher.pid")) as f:
                daemon = int(f.read())
            for child in children(daemon):
                os.killpg(child, signal.SIGKILL)
            os.kill(daemon, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)


if __name__ == "__main__":
    main()
