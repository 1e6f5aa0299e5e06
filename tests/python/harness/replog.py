"""Checks shared by the replicated-log suites (tests/python/test_replog_*.py; replicated-log.md 1, 6,
7 and the operational guide's quorum changes)."""

import contextlib
import time

from .util import Deadline, wait_until

# The first start of a log needs every replica (auto-initialization, replicated-log.md 6.4); a
# recovery round that misses a peer times out after 10 s, so leave room for two rounds.
LOG_START_DEADLINE = 45.0
# kill -9 of the leader: its znode goes when its session expires (2 s), then the writer's election
# (implicit promise on a quorum, fill) and the registry fetch + store of the new MasterInfo.
REPLOG_FAILOVER_DEADLINE = 20.0
# A wiped replica catching up (one recovery round plus the fill of every position).
CATCH_UP_DEADLINE = 30.0
REREGISTER_DEADLINE = 20.0


def registry_agent_ids(registry):
    return {a["id"]["value"] for a in registry.get("agents", []) if a.get("id")}


def registry_hostnames(registry):
    return {a.get("hostname") for a in registry.get("agents", [])}


def assert_registry(master, expect_ids, master_id=None, context=""):
    """GET /registrar(1)/registry on `master` (which must lead): well formed, every id of
    expect_ids listed under `agents`, and `master.id` == master_id (if given). Returns it."""
    registry = master.registry()
    where = f"{master.name}'s /registrar(1)/registry{f' ({context})' if context else ''}"
    assert registry.get("format_version") == 1, f"{where}: format_version {registry.get('format_version')!r}"
    assert isinstance(registry.get("agents"), list), f"{where}: no 'agents' list: {str(registry)[:300]}"
    ids = registry_agent_ids(registry)
    missing = sorted(set(expect_ids) - ids)
    assert not missing, (
        f"{where} lacks {len(missing)} of the {len(set(expect_ids))} agent ids that were told REGISTERED: "
        f"{missing[:10]}{' ...' if len(missing) > 10 else ''} (it lists {len(ids)} agents)")
    if master_id is not None:
        got = (registry.get("master") or {}).get("id")
        assert got == master_id, f"{where}: master.id is {got!r}, expected {master_id!r} (the leader's own id)"
    return registry


def leader_id(master):
    """The id a leading master reports in /state (cross-checked with its startup log line)."""
    state = master.state()
    mid = state.get("id")
    logged = master.logged_master_id()
    assert mid and (logged is None or logged == mid), f"{master.name}: /state id {mid!r}, log says {logged!r}"
    return mid


def agent_ids(agents):
    """{agent: id} from each agent's own /state (all must be registered)."""
    out = {}
    for a in agents:
        aid = wait_until(lambda a=a: a.agent_id, 10, f"{a.name}'s /state to report its id")
        out[a] = aid
    return out


def wait_log_metrics(masters, timeout, recovered=1, ensemble_size=None):
    """Wait until every master reports registrar/log/recovered == recovered (and, if given,
    registrar/log/ensemble_size == ensemble_size); returns {name: (recovered, size)}."""
    masters = list(masters)

    def check():
        seen = {m.name: m.log_metrics() for m in masters}
        ok = all(r == recovered and (ensemble_size is None or s == ensemble_size) for r, s in seen.values())
        if not ok:
            raise AssertionError(f"(recovered, ensemble_size) per master: {seen}")
        return seen

    want = f"registrar/log/recovered={recovered}" + (
        f" and ensemble_size={ensemble_size}" if ensemble_size is not None else "")
    return wait_until(check, timeout, f"{want} on {[m.name for m in masters]}", interval=0.1)


@contextlib.contextmanager
def agents_held_off(cluster, agents=None):
    """While inside, the agents cannot open connections to any master (their (re)registrations get
    a TCP reset), so a new leader's registry shows what it recovered from the log, not what
    reregistering agents re-admitted."""
    agents = list(agents if agents is not None else [a for a in cluster.agents if a.running()])
    for a in agents:
        cluster.cut_from_masters(a)
    try:
        yield agents
    finally:
        for a in agents:
            cluster.heal(a)


def kill9_leader_and_wait(cluster, timeout=REPLOG_FAILOVER_DEADLINE):
    """kill -9 the leader; wait for another master to lead and finish recovery. Returns
    (old, new, seconds)."""
    old = cluster.wait_leader(10)
    t0 = time.monotonic()
    assert cluster.kill9(old) == -9, f"{old.name} did not die of SIGKILL"
    new = cluster.wait_leader(timeout, exclude=[old])
    return old, new, time.monotonic() - t0


def restart_with_quorum(cluster, master, quorum, timeout=LOG_START_DEADLINE, graceful=True):
    """Stop one master (SIGTERM, like a supervisor restart) and start it again with --quorum."""
    if master.running():
        if graceful:
            rc = cluster.sigterm(master, wait=15)
            assert rc is not None, f"{master.name} did not exit within 15 s of SIGTERM:\n{master.tail(20)}"
        else:
            cluster.kill9(master)
    master.quorum = quorum
    master.start()
    deadline = Deadline(timeout)
    wait_until(master.healthy, deadline, f"restarted {master.name} (--quorum={quorum}) to answer /health:\n"
               f"{master.tail(20)}")
    return master
