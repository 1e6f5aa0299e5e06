"""Shared plumbing of the HA harness: waits, artifact paths, slots (addresses, uids), processes.

A *slot* is a small integer N (1..250) held with an exclusive flock for as long as a cluster lives,
so that clusters of parallel tests (xdist workers, other people's runs on the same machine) never
share an address, a port or a uid:

    ZooKeeper node i (1..3)   127.77.N.(10+i)   ports 2181 (client), 2888 (peer), 3888 (election)
    master j                  127.77.N.(20+j)   port 5050, uid 20000 + 100*N + 20 + j
    agent k                   127.77.N.(40+k)   port 5051, uid 20000 + 100*N + 40 + k

Every process the harness starts is recorded in /tmp/tepui-ha/slot-N.json (pid and kernel start
time); the next holder of a slot kills what a crashed holder left behind (and deletes its iptables
rules, which carry the comment `tepui-ha-slot-N`).
"""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUTPUT_ROOT = os.environ.get("TEPUI_TEST_OUTPUT") or os.path.join(REPO, ".test-output")
STATE_DIR = os.environ.get("TEPUI_HA_STATE_DIR", "/tmp/tepui-ha")

SLOT_MIN, SLOT_MAX = 1, 250
UID_BASE = 20000


def tepui_bin():
    return os.environ.get("TEPUI_BIN") or os.path.join(REPO, "target", "debug", "tepui")


# ---------------------------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------------------------
class Deadline:
    """A point in time (monotonic clock): `Deadline(5)` is five seconds from now."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.at - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.at


def wait_until(predicate, timeout, message, interval=0.05):
    """Poll predicate() until it returns a truthy value (returned); AssertionError after timeout.

    `timeout` is seconds or a Deadline. Exceptions from predicate count as "not yet"; the last one
    is part of the timeout message.
    """
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    last_error = None
    while True:
        try:
            value = predicate()
            last_error = None
            if value:
                return value
        except AssertionError as e:
            last_error = e
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_error = e
        if deadline.expired():
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {deadline.seconds:.1f}s: {message}{detail}")
        time.sleep(min(interval, max(0.001, deadline.remaining())))


# ---------------------------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------------------------
def artifact_dir(name):
    """`<output root>/<sanitized name>/` (same naming as conftest.artifact_dir), created 0755."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "harness"
    path = os.path.join(OUTPUT_ROOT, safe)
    os.makedirs(path, exist_ok=True)
    for p in (OUTPUT_ROOT, path):
        try:
            os.chmod(p, os.stat(p).st_mode | 0o755)
        except OSError:
            pass
    return path


def log_tail(path, lines=40):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def traversable_by_others(path):
    """True if every directory from / down to path has the `x` bit for others (and the file, if
    a file, `r`/`x`): a process under an unprivileged uid can then reach it."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    cur = os.sep
    for part in parts[1:]:
        try:
            st = os.stat(cur)
        except OSError:
            return False
        if not st.st_mode & stat.S_IXOTH:
            return False
        cur = os.path.join(cur, part)
    try:
        st = os.stat(path)
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return bool(st.st_mode & stat.S_IXOTH)
    return bool(st.st_mode & stat.S_IROTH)


# ---------------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------------
def proc_start_time(pid):
    """Kernel start time (clock ticks since boot) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields resume after the last ')'.
    rest = data[data.rindex(")") + 2 :].split()
    return int(rest[19])


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()[0]


def proc_alive(pid, start_time=None):
    """pid exists, is not a zombie, and (if given) has this start time."""
    st = proc_state(pid)
    if st is None or st in ("Z", "X"):
        return False
    return start_time is None or proc_start_time(pid) == start_time


def proc_uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def pids_of_uids(uids):
    """Live (non-zombie) pids whose real uid is in uids."""
    uids = set(uids)
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if proc_uid(pid) in uids and proc_alive(pid):
            out.append(pid)
    return out


def find_pids(argv):
    """Live pids whose command line is exactly argv (a list)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and proc_cmdline(int(name)) == list(argv) and proc_alive(int(name)):
            out.append(int(name))
    return out


def kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_uids(uids, timeout=5.0):
    """SIGKILL every process owned by these (harness-only) uids, by pid; wait until gone."""
    deadline = Deadline(timeout)
    while True:
        pids = pids_of_uids(uids)
        if not pids:
            return []
        if deadline.expired():
            return pids
        kill_pids(pids)
        time.sleep(0.05)


def port_free(ip, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def port_open(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# iptables
# ---------------------------------------------------------------------------------------------
def iptables(*args, check=True):
    """Run `iptables -w 5 ARGS`; retried a few times (concurrent nft transactions can clash)."""
    cmd = [shutil.which("iptables") or "/usr/sbin/iptables", "-w", "5", *args]
    last = None
    for attempt in range(5):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            raise RuntimeError("iptables is not installed (apt-get install -y iptables)") from None
        if out.returncode == 0:
            return out.stdout
        last = out
        if "Resource temporarily unavailable" not in out.stderr and "try again" not in out.stderr.lower():
            break
        time.sleep(0.1 * (attempt + 1))
    if check:
        raise RuntimeError(f"{' '.join(cmd)} failed ({last.returncode}): {last.stderr.strip()}")
    return None


def iptables_rules_with_comment(comment, chain="OUTPUT"):
    """`-A ...` lines of chain whose comment is exactly `comment`."""
    out = iptables("-S", chain, check=False) or ""
    rules = []
    for line in out.splitlines():
        m = re.search(r'--comment\s+("?)([^"\s]+)\1', line)
        if line.startswith("-A ") and m and m.group(2) == comment:
            rules.append(line)
    return rules


def delete_rules_with_comment(comment, chain="OUTPUT"):
    for line in iptables_rules_with_comment(comment, chain):
        args = line.split()[2:]  # drop "-A OUTPUT"
        args = [a.strip('"') for a in args]
        iptables("-D", chain, *args, check=False)


# ---------------------------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------------------------
class Slot:
    """An exclusively held slot N (see module docstring). Use Slot.acquire()."""

    def __init__(self, n, lock_fd):
        self.n = n
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self._records = []
        self.state_path = os.path.join(STATE_DIR, f"slot-{n}.json")
        self.comment = f"tepui-ha-slot-{n}"
        self.released = False

    # addresses and uids
    def ip(self, last_octet):
        return f"127.77.{self.n}.{last_octet}"

    def uid(self, last_octet):
        return UID_BASE + 100 * self.n + last_octet

    def all_uids(self):
        return [self.uid(o) for o in range(1, 100)]

    @classmethod
    def acquire(cls, preferred=None):
        os.makedirs(STATE_DIR, exist_ok=True)
        candidates = list(range(SLOT_MIN, SLOT_MAX + 1))
        if preferred:
            start = (preferred - SLOT_MIN) % len(candidates)
        else:
            start = (os.getpid() * 7919 + int(time.time() * 1000)) % len(candidates)
        candidates = candidates[start:] + candidates[:start]
        for n in candidates:
            path = os.path.join(STATE_DIR, f"slot-{n}.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            slot = cls(n, fd)
            slot._reap_leftovers()
            if slot._addresses_free():
                slot._save()
                return slot
            slot.release()
        raise RuntimeError(f"no free slot in {STATE_DIR} (all of 127.77.{SLOT_MIN}-{SLOT_MAX}.* busy)")

    def _addresses_free(self):
        checks = [(self.ip(10 + i), p) for i in (1, 2, 3) for p in (2181, 2888, 3888)]
        checks += [(self.ip(20 + j), 5050) for j in range(1, 6)]
        checks += [(self.ip(40 + k), 5051) for k in range(1, 6)]
        return all(port_free(ip, port) for ip, port in checks)

    def _reap_leftovers(self):
        """Kill what a previous (crashed) holder of this slot left running; drop its rules."""
        try:
            with open(self.state_path) as f:
                records = json.load(f).get("processes", [])
        except (OSError, ValueError):
            records = []
        stale = [r["pid"] for r in records if proc_alive(r["pid"], r.get("start_time"))]
        kill_pids(stale)
        kill_uids(self.all_uids())
        delete_rules_with_comment(self.comment)
        try:
            os.unlink(self.state_path)
        except OSError:
            pass

    def record(self, pid):
        with self._mutex:
            self._records.append({"pid": pid, "start_time": proc_start_time(pid)})
            self._save()

    def _save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"owner_pid": os.getpid(), "processes": self._records}, f)
        os.replace(tmp, self.state_path)

    def release(self):
        if self.released:
            return
        self.released = True
        try:
            os.unlink(self.state_path)
        except OSError:
            pass
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(self._lock_fd)


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
class ManagedProcess:
    """One OS process (re)started by the harness, with its output appended to log_path.

    uid/gid: run under that numeric uid (and gid = uid, no supplementary groups); None = ours.
    """

    def __init__(self, name, argv_fn, log_path, slot=None, uid=None, env=None, cwd=None):
        self.name = name
        self._argv_fn = argv_fn  # callable -> argv (re-evaluated at each start)
        self.log_path = log_path
        self.slot = slot
        self.uid = uid
        self.env = env
        self.cwd = cwd
        self.proc = None
        self.starts = 0
        self.started_at = None
        self.history = []  # (pid, returncode) of earlier incarnations

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        assert not self.running(), f"{self.name} is already running (pid {self.pid})"
        if self.proc is not None:
            self.history.append((self.proc.pid, self.proc.poll()))
        argv = self._argv_fn()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            log.write(
                f"\n===== [harness] start #{self.starts} at {time.strftime('%H:%M:%S')}"
                f"{'' if self.uid is None else f' as uid {self.uid}'}: {' '.join(argv)}\n".encode()
            )
            log.flush()
            kwargs = {}
            if self.uid is not None:
                kwargs.update(user=self.uid, group=self.uid, extra_groups=[])
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True, **kwargs,
            )
        self.started_at = time.monotonic()
        if self.slot is not None:
            self.slot.record(self.proc.pid)
        return self

    @property
    def pid(self):
        return None if self.proc is None else self.proc.pid

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        """SIGKILL the process (not its children: tasks of an agent survive, as in real life)."""
        self.signal(signal.SIGKILL)
        return self.wait_exit(10)

    def sigterm(self, wait=None):
        self.signal(signal.SIGTERM)
        if wait is not None:
            return self.wait_exit(wait)
        return None

    def wait_exit(self, timeout):
        """Wait for the process to exit; return its exit code (negative = signal), or None."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace; return the exit code."""
        if self.proc is None:
            return None
        if self.running():
            self.signal(signal.SIGTERM)
            if self.wait_exit(grace) is None:
                self.signal(signal.SIGKILL)
                self.wait_exit(10)
        return self.proc.poll()

    log_offset = 0  # where the current incarnation's output starts in log_path

    def log_text(self):
        """The whole log (every incarnation)."""
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def current_log(self):
        """The output of the current (or last) incarnation only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        return log_tail(self.log_path, lines)

    def __repr__(self):
        return f"<{self.name} pid={self.pid} rc={self.returncode}>"


def record_timing(test, what, seconds):
    """Append `test  what  seconds` to <output root>/ha-timings.txt (shared by xdist workers)."""
    os.makedirs(OUTPUT_ROOT, exist_ok=True)
    line = f"{test}\t{what}\t{seconds:.3f}s\n"
    with open(os.path.join(OUTPUT_ROOT, "ha-timings.txt"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        fcntl.flock(f, fcntl.LOCK_UN)
    print(f"[timing] {test}: {what} = {seconds:.3f}s")


def observe(duration, check, what, interval=0.2):
    """Call check() repeatedly for `duration` seconds (an observation window, for "nothing
    changes" assertions); an AssertionError from check fails at once, with the elapsed time."""
    t0 = time.monotonic()
    rounds = 0
    while True:
        elapsed = time.monotonic() - t0
        try:
            check()
        except AssertionError as e:
            raise AssertionError(f"{what}: after {elapsed:.2f}s of {duration:.1f}s: {e}") from None
        rounds += 1
        if elapsed >= duration:
            return rounds
        time.sleep(min(interval, max(0.0, duration - elapsed)))
