"""Real-process HA test harness: a ZooKeeper ensemble and tepui masters/agents under own uids.

    from harness import Cluster, ZKEnsemble
    with Cluster("demo", masters=3, agents=2) as c:
        print(c.leader().url)

By hand: `cd tests/python && python -m harness up --masters 3 --agents 2` (as root), or
`python -m harness zk` for just the ensemble. See cluster.py, zk.py and util.py.
"""

from .cluster import Agent, Cluster, Master, SplitBrain, SplitBrainMonitor
from .util import Deadline, Slot, artifact_dir, wait_until
from .zk import ZKEnsemble, four_letter

__all__ = [
    "Agent", "Cluster", "Deadline", "Master", "Slot", "SplitBrain", "SplitBrainMonitor",
    "ZKEnsemble", "artifact_dir", "four_letter", "wait_until",
]
