"""N tepui masters and M tepui agents on a ZooKeeper ensemble, each process under its own uid.

    c = Cluster("my-test", masters=3, agents=2)      # also starts its own ZKEnsemble
    c.start()                                        # ZK serving, a leader, every agent registered
    old = c.leader(); c.kill9(old); new = c.wait_leader(10, exclude=[old])
    c.cut_from_zk(new); ...; c.heal(new)
    c.stop()                                         # always: processes, iptables rules, slot

Addresses and uids come from the cluster's slot (see util.py): master j listens on 127.77.N.(20+j)
port 5050 as uid 20000+100N+20+j, agent k on 127.77.N.(40+k) port 5051 as uid 20000+100N+40+k.
`cut_from_zk(node)` inserts `iptables -I OUTPUT -p tcp -d 127.77.N.0/24 --dport 2181 -m owner
--uid-owner <uid> -j DROP` (a silent partition of that process, and of the tasks it spawned, from
every ZooKeeper node); `heal(node)` deletes it. Every node logs to `<artifacts>/<name>.log`
(appended across restarts) and keeps its work_dir in `<artifacts>/<name>-work/` (owned by its uid).

Replicated log (replicated-log.md): `Cluster(..., registry="replicated_log")` runs the masters with
`--registry=replicated_log` (default `in_memory`); the log lives in `<work_dir>/replicated_log`, which
survives restarts. `m.quorum = 3; c.restart(m)` changes one master's `--quorum`; `c.add_master()`
starts one more master (m4, m5 at 127.77.N.24-25), `c.retire_master(m)` stops one for good,
`c.wipe_log(m)` deletes a stopped master's log; `c.cut_from_masters(agent)` makes every connection
the node's uid opens to a master port fail at once (TCP reset) until `heal(node)`;
`c.isolate_from_masters(agent)` instead drops, silently and both ways, every packet between the
node's uid and the master ports (ZooKeeper still reachable) until `heal(node)`.
"""

import atexit
import concurrent.futures
import os
import shutil
import threading
import time

import requests

from .util import (
    Deadline,
    ManagedProcess,
    Slot,
    artifact_dir,
    delete_rules_with_comment,
    iptables,
    kill_uids,
    pids_of_uids,
    tepui_bin,
    traversable_by_others,
    wait_until,
)
from .zk import CLIENT_PORT, ZKEnsemble

MASTER_PORT = 5050
AGENT_PORT = 5051
HTTP_TIMEOUT = 2.0

_live = set()
_live_lock = threading.Lock()


def _stop_all_at_exit():
    with _live_lock:
        items = list(_live)
    for item in items:
        try:
            item.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_stop_all_at_exit)


class SplitBrain(AssertionError):
    pass


class Node:
    """A tepui master or agent process (restartable), under its own uid."""

    role = None

    def __init__(self, cluster, name, ip, port, uid, extra_args=()):
        self.cluster = cluster
        self.name = name
        self.ip = ip
        self.port = port
        self.uid = uid
        self.extra_args = list(extra_args)
        self.url = f"http://{ip}:{port}"
        self.work_dir = os.path.join(cluster.work_root, f"{name}-work")
        self.log_path = os.path.join(cluster.out_dir, f"{name}.log")
        # A new node starts from nothing: a work_dir left by an earlier run under the same artifact
        # name (a replicated log, an agent's checkpointed id) would make a "fresh" cluster resume
        # old state. Restarts of this node keep it.
        self._fresh_work_dir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
        env.update(HOME=self.work_dir, TMPDIR=os.path.join(self.work_dir, "tmp"), RUST_BACKTRACE="1", NO_COLOR="1")
        env.setdefault("TEPUI_LOG", "info")
        self.process = ManagedProcess(name, self.argv, self.log_path, slot=cluster.slot, uid=uid,
                                      env=env, cwd=self.work_dir)
        self.cut = False

    def argv(self):
        raise NotImplementedError

    def _fresh_work_dir(self):
        shutil.rmtree(self.work_dir, ignore_errors=True)
        os.makedirs(self.work_dir, exist_ok=True)
        os.makedirs(os.path.join(self.work_dir, "tmp"), exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(self.work_dir):
            for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                os.chown(entry, self.uid, self.uid)

    def reset_work_dir(self):
        """Empty a stopped node's work_dir (checkpoints, sandboxes, replicated log): its next start
        begins from nothing, as a brand-new node."""
        assert not self.running(), f"{self.name} still runs (pid {self.pid}); stop it first"
        self._fresh_work_dir()

    # -- process ---------------------------------------------------------------------------------
    @property
    def pid(self):
        return self.process.pid

    @property
    def returncode(self):
        return self.process.returncode

    def running(self):
        return self.process.running()

    def start(self):
        self.process.start()
        return self

    def wait_exit(self, timeout):
        return self.process.wait_exit(timeout)

    def log_text(self):
        return self.process.log_text()

    def current_log(self):
        """Output of the current (or last) incarnation only."""
        return self.process.current_log()

    def tail(self, lines=40):
        return self.process.tail(lines)

    # -- HTTP ------------------------------------------------------------------------------------
    def get(self, path, timeout=HTTP_TIMEOUT, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return requests.get(self.url + path, timeout=timeout, **kwargs)

    def get_json(self, path, timeout=HTTP_TIMEOUT):
        r = self.get(path, timeout=timeout)
        if r.status_code != 200:
            raise AssertionError(f"GET {self.url}{path} answered {r.status_code}: {r.text[:300]!r}")
        return r.json()

    def metrics(self, timeout=HTTP_TIMEOUT):
        return self.get_json("/metrics/snapshot", timeout=timeout)

    def healthy(self):
        try:
            return self.get("/health", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def __repr__(self):
        return f"<{self.name} {self.url} uid={self.uid} pid={self.pid} rc={self.returncode}>"


class Master(Node):
    role = "master"
    zk_url = None  # per-master override of the cluster's --zk (e.g. an unreachable ensemble)
    quorum = None  # per-master override of the cluster's --quorum (read at each start)

    def argv(self):
        c = self.cluster
        registry = [f"--registry={c.registry}"] if c.registry else []
        # --quorum sizes the replicated log; with an in-memory registry tepui refuses it (no effect).
        quorum = ([] if c.registry == "in_memory"
                  else [f"--quorum={self.quorum if self.quorum is not None else c.quorum}"])
        return [
            c.bin, "master",
            f"--zk={self.zk_url or c.zk_url}",
            *quorum,
            f"--ip={self.ip}", f"--port={self.port}", f"--hostname={self.ip}",
            f"--work_dir={self.work_dir}",
            f"--zk_session_timeout={c.session_timeout_flag}",
            *registry,
            *c.master_args, *self.extra_args,
        ]

    @property
    def log_dir(self):
        """`<work_dir>/replicated_log` (with --registry=replicated_log)."""
        return os.path.join(self.work_dir, "replicated_log")

    def logged_master_id(self):
        """This incarnation's MasterInfo id as its `master listening ... id=<uuid>` log line says
        (None if not logged yet); each start mints a new one."""
        import re

        m = re.findall(r"master listening.*?\bid=([0-9a-f-]{36})", self.current_log())
        return m[-1] if m else None

    def registry(self, timeout=HTTP_TIMEOUT):
        """GET /registrar(1)/registry (leader only: a standby answers 307/503 -> AssertionError)."""
        return self.get_json("/registrar(1)/registry", timeout=timeout)

    def log_metrics(self, timeout=HTTP_TIMEOUT):
        """(registrar/log/recovered, registrar/log/ensemble_size), or (None, None) if no answer."""
        try:
            m = self.metrics(timeout=timeout)
        except (requests.RequestException, AssertionError, ValueError):
            return None, None
        return m.get("registrar/log/recovered"), m.get("registrar/log/ensemble_size")

    def elected(self, timeout=HTTP_TIMEOUT):
        """True/False from /metrics/snapshot `master/elected`; None if it does not answer."""
        try:
            value = self.metrics(timeout=timeout).get("master/elected")
        except (requests.RequestException, AssertionError, ValueError):
            return None
        return value == 1 or value == 1.0

    def state(self):
        return self.get_json("/state")

    def active_agent_hosts(self):
        """Hostnames (our agents use their IP) of the agents this master's /state lists active."""
        return sorted(s.get("hostname") for s in self.state().get("slaves", []) if s.get("active"))


class Agent(Node):
    role = "agent"

    def argv(self):
        c = self.cluster
        return [
            c.bin, "agent",
            f"--master={c.zk_url}",
            f"--ip={self.ip}", f"--port={self.port}", f"--hostname={self.ip}",
            f"--work_dir={self.work_dir}",
            f"--zk_session_timeout={c.session_timeout_flag}",
            f"--registration_backoff_factor={c.registration_backoff_factor}",
            f"--resources={c.agent_resources}",
            *c.agent_args, *self.extra_args,
        ]

    def registered(self):
        """`slave/registered` from the agent's own metrics (None if it does not answer)."""
        try:
            return self.metrics(timeout=1.0).get("slave/registered") == 1
        except (requests.RequestException, AssertionError, ValueError):
            return None

    def state(self):
        return self.get_json("/state")

    @property
    def agent_id(self):
        try:
            return self.state().get("id") or None
        except (requests.RequestException, AssertionError, ValueError):
            return None


class Cluster:
    """See module docstring. `zk` may be an existing ZKEnsemble (not stopped by this cluster)."""

    def __init__(self, name="cluster", masters=3, agents=2, quorum=None, session_timeout=2.0,
                 zk=None, zk_path="/mesos", master_args=(), agent_args=(),
                 registration_backoff_factor="100ms", agent_resources="cpus:4;mem:2048;disk:4096",
                 out_dir=None, registry="in_memory"):
        if os.geteuid() != 0:
            raise RuntimeError("the HA harness needs root (per-node uids, iptables)")
        self.name = name
        self.out_dir = out_dir or artifact_dir(name)
        self._own_zk = zk is None
        self.slot = zk.slot if zk is not None else Slot.acquire()
        self._stopped = False
        with _live_lock:
            _live.add(self)
        try:
            self.zk = zk or ZKEnsemble(name, slot=self.slot, out_dir=self.out_dir)
            self.zk_path = zk_path
            self.zk_url = self.zk.zk_url(zk_path)
            self.quorum = quorum if quorum is not None else max(1, masters // 2 + 1)
            self.registry = registry  # --registry=...; None: the flag is not passed (tepui's default)
            self.session_timeout = float(session_timeout)
            self.session_timeout_flag = f"{int(round(self.session_timeout * 1000))}ms"
            self.master_args = list(master_args)
            self.agent_args = list(agent_args)
            self.registration_backoff_factor = registration_backoff_factor
            self.agent_resources = agent_resources
            self.work_root = self._pick_work_root()
            self.bin = self._pick_binary()
            self.masters = [Master(self, f"m{j}", self.slot.ip(20 + j), MASTER_PORT, self.slot.uid(20 + j))
                            for j in range(1, masters + 1)]
            self.agents = [Agent(self, f"a{k}", self.slot.ip(40 + k), AGENT_PORT, self.slot.uid(40 + k))
                           for k in range(1, agents + 1)]
            self.extras = []  # nodes started by spawn_master() (not restarted by ensure_healthy)
            self.retired = []  # masters stopped for good by retire_master()
            self._rules = {}  # node name -> iptables rule args
            self._rules_lock = threading.Lock()
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="poll")
        except BaseException:
            self.stop()
            raise

    # -- setup helpers ---------------------------------------------------------------------------
    def _pick_work_root(self):
        if traversable_by_others(self.out_dir):
            return self.out_dir
        root = os.path.join("/tmp", "tepui-ha", f"work-slot-{self.slot.n}")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root, mode=0o755)
        os.chmod(root, 0o755)
        with open(os.path.join(self.out_dir, "WORK_DIRS.txt"), "w") as f:
            f.write(f"node work_dirs are in {root} ({self.out_dir} is not reachable by other uids)\n")
        return root

    def _pick_binary(self):
        path = tepui_bin()
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise RuntimeError(f"tepui binary not found at {path} (cargo build --bins, or set TEPUI_BIN)")
        if traversable_by_others(path):
            return path
        # e.g. a checkout under /root (0700): copy it where the nodes' uids can run it.
        st = os.stat(path)
        dest_dir = os.path.join("/tmp", "tepui-ha", f"bin-{int(st.st_mtime)}-{st.st_size}")
        dest = os.path.join(dest_dir, "tepui")
        if not os.path.exists(dest):
            os.makedirs(dest_dir, exist_ok=True)
            tmp = dest + f".{os.getpid()}.tmp"
            shutil.copy2(path, tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)
        for d in ("/tmp/tepui-ha", dest_dir):
            os.chmod(d, 0o755)
        return dest

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def nodes(self):
        return self.masters + self.agents + self.extras + getattr(self, "retired", [])

    def spawn_master(self, name, octet, zk_url=None, extra_args=()):
        """Start one more master (127.77.N.<octet>, own uid) outside `masters`, e.g. with a
        ZooKeeper URL where nothing listens; stopped by stop()."""
        m = Master(self, name, self.slot.ip(octet), MASTER_PORT, self.slot.uid(octet), extra_args)
        m.zk_url = zk_url
        self.extras.append(m)
        return m.start()

    def add_master(self, quorum=None, extra_args=(), start=True):
        """One more cluster master m<j> (127.77.N.(20+j), own uid), a full member: listed in
        `masters`, restarted by ensure_healthy. `quorum` overrides the cluster's --quorum for it."""
        j = len(self.masters) + len(self.retired) + 1
        if j > 9:
            raise RuntimeError("at most 9 masters per cluster (addresses 127.77.N.21-29)")
        m = Master(self, f"m{j}", self.slot.ip(20 + j), MASTER_PORT, self.slot.uid(20 + j), extra_args)
        m.quorum = quorum
        self.masters.append(m)
        return m.start() if start else m

    def retire_master(self, master, grace=5.0):
        """Stop a master for good (SIGTERM, then SIGKILL after grace) and drop it from `masters`,
        so nothing restarts it; returns its exit code."""
        rc = master.process.stop(grace=grace)
        if master in self.masters:
            self.masters.remove(master)
            self.retired.append(master)
        return rc

    def wipe_log(self, master):
        """Delete a stopped master's replicated log (`<work_dir>/replicated_log`)."""
        assert not master.running(), f"{master.name} still runs (pid {master.pid}); stop it first"
        shutil.rmtree(master.log_dir, ignore_errors=True)
        assert not os.path.exists(master.log_dir), master.log_dir

    def mark_logs(self, text):
        """Append a marker line to every node's log (e.g. which test starts now)."""
        line = f"\n===== [harness] {time.strftime('%H:%M:%S')} {text}\n".encode()
        for n in self.nodes + list(self.zk.nodes):
            try:
                with open(n.log_path, "ab") as f:
                    f.write(line)
            except OSError:
                pass

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def start(self, timeout=60):
        """Start ZooKeeper (if ours), the masters, wait for a leader, start the agents and wait
        until the leader lists them all active. Returns the leader."""
        deadline = Deadline(timeout)
        if self._own_zk:
            self.zk.start(wait=False)
            self.zk.wait_serving(deadline)
        for m in self.masters:
            if not m.running():
                m.start()
        leader = self.wait_leader(deadline) if self.masters else None
        for a in self.agents:
            if not a.running():
                a.start()
        if leader is not None and self.agents:
            self.wait_agents(leader, timeout=deadline)
        return leader

    def stop(self):
        """Stop everything; delete the iptables rules; release the slot. Never raises."""
        if self._stopped:
            return
        self._stopped = True
        errors = []
        for n in (getattr(self, "agents", []) + getattr(self, "masters", []) + getattr(self, "extras", [])
                  + getattr(self, "retired", [])):
            try:
                n.process.stop(grace=5.0)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        try:
            # Tasks of agents (their uids) that outlived them; everything else of our uids.
            kill_uids([n.uid for n in getattr(self, "nodes", [])])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        try:
            with getattr(self, "_rules_lock", threading.Lock()):
                for args in list(getattr(self, "_rules", {}).values()):
                    iptables("-D", "OUTPUT", *args, check=False)
                getattr(self, "_rules", {}).clear()
            delete_rules_with_comment(self.slot.comment)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        if self._own_zk and getattr(self, "zk", None) is not None:
            try:
                self.zk.stop()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)
        if self._own_zk:
            self.slot.release()
        with _live_lock:
            _live.discard(self)
        if errors:
            print(f"[harness] errors while stopping {self.name}: {errors!r}")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- faults ----------------------------------------------------------------------------------
    def kill9(self, node):
        """SIGKILL the node's process (its tasks, in other process groups, keep running)."""
        return node.process.kill9()

    def sigterm(self, node, wait=None):
        """SIGTERM; with wait=seconds, wait for the exit and return the code."""
        return node.process.sigterm(wait)

    def restart(self, node):
        """Start the node again (killing it first if it still runs); same address/uid/work_dir."""
        if node.running():
            node.process.kill9()
        node.start()
        return node

    def _rule_args(self, node, port=CLIENT_PORT, target=("DROP",), syn_only=False):
        return ["-p", "tcp", *(["--syn"] if syn_only else []), "-d", f"127.77.{self.slot.n}.0/24", "--dport", str(port),
                "-m", "owner", "--uid-owner", str(node.uid),
                "-m", "comment", "--comment", self.slot.comment, "-j", *target]

    def cut_from_zk(self, node):
        """Silently drop every packet the node's uid sends to a ZooKeeper client port."""
        with self._rules_lock:
            if node.name in self._rules:
                return
            args = self._rule_args(node)
            iptables("-I", "OUTPUT", *args)
            self._rules[node.name] = args
            node.cut = True

    def cut_from_masters(self, node):
        """Refuse (TCP reset, at once) every connection the node's uid opens to a master port,
        e.g. to keep agents from re-registering while a new leader's registry is inspected. Only
        new connections: streams already open are not touched. heal(node) lifts it."""
        key = f"{node.name}:masters"
        with self._rules_lock:
            if key in self._rules:
                return
            args = self._rule_args(node, MASTER_PORT, ("REJECT", "--reject-with", "tcp-reset"), syn_only=True)
            iptables("-I", "OUTPUT", *args)
            self._rules[key] = args

    def isolate_from_masters(self, node):
        """Silently drop every packet, both ways, of the node's connections to a master port; its
        ZooKeeper traffic is untouched (only the master link fails). Connections the node's uid
        opens to 127.77.N.*:5050 get a conntrack mark (CONNMARK); every packet of a marked
        connection is dropped, so masters' packets to the node go too (on an established stream,
        from the node's next packet on, e.g. the ACK of the next ping). New connections never
        complete (SYN dropped, no reset). heal(node) lifts it."""
        key_mark, key_drop = f"{node.name}:isolate-mark", f"{node.name}:isolate-drop"
        mark = f"0x{0x54000000 | (self.slot.n << 8) | int(node.ip.rsplit('.', 1)[1]):x}"
        with self._rules_lock:
            if key_mark in self._rules:
                return
            drop = ["-p", "tcp", "-m", "connmark", "--mark", mark,
                    "-m", "comment", "--comment", self.slot.comment, "-j", "DROP"]
            set_mark = self._rule_args(node, MASTER_PORT, ("CONNMARK", "--set-mark", mark))
            # -I puts each rule first: the mark rule ends above the drop rule.
            iptables("-I", "OUTPUT", *drop)
            self._rules[key_drop] = drop
            iptables("-I", "OUTPUT", *set_mark)
            self._rules[key_mark] = set_mark
            node.cut = True

    def heal(self, node):
        """Lift every cut of this node (ZooKeeper and masters)."""
        with self._rules_lock:
            node.cut = False
            for key in [k for k in self._rules if k == node.name or k.startswith(node.name + ":")]:
                iptables("-D", "OUTPUT", *self._rules.pop(key))

    def heal_all(self):
        for n in self.nodes:
            self.heal(n)

    # -- observation -----------------------------------------------------------------------------
    def running_masters(self):
        return [m for m in self.masters if m.running()]

    def elected_map(self, masters=None, timeout=HTTP_TIMEOUT):
        """{master: True/False/None} asked concurrently (None = no answer)."""
        masters = list(masters if masters is not None else self.masters)
        futures = {m: self._pool.submit(m.elected, timeout) for m in masters}
        return {m: f.result() for m, f in futures.items()}

    def leader(self):
        """The master whose /metrics/snapshot says `master/elected` 1, or None. Raises SplitBrain
        if more than one does."""
        elected = [m for m, e in self.elected_map(self.running_masters()).items() if e]
        if len(elected) > 1:
            raise SplitBrain(f"more than one master reports master/elected=1: {elected}")
        return elected[0] if elected else None

    def wait_leader(self, timeout=30, exclude=(), ready=True, interval=0.05):
        """Wait until a running master not in `exclude` is elected (and, with ready, answers
        GET /state with 200, i.e. finished recovery); return it."""
        excluded = {m.name for m in exclude}

        def find():
            leader = self.leader()
            if leader is None or leader.name in excluded:
                return None
            if ready and leader.get("/state").status_code != 200:
                return None
            return leader

        try:
            return wait_until(find, timeout, f"a leading master (not {sorted(excluded)})", interval=interval)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.describe()}") from None

    def wait_agents(self, leader, agents=None, timeout=30):
        """Wait until leader's /state lists these agents (default: all running) as active."""
        agents = list(agents if agents is not None else [a for a in self.agents if a.running()])
        want = sorted(a.ip for a in agents)

        def ok():
            hosts = leader.active_agent_hosts()
            return all(ip in hosts for ip in want) and hosts

        try:
            return wait_until(ok, timeout, f"{leader.name}'s /state to list agents {want} as active",
                              interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.describe()}") from None

    def ensure_healthy(self, timeout=60):
        """Bring the cluster back to full strength after a test: heal cuts, restart dead ZooKeeper
        nodes, masters and agents; wait for a leader with every agent active. Returns the leader."""
        deadline = Deadline(timeout)
        self.heal_all()
        if self._own_zk:
            dead = [n for n in self.zk.nodes if not n.running()]
            for n in dead:
                n.start()
            self.zk.wait_serving(deadline)
        for m in self.masters:
            if not m.running():
                m.start()
        leader = self.wait_leader(deadline)
        for a in self.agents:
            if not a.running():
                a.start()
        self.wait_agents(leader, timeout=deadline)
        return leader

    def describe(self):
        lines = [f"cluster {self.name} (slot {self.slot.n}, zk {self.zk_url}):"]
        lines.append("  zookeeper: " + ", ".join(
            f"{n.name}={'down' if not n.running() else (n.mode() or 'not serving')}" for n in self.zk.nodes))
        em = self.elected_map(timeout=1.0)
        for m in self.masters:
            lines.append(f"  {m.name} {m.url} pid={m.pid} rc={m.returncode} elected={em.get(m)}"
                         f"{' CUT' if m.cut else ''}")
        for a in self.agents:
            lines.append(f"  {a.name} {a.url} pid={a.pid} rc={a.returncode} registered={a.registered()}"
                         f"{' CUT' if a.cut else ''}")
        lines.append(f"  logs: {self.out_dir}")
        return "\n".join(lines)

    def leftover_processes(self):
        return pids_of_uids([n.uid for n in self.nodes])


class SplitBrainMonitor:
    """Polls every master's `master/elected` concurrently, in rounds, in a background thread.

    A violation is a round in which two or more masters answered elected=1 (answering means the
    process was running at that moment). `timeline()` gives the changes, for failure messages.
    """

    def __init__(self, cluster, interval=0.05):
        self.cluster = cluster
        self.interval = interval
        self.rounds = []  # (t, {name: True/False/None}, {name: running})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="split-brain-monitor", daemon=True)
        self.t0 = None

    def start(self):
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic() - self.t0
            try:
                em = self.cluster.elected_map(timeout=1.0)
            except RuntimeError:  # pool shut down
                return
            running = {m.name: m.running() for m in self.cluster.masters}
            self.rounds.append((t, {m.name: e for m, e in em.items()}, running))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self

    def violations(self):
        return [(t, em) for t, em, _ in self.rounds if sum(1 for e in em.values() if e) > 1]

    def timeline(self):
        out, prev = [], None
        for t, em, running in self.rounds:
            key = tuple(sorted(em.items())), tuple(sorted(running.items()))
            if key != prev:
                cells = " ".join(
                    f"{n}={'E' if e else ('-' if e is False else 'x')}{'' if running.get(n) else '(exited)'}"
                    for n, e in sorted(em.items()))
                out.append(f"t={t:6.2f}s {cells}")
                prev = key
        return "\n".join(out)

    def first_time(self, predicate):
        """Time of the first round whose elected map satisfies predicate, or None."""
        for t, em, _ in self.rounds:
            if predicate(em):
                return t
        return None
