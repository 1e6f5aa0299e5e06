"""`tepui marathon` instances beside a harness Cluster: each on 127.77.N.(60+i) port 8080, its own uid,
all with the cluster's ZooKeeper ensemble (`--zk <ensemble>/marathon`, `--master <ensemble>/mesos`).

    c = Cluster("my-test", masters=3, agents=2); c.start()
    ms = add_marathons(c, 2)                     # started; stopped by c.stop() (they are extras)
    leader = wait_marathon_leader(ms, 30)        # the instance whose /v2/leader names itself
"""

import requests

from .cluster import Node
from .util import wait_until

MARATHON_PORT = 8080


class MarathonNode(Node):
    role = "marathon"

    def argv(self):
        c = self.cluster
        return [
            c.bin, "marathon",
            f"--master={c.zk_url}",
            f"--zk={c.zk.zk_url('/marathon')}",
            f"--hostname={self.ip}", f"--http_address={self.ip}", f"--http_port={self.port}",
            f"--zk_session_timeout={int(round(c.session_timeout * 1000))}",
            # Quick reconciliation and launch timeouts keep failovers short in tests.
            "--reconciliation_initial_delay=3000",
            *self.extra_args,
        ]

    @property
    def address(self):
        return f"{self.ip}:{self.port}"

    def leader(self, timeout=2.0):
        """The `host:port` this instance's /v2/leader names (None if none or no answer)."""
        try:
            r = requests.get(self.url + "/v2/leader", timeout=timeout)
        except requests.RequestException:
            return None
        return r.json().get("leader") if r.status_code == 200 else None


def add_marathons(cluster, count, extra_args=()):
    nodes = []
    for i in range(1, count + 1):
        octet = 60 + i
        node = MarathonNode(cluster, f"marathon{i}", cluster.slot.ip(octet), MARATHON_PORT,
                            cluster.slot.uid(octet), extra_args)
        cluster.extras.append(node)
        nodes.append(node.start())
    return nodes


def wait_marathon_leader(nodes, timeout, exclude=()):
    """The running node that every running node agrees leads (and that is not in `exclude`)."""
    def agreed():
        running = [n for n in nodes if n.running() and n not in exclude]
        views = {n.leader() for n in running}
        if len(views) != 1:
            return None
        (leader,) = views
        return next((n for n in running if n.address == leader), None)
    return wait_until(agreed, timeout, "the Marathon instances to agree on a leader")
