"""Configuration as Mesos operators know it (crates/config, mesos-ha.md 4.3): a master and an agent
started from package-style configuration directories serve the effective values on /flags, with
the precedence command line > environment > configuration directory; every misconfiguration the
start-up checks catch exits 2 with one line on stderr that names the flag (or file) and the fix.
The last test counts masters in a real ZooKeeper (one node, harness/zk.py)."""

import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import TEPUI_BIN, wait_until

EXIT_USAGE = 2
START_DEADLINE = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def clean_env(**extra):
    """The test's environment without MESOS_*/MARATHON_* leaking in from outside, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESOS_", "MARATHON_"))}
    env.update(extra)
    return env


class Proc:
    """A tepui process with its output in a file, stopped by SIGTERM (then SIGKILL) at the end."""

    def __init__(self, tmp_path, name, args, env):
        self.log_path = tmp_path / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([TEPUI_BIN, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def get_flags(port, proc):
    def answer():
        assert proc.proc.poll() is None, f"exited with {proc.proc.returncode}:\n{proc.log()}"
        resp = requests.get(f"http://127.0.0.1:{port}/flags", timeout=2)
        return resp.status_code == 200 and resp.json()["flags"]
    return wait_until(answer, START_DEADLINE, f"/flags on port {port}")


def run_refused(args, env=None, cwd=None):
    """Runs tepui expecting a configuration error: exit 2 and exactly one line on stderr."""
    done = subprocess.run([TEPUI_BIN, *args], env=env or clean_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=10)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == EXIT_USAGE, (
        f"tepui {' '.join(args)} exited {done.returncode}, expected {EXIT_USAGE}; stderr:\n{done.stderr}")
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error: ' line, got:\n{done.stderr}"
    return lines[0]


def master_layout(root, port):
    """/etc as the Mesos packages lay it out: <root>/mesos/zk beside <root>/mesos-master/<flag>.
    The ZooKeeper named is a loopback port nobody listens on: /flags is served without it."""
    conf = root / "mesos-master"
    write(str(root / "mesos" / "zk"), f"zk://127.0.0.1:{free_port()}/mesos\n")
    write(str(conf / "quorum"), "1\n")
    write(str(conf / "work_dir"), str(root / "work") + "\n")
    write(str(conf / "ip"), "127.0.0.1\n")
    write(str(conf / "port"), f"{port}\n")
    write(str(conf / "hostname"), "file-host\n")
    write(str(conf / "allocation_interval"), "2secs\n")
    write(str(conf / "?no-log_auto_initialize"))
    write(str(conf / "quorum~"), "7\n")  # an editor backup: skipped
    return conf


def test_master_from_a_config_dir_with_env_and_command_line_overrides(tmp_path):
    port = free_port()
    conf = master_layout(tmp_path, port)
    zk = (tmp_path / "mesos" / "zk").read_text().strip()
    env = clean_env(MESOS_HOSTNAME="env-host", MESOS_ALLOCATION_INTERVAL="3secs")
    master = Proc(tmp_path, "master", ["master", f"--config_dir={conf}", "--allocation_interval=4secs"], env)
    try:
        flags = get_flags(port, master)
    finally:
        master.stop()
    assert flags["zk"] == zk, "zk comes from ../mesos/zk when nothing else sets it"
    assert flags["quorum"] == "1" and flags["registry"] == "replicated_log", flags
    assert flags["work_dir"] == str(tmp_path / "work")
    assert flags["port"] == str(port) and flags["ip"] == "127.0.0.1"
    assert flags["log_auto_initialize"] == "false", "?no-log_auto_initialize"
    assert flags["hostname"] == "env-host", "the environment overrides the file"
    assert flags["allocation_interval"] == "4secs", "the command line overrides the environment"


def test_config_dir_from_the_environment_and_file_urls(tmp_path):
    port = free_port()
    conf = master_layout(tmp_path, port)
    write(str(tmp_path / "secret-hostname"), "from-a-file\n")
    env = clean_env(MESOS_CONFIG_DIR=str(conf), MESOS_HOSTNAME=f"file://{tmp_path / 'secret-hostname'}")
    master = Proc(tmp_path, "master", ["master"], env)
    try:
        flags = get_flags(port, master)
    finally:
        master.stop()
    assert flags["hostname"] == "from-a-file" and flags["quorum"] == "1", flags


def test_agent_from_a_config_dir_with_attribute_and_resource_dirs(tmp_path):
    master_port, agent_port = free_port(), free_port()
    conf = tmp_path / "mesos-agent"
    write(str(conf / "ip"), "127.0.0.1")
    write(str(conf / "port"), str(agent_port))
    write(str(conf / "work_dir"), str(tmp_path / "agent-work"))
    write(str(conf / "?kill_tasks_on_stop"))
    write(str(conf / "attributes" / "rack"), "r1\n")
    write(str(conf / "attributes" / "zone"), "a\n")
    write(str(conf / "resources" / "cpus"), "2")
    write(str(conf / "resources" / "mem"), "512")
    write(str(conf / "registration_backoff_factor"), "100ms")
    write(str(tmp_path / "mesos" / "zk"), f"127.0.0.1:{master_port}\n")
    master = Proc(tmp_path, "master", ["master", "--ip=127.0.0.1", f"--port={master_port}"], clean_env())
    agent = Proc(tmp_path, "agent", ["agent", f"--config_dir={conf}"], clean_env())
    try:
        flags = get_flags(agent_port, agent)
        assert flags["attributes"] == "rack:r1;zone:a", flags
        assert flags["resources"] == "cpus:2;mem:512", flags
        assert flags["master"] == f"127.0.0.1:{master_port}", "master comes from ../mesos/zk"
        assert flags["kill_tasks_on_stop"] == "true", "?kill_tasks_on_stop"

        def registered():
            slaves = requests.get(f"http://127.0.0.1:{master_port}/state", timeout=2).json()["slaves"]
            return slaves and slaves[0]
        agent_info = wait_until(registered, START_DEADLINE, "the agent to register")
        assert agent_info["attributes"] == {"rack": "r1", "zone": "a"}, agent_info
        assert agent_info["resources"]["cpus"] == 2 and agent_info["resources"]["mem"] == 512, agent_info
    finally:
        agent.stop()
        master.stop()


def refused_cases(tmp):
    """(name, args, env, expected stderr fragments): each a misconfiguration an operator makes."""
    conf = tmp / "mesos-master"
    write(str(conf / "quorom"), "2\n")
    write(str(tmp / "not-a-dir"), "")
    env = clean_env()
    work = str(tmp / "work")
    return [
        ("unknown file", ["master", f"--config_dir={conf}"], env,
         [f"error: {conf}/quorom: unknown flag --quorom for tepui master", "did you mean --quorum?"]),
        ("unknown flag", ["master", "--quorom=2"], env, ["error: --quorom: unknown flag for tepui master; did you mean --quorum?"]),
        ("flag and alias", ["master", "--agent_ping_timeout=5secs", "--slave_ping_timeout=5secs"], env,
         ["error: --slave_ping_timeout: conflicts with --agent_ping_timeout", "give only --agent_ping_timeout"]),
        ("flag twice", ["master", "--port=5050", "--port=5051"], env, ["error: --port: given twice", "give it once"]),
        ("alias conflict in env", ["master"], clean_env(MESOS_AGENT_PING_TIMEOUT="5secs", MESOS_SLAVE_PING_TIMEOUT="6secs"),
         ["error: --agent_ping_timeout: MESOS_AGENT_PING_TIMEOUT and MESOS_SLAVE_PING_TIMEOUT are both set"]),
        ("quorum without zk", ["master", "--quorum=2"], env, ["error: --quorum: --quorum=2 has no effect without --zk", "drop --quorum"]),
        ("quorum with in_memory", ["master", "--zk=zk://127.0.0.1:2181/mesos", "--registry=in_memory", "--quorum=2"], env,
         ["error: --quorum: --quorum=2 has no effect with --registry=in_memory", "use --registry=replicated_log"]),
        ("quorum 0", ["master", "--zk=zk://127.0.0.1:2181/mesos", "--quorum=0", f"--work_dir={work}"], env,
         ["error: --quorum: 0 is not a majority", "set --quorum=1"]),
        ("master without work_dir", ["master", "--zk=zk://127.0.0.1:2181/mesos", "--quorum=1"], env,
         ["error: --work_dir: is required with --registry=replicated_log", "set --work_dir=/var/lib/mesos"]),
        ("work_dir not creatable", ["agent", "--master=127.0.0.1:5050", f"--work_dir={tmp / 'not-a-dir' / 'w'}"], env,
         [f"error: --work_dir: cannot create {tmp / 'not-a-dir' / 'w'}", "set --work_dir to a writable directory"]),
        ("agent without work_dir", ["agent", "--master=127.0.0.1:5050"], env,
         ["error: --work_dir: is required", "set --work_dir=/var/lib/mesos"]),
        ("agent without master", ["agent", f"--work_dir={work}"], env, ["error: --master: is required; set --master="]),
        ("master advertising loopback", ["master", "--zk=zk://10.0.0.5:2181/mesos", "--quorum=2", f"--work_dir={work}",
                                         "--ip=127.0.0.1"], env,
         ["error: --ip: this master would advertise 127.0.0.1 to other hosts through ZooKeeper at 10.0.0.5:2181",
          "set --ip (or --advertise_ip) to this host's address"]),
        ("agent advertising loopback", ["agent", "--master=zk://10.0.0.5:2181/mesos", f"--work_dir={work}", "--ip=127.0.0.1"],
         env, ["error: --ip: this agent would advertise 127.0.0.1 to other hosts through ZooKeeper at 10.0.0.5:2181",
               "set --ip (or --advertise_ip) to this host's address"]),
        ("marathon advertising loopback", ["marathon", "--master=zk://10.0.0.5:2181/mesos", "--zk=zk://10.0.0.5:2181/marathon"], env,
         ["error: --hostname: this Marathon would advertise 127.0.0.1", "set --hostname to this host's address"]),
        ("unreadable file url", ["master", f"--zk=file://{tmp / 'missing-zk'}"], env,
         [f"error: --zk: cannot read {tmp / 'missing-zk'}"]),
        ("bad boolean", ["marathon", "--master=127.0.0.1:5050", "--disable_ha=maybe"], env,
         ["error: --disable_ha: 'maybe' is not a boolean"]),
    ]


def test_misconfigurations_exit_2_with_the_fix(tmp_path):
    started = time.monotonic()
    for name, args, env, fragments in refused_cases(tmp_path):
        line = run_refused(args, env)
        for fragment in fragments:
            assert fragment in line, f"{name}: {fragment!r} not in {line!r}"
    assert time.monotonic() - started < 20, "configuration errors must be reported at once"


def test_loopback_setups_keep_working(tmp_path):
    """All on loopback (tests, local clusters): the loopback checks stay silent."""
    port = free_port()
    master = Proc(tmp_path, "master", ["master", "--ip=127.0.0.1", f"--port={port}",
                                       f"--zk=zk://localhost:{free_port()}/mesos", "--quorum=1",
                                       f"--work_dir={tmp_path / 'work'}"], clean_env())
    try:
        assert get_flags(port, master)["quorum"] == "1"
    finally:
        master.stop()


@pytest.fixture(scope="module")
def zookeeper():
    assert os.geteuid() == 0, "the ZooKeeper harness needs root (per-node uids), as CI runs it"
    from harness.zk import ZKEnsemble
    zk = ZKEnsemble("test_config-zk", size=1)
    try:
        zk.start(timeout=30)
        yield zk
    finally:
        zk.stop()


def test_quorum_that_is_not_a_majority_of_the_registered_masters(tmp_path, zookeeper):
    """Two masters' log replicas are already registered: a third with --quorum=1 would let two
    disjoint majorities form; it refuses, names the count and the quorum to set (mesos-ha.md 4.1)."""
    client = zookeeper.client()
    path = f"/config-{os.getpid()}-{int(time.time())}"
    try:
        for n in (2, 3):
            client.create(f"{path}/log_replicas/log_replicas_", f"log-replica(1)@127.0.0.{n}:5050".encode(),
                          sequence=True, makepath=True)
        port = free_port()
        started = time.monotonic()
        done = subprocess.run(
            [TEPUI_BIN, "master", "--ip=127.0.0.1", f"--port={port}", f"--zk={zookeeper.zk_url(path)}", "--quorum=1",
             f"--work_dir={tmp_path / 'work'}", "--zk_session_timeout=1secs"],
            env=clean_env(), capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        client.stop()
    assert done.returncode == EXIT_USAGE, f"exit {done.returncode}; stderr tail:\n{done.stderr[-2000:]}"
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert errors and "--quorum=1 is not a majority of the 3 masters registered in ZooKeeper" in errors[-1], done.stderr[-2000:]
    assert "set --quorum=2" in errors[-1], errors[-1]
    assert elapsed < 15, f"took {elapsed:.1f}s to refuse"
