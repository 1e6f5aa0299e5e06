"""A real 3-node Apache ZooKeeper ensemble (Debian's `zookeeper` package, 3.8) as plain processes.

    zk = ZKEnsemble("my-test")          # takes a slot (addresses 127.77.N.11-13) unless given one
    zk.start(); zk.wait_serving(30)
    zk.zk_url("/mesos")                 # zk://127.77.N.11:2181,127.77.N.12:2181,127.77.N.13:2181/mesos
    zk.kill9(1); zk.restart(1); zk.mode(2) -> "leader"|"follower"|None; zk.stop()

Each node listens on its own loopback address with the standard ports (2181 client, 2888 peer,
3888 election), so an iptables rule on `--dport 2181` cuts a client off from all nodes. Logs go to
`<artifacts>/zk<i>.log`, data to `<artifacts>/zk<i>-data/`.
"""

import os
import shutil
import socket
import time

from .util import Deadline, ManagedProcess, Slot, artifact_dir, wait_until

ZK_JAR = "/usr/share/java/zookeeper.jar"
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"
CLIENT_PORT, PEER_PORT, ELECTION_PORT = 2181, 2888, 3888
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def four_letter(ip, port, word, timeout=1.0):
    """Send a ZooKeeper four-letter word; return the reply text ('' on any error)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


class ZKNode:
    def __init__(self, ensemble, index):
        self.ensemble = ensemble
        self.index = index
        self.name = f"zk{index}"
        self.ip = ensemble.slot.ip(10 + index)
        self.client_port = CLIENT_PORT
        self.data_dir = os.path.join(ensemble.out_dir, f"{self.name}-data")
        self.cfg_path = os.path.join(self.data_dir, "zoo.cfg")
        self.log_path = os.path.join(ensemble.out_dir, f"{self.name}.log")
        self.process = ManagedProcess(self.name, self._argv, self.log_path, slot=ensemble.slot)
        # A new ensemble starts empty: data an earlier run left under the same artifact name
        # (Marathon's state, say) would otherwise make a fresh cluster resume it. Restarts keep it.
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def address(self):
        return f"{self.ip}:{self.client_port}"

    @property
    def pid(self):
        return self.process.pid

    @property
    def returncode(self):
        return self.process.returncode

    def running(self):
        return self.process.running()

    def _write_config(self):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write(f"{self.index}\n")
        e = self.ensemble
        lines = [
            f"tickTime={e.tick_ms}",
            "initLimit=50",
            "syncLimit=10",
            f"dataDir={self.data_dir}",
            f"clientPort={self.client_port}",
            f"clientPortAddress={self.ip}",
            f"minSessionTimeout={e.min_session_ms}",
            f"maxSessionTimeout={e.max_session_ms}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
            "autopurge.purgeInterval=0",
            "maxClientCnxns=0",
        ]
        for node in e.nodes:
            lines.append(f"server.{node.index}={node.ip}:{PEER_PORT}:{ELECTION_PORT}")
        with open(self.cfg_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _argv(self):
        return [
            self.ensemble.java, f"-Xmx{self.ensemble.heap}", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Djava.net.preferIPv4Stack=true",
            f"-Dzookeeper.log.dir={self.data_dir}",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-cp", f"{ZK_JAR}:{SLF4J_SIMPLE}", MAIN_CLASS, self.cfg_path,
        ]

    def start(self):
        self._write_config()
        self.process.start()

    def srvr(self, timeout=1.0):
        return four_letter(self.ip, self.client_port, "srvr", timeout)

    def mode(self):
        """'leader', 'follower', 'standalone', or None (down or not serving)."""
        for line in self.srvr().splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def serving(self):
        return self.mode() in ("leader", "follower", "standalone")


class ZKEnsemble:
    """Three ZooKeeper servers on 127.77.N.11-13 (see module docstring)."""

    def __init__(self, name="zk-ensemble", slot=None, out_dir=None, size=3, tick_ms=200,
                 min_session_ms=400, max_session_ms=60000, heap="256m"):
        for path in (ZK_JAR, SLF4J_SIMPLE):
            if not os.path.isfile(path):
                raise RuntimeError(f"{path} is missing: apt-get install -y zookeeper")
        self.java = shutil.which("java") or "/usr/bin/java"
        self.name = name
        self._own_slot = slot is None
        self.slot = slot or Slot.acquire()
        self.out_dir = out_dir or artifact_dir(name)
        self.tick_ms = tick_ms
        self.min_session_ms = min_session_ms
        self.max_session_ms = max_session_ms
        self.heap = heap
        self.nodes = []
        self.nodes = [ZKNode(self, i) for i in range(1, size + 1)]
        self._stopped = False

    # -- addresses ------------------------------------------------------------------------------
    @property
    def connect_string(self):
        return ",".join(n.address for n in self.nodes)

    def zk_url(self, path="/mesos"):
        if not path.startswith("/"):
            path = "/" + path
        return f"zk://{self.connect_string}{path}"

    def node(self, i):
        """Node by 1-based index (as zk1, zk2, zk3)."""
        return self.nodes[i - 1]

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, wait=True, timeout=60):
        for node in self.nodes:
            if not node.running():
                node.start()
        if wait:
            self.wait_serving(timeout)
        return self

    def wait_serving(self, deadline=30, nodes=None):
        """Wait until every (given, else every running) node answers `srvr` with a Mode."""
        targets = nodes if nodes is not None else self.nodes

        def all_serving():
            for n in targets:
                if not n.running():
                    raise AssertionError(f"{n.name} exited with code {n.returncode}:\n{n.process.tail(15)}")
            return all(n.serving() for n in targets)

        t0 = time.monotonic()
        wait_until(all_serving, deadline,
                   f"ZooKeeper nodes {[n.name for n in targets]} to serve (logs in {self.out_dir})",
                   interval=0.1)
        return time.monotonic() - t0

    def wait_quorum(self, deadline=30):
        """Wait until a majority of nodes serve (enough for clients)."""
        need = len(self.nodes) // 2 + 1
        wait_until(lambda: sum(1 for n in self.nodes if n.serving()) >= need, deadline,
                   f"{need} ZooKeeper nodes to serve", interval=0.1)

    def kill9(self, i):
        node = self.node(i)
        return node.process.kill9()

    def restart(self, i, wait=True, deadline=30):
        node = self.node(i)
        if node.running():
            node.process.kill9()
        node.start()
        if wait:
            self.wait_serving(deadline, nodes=[node])

    def leader_index(self):
        for n in self.nodes:
            if n.mode() == "leader":
                return n.index
        return None

    def modes(self):
        return {n.name: n.mode() for n in self.nodes}

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        try:
            for n in self.nodes:
                n.process.signal(15)
            deadline = Deadline(5)
            for n in self.nodes:
                if n.process.wait_exit(deadline.remaining()) is None:
                    n.process.kill9()
        finally:
            if self._own_slot:
                self.slot.release()

    # -- clients --------------------------------------------------------------------------------
    def client(self, timeout=10.0, **kwargs):
        """A started kazoo client on the ensemble (caller stops it)."""
        from kazoo.client import KazooClient

        c = KazooClient(hosts=self.connect_string, timeout=timeout, **kwargs)
        c.start(timeout=15)
        return c

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
