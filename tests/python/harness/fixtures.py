"""pytest fixtures for the HA suites; a test module imports them:

    from harness.fixtures import ha_cluster, cluster  # noqa: F401

`ha_cluster` (module scope): 3 ZooKeeper nodes, 3 masters (--quorum=2), 2 agents, 2 s sessions.
`cluster` (per test): the same cluster, first brought back to full strength (cuts healed, dead
ZooKeeper nodes and tepui processes restarted, a leader with both agents active), with a marker
line in every node log; at teardown a snapshot of the cluster goes to <test artifacts>/cluster.txt.
"""

import pytest

from .checks import SESSION_TIMEOUT
from .cluster import Cluster
from .util import artifact_dir

MASTERS = 3
AGENTS = 2


def _start(name, **kwargs):
    c = Cluster(name, masters=MASTERS, agents=AGENTS, session_timeout=SESSION_TIMEOUT, **kwargs)
    try:
        c.start(timeout=90)
    except BaseException:
        c.stop()
        raise
    return c


@pytest.fixture(scope="module")
def ha_cluster(request):
    c = _start(request.node.nodeid + "__module")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(ha_cluster, request):
    ha_cluster.mark_logs(f"test {request.node.nodeid} setup")
    ha_cluster.ensure_healthy(timeout=60)
    ha_cluster.mark_logs(f"test {request.node.nodeid} begins")
    try:
        yield ha_cluster
    finally:
        ha_cluster.mark_logs(f"test {request.node.nodeid} ends")
        for m in list(ha_cluster.extras):
            m.process.stop(grace=3.0)
            if not m.running():
                ha_cluster.extras.remove(m)
        ha_cluster.heal_all()
        try:
            with open(f"{artifact_dir(request.node.nodeid)}/cluster.txt", "w") as f:
                f.write(ha_cluster.describe() + "\n")
        except Exception:  # noqa: BLE001 - diagnostics only
            pass
