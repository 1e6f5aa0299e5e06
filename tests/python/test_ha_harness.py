"""Checks of the HA harness itself (tests/python/harness), independent of tepui's --zk support:
the ZooKeeper ensemble, per-node uids, iptables cuts, and cleanup after a crash."""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from harness import Cluster, Slot, ZKEnsemble, wait_until
from harness.util import (
    ManagedProcess,
    artifact_dir,
    iptables,
    iptables_rules_with_comment,
    pids_of_uids,
    port_free,
    proc_alive,
    proc_uid,
)

pytestmark = pytest.mark.timeout(180)

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def ensemble(request):
    assert os.geteuid() == 0, "the HA harness tests need root (uids, iptables)"
    ens = ZKEnsemble(request.node.nodeid + "__module")
    try:
        ens.start(timeout=60)
        yield ens
    finally:
        ens.stop()


def _kazoo_roundtrip(ens, path):
    c = ens.client()
    try:
        c.ensure_path("/harness")
        c.create(path, b"x", ephemeral=True)
        return c.get(path)[0]
    finally:
        c.stop()
        c.close()


def test_ensemble_serves_survives_one_node_and_reelects(ensemble):
    modes = ensemble.modes()
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    assert ensemble.zk_url() == "zk://" + ",".join(f"127.77.{ensemble.slot.n}.{10 + i}:2181" for i in (1, 2, 3)) + "/mesos"
    assert _kazoo_roundtrip(ensemble, "/harness/a") == b"x"

    # A follower killed: the other two still serve.
    follower = next(n for n in ensemble.nodes if n.mode() == "follower")
    rc = ensemble.kill9(follower.index)
    assert rc == -signal.SIGKILL, rc
    assert not follower.serving()
    assert _kazoo_roundtrip(ensemble, "/harness/b") == b"x"
    ensemble.restart(follower.index)
    assert follower.serving()

    # The leader killed: the others elect a new one and serve again.
    old = ensemble.leader_index()
    t0 = time.monotonic()
    ensemble.kill9(old)
    new = wait_until(lambda: ensemble.leader_index(), 15, "a new ZooKeeper leader")
    reelect = time.monotonic() - t0
    assert new != old
    assert _kazoo_roundtrip(ensemble, "/harness/c") == b"x"
    ensemble.restart(old)
    ensemble.wait_serving(30)
    print(f"ZooKeeper re-election after kill -9 of the leader: {reelect:.2f}s")
    for n in ensemble.nodes:
        assert os.path.getsize(n.log_path) > 0
        assert n.log_path.startswith(ensemble.out_dir)


def _uid_probe_script():
    return (
        "import os, socket, sys, time\n"
        "ip, go = sys.argv[1], sys.argv[2]\n"
        "s = socket.create_connection((ip, 2181), timeout=2)\n"
        "print('uid', os.getuid(), os.getgid(), os.getgroups(), 'connected', flush=True)\n"
        "while not os.path.exists(go): time.sleep(0.02)\n"
        "s.settimeout(1.5); s.sendall(b'ruok')\n"
        "try: print('established:', s.recv(100).decode() or 'closed', flush=True)\n"
        "except socket.timeout: print('established: timeout', flush=True)\n"
        "try: socket.create_connection((ip, 2181), timeout=1.5); print('new: connected', flush=True)\n"
        "except socket.timeout: print('new: timeout', flush=True)\n"
        "except OSError as e: print('new: error', e, flush=True)\n"
    )


def test_uid_cut_drops_only_that_uids_packets(ensemble, request):
    out = artifact_dir(request.node.nodeid)
    slot = ensemble.slot
    uid = slot.uid(90)
    zk_ip = ensemble.node(1).ip
    godir = tempfile.mkdtemp(prefix="go-", dir="/tmp")
    os.chmod(godir, 0o755)
    rule = ["-p", "tcp", "-d", f"127.77.{slot.n}.0/24", "--dport", "2181", "-m", "owner",
            "--uid-owner", str(uid), "-m", "comment", "--comment", slot.comment, "-j", "DROP"]
    script = os.path.join(godir, "probe.py")
    with open(script, "w") as f:
        f.write(_uid_probe_script())
    os.chmod(script, 0o644)

    def run_probe(tag):
        go = os.path.join(godir, f"go-{tag}")
        p = ManagedProcess(f"probe-{tag}", lambda: ["/usr/bin/python3", script, zk_ip, go],
                           os.path.join(out, f"probe-{tag}.log"), slot=slot, uid=uid, cwd=godir)
        p.start()
        wait_until(lambda: "connected" in p.current_log(), 10, f"probe {tag} to connect:\n{p.tail()}")
        assert proc_uid(p.pid) == uid
        return p, go

    try:
        # Cut while a connection is established: both it and new connections go silent.
        p, go = run_probe("cut")
        assert f"uid {uid} {uid} [] connected" in p.current_log(), p.tail()
        iptables("-I", "OUTPUT", *rule)
        assert iptables_rules_with_comment(slot.comment), "rule not listed"
        open(go, "w").close()
        assert p.wait_exit(15) == 0, p.tail()
        text = p.current_log()
        assert "established: timeout" in text and "new: timeout" in text, text
        # Root (another uid) is not affected.
        assert ensemble.node(1).serving()

        iptables("-D", "OUTPUT", *rule)
        assert not iptables_rules_with_comment(slot.comment)
        p, go = run_probe("healed")
        open(go, "w").close()
        assert p.wait_exit(15) == 0, p.tail()
        text = p.current_log()
        assert "established: imok" in text and "new: connected" in text, text
    finally:
        iptables("-D", "OUTPUT", *rule, check=False)
        for pid in pids_of_uids([uid]):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(godir, ignore_errors=True)


def test_cluster_nodes_get_own_uids_and_stop_cleans_up(ensemble, request):
    c = Cluster(request.node.nodeid, masters=2, agents=1, zk=ensemble)
    try:
        uids = {n.uid for n in c.nodes}
        assert len(uids) == 3 and all(u > 20000 for u in uids), uids
        for n in c.nodes:
            assert os.stat(n.work_dir).st_uid == n.uid, n.work_dir
            assert n.ip.startswith(f"127.77.{ensemble.slot.n}.")
        assert c.masters[0].url == f"http://127.77.{ensemble.slot.n}.21:5050"
        assert c.agents[0].url == f"http://127.77.{ensemble.slot.n}.41:5051"
        # A process under a node's uid (as its tasks would run) and a cut.
        sleeper = ManagedProcess("sleeper", lambda: ["sleep", "600"], os.path.join(c.out_dir, "sleeper.log"),
                                 slot=c.slot, uid=c.agents[0].uid, cwd=c.agents[0].work_dir).start()
        assert proc_uid(sleeper.pid) == c.agents[0].uid
        c.cut_from_zk(c.masters[1])
        c.cut_from_zk(c.agents[0])
        assert len(iptables_rules_with_comment(c.slot.comment)) == 2
        c.heal(c.masters[1])
        rules = iptables_rules_with_comment(c.slot.comment)
        assert len(rules) == 1 and f"--uid-owner {c.agents[0].uid}" in rules[0], rules
    finally:
        c.stop()
    assert not iptables_rules_with_comment(ensemble.slot.comment), "stop() left iptables rules"
    assert not pids_of_uids(uids), "stop() left processes of the nodes' uids"
    assert ensemble.node(1).serving(), "a cluster on a shared ensemble must not stop it"


def test_slot_reaps_what_a_crashed_holder_left():
    slot = Slot.acquire()
    n = slot.n
    uid = slot.uid(95)
    sleeper = subprocess.Popen(["sleep", "600"], user=uid, group=uid, extra_groups=[], start_new_session=True)
    slot.record(sleeper.pid)
    iptables("-I", "OUTPUT", "-p", "tcp", "--dport", "2181", "-m", "owner", "--uid-owner", str(uid),
             "-m", "comment", "--comment", slot.comment, "-j", "DROP")
    # "Crash": the lock goes away with its holder, the state file stays.
    fcntl.flock(slot._lock_fd, fcntl.LOCK_UN)
    os.close(slot._lock_fd)
    slot.released = True
    again = Slot.acquire(preferred=n)
    try:
        assert again.n == n
        sleeper.wait(5)
        assert not proc_alive(sleeper.pid)
        assert not iptables_rules_with_comment(again.comment)
    finally:
        again.release()
        if sleeper.poll() is None:
            sleeper.kill()


def test_python_m_harness_zk_starts_and_stops_on_ctrl_c(request):
    name = request.node.nodeid
    p = subprocess.Popen([sys.executable, "-m", "harness", "zk", "--name", name], cwd=HERE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "Ctrl-C stops it." in text, text
        addrs = text.split("zookeeper:")[1].split()[0].split(",")
        from harness import four_letter

        for a in addrs:
            ip, port = a.split(":")
            assert "Mode:" in four_letter(ip, int(port), "srvr"), a
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 0, p.stdout.read()
        for a in addrs:
            ip, port = a.split(":")
            wait_until(lambda: port_free(ip, int(port)), 10, f"{a} to be free after Ctrl-C")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


def test_python_m_harness_up_runs_a_cluster_until_ctrl_c(request):
    name = request.node.nodeid
    p = subprocess.Popen([sys.executable, "-m", "harness", "up", "--masters", "1", "--agents", "1", "--name", name],
                         cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "Ctrl-C stops everything." in text, text
        master = [ln.split()[1] for ln in lines if ln.startswith("master:")]
        agent = [ln.split()[1] for ln in lines if ln.startswith("agent:")]
        assert len(master) == 1 and len(agent) == 1 and "LEADER" in text, text
        import requests

        state = requests.get(master[0] + "/state", timeout=5).json()
        assert [s["hostname"] for s in state["slaves"] if s["active"]] == [agent[0].split("//")[1].split(":")[0]]
        uids = [int(ln.split("uid ")[1].split(",")[0]) for ln in lines if "(uid " in ln]
        assert len(uids) == 2 and pids_of_uids(uids), text
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0, p.stdout.read()
        assert not pids_of_uids(uids), "processes of the nodes' uids outlived `harness up`"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
