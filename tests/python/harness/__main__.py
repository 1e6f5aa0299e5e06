"""`python -m harness up [--masters 3] [--agents 2]` or `python -m harness zk` (run as root from
tests/python): start a cluster (or only ZooKeeper), print its URLs, wait for Ctrl-C, stop it all."""

import argparse
import signal
import sys
import threading
import time

from .cluster import Cluster
from .zk import ZKEnsemble


_stop = threading.Event()


def _catch_signals():
    """From now on SIGINT/SIGTERM/SIGHUP ask for a clean stop (installed before the "Ctrl-C"
    line is printed, so a signal right after it is not lost)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: _stop.set())


def _wait_for_signal():
    while not _stop.wait(0.5):
        pass


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="ZooKeeper ensemble + tepui masters and agents")
    up.add_argument("--masters", type=int, default=3)
    up.add_argument("--agents", type=int, default=2)
    up.add_argument("--quorum", type=int, default=None)
    up.add_argument("--session-timeout", type=float, default=2.0, help="seconds (default 2)")
    up.add_argument("--name", default="harness-up", help="artifact directory name under .test-output/")
    zk = sub.add_parser("zk", help="only the 3-node ZooKeeper ensemble")
    zk.add_argument("--name", default="harness-zk")
    args = p.parse_args(argv)

    if args.cmd == "zk":
        ens = ZKEnsemble(args.name)
        try:
            t0 = time.monotonic()
            ens.start()
            print(f"zookeeper: {ens.connect_string} (serving after {time.monotonic() - t0:.1f}s)")
            print(f"zk url:    {ens.zk_url()}")
            print(f"logs:      {ens.out_dir}")
            _catch_signals()
            print("Ctrl-C stops it.", flush=True)
            _wait_for_signal()
        finally:
            ens.stop()
        print("stopped")
        return 0

    cluster = Cluster(args.name, masters=args.masters, agents=args.agents, quorum=args.quorum,
                      session_timeout=args.session_timeout)
    try:
        t0 = time.monotonic()
        leader = cluster.start()
        print(f"cluster up in {time.monotonic() - t0:.1f}s")
        print(f"zk url:  {cluster.zk_url}")
        for m in cluster.masters:
            print(f"master:  {m.url}  (uid {m.uid}, pid {m.pid}){'  LEADER' if m is leader else ''}")
        for a in cluster.agents:
            print(f"agent:   {a.url}  (uid {a.uid}, pid {a.pid})")
        print(f"logs:    {cluster.out_dir}")
        _catch_signals()
        print("Ctrl-C stops everything.", flush=True)
        _wait_for_signal()
    finally:
        cluster.stop()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
