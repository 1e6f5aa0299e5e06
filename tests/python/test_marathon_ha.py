"""Marathon in HA (marathon-api.md 8): 3 ZooKeeper nodes, 3 masters --quorum=2, 2 agents and two
`tepui marathon` instances electing a leader under `<zk>/marathon`.

A POST to the standby is proxied to the leader (X-Marathon-Via); a rolling deployment during which
both the Marathon leader and the Mesos leader are kill -9'd completes under the new leaders with the
same framework id, and at no point (checked on the master's /state while it runs) and not at the end
does any instance run twice or go missing.
"""

import collections
import time

import pytest
import requests

from harness import Cluster, wait_until
from harness.marathon import add_marathons, wait_marathon_leader

pytestmark = pytest.mark.timeout(300)

N = 6
APP = {"id": "/ha-web", "cmd": "sleep 600", "cpus": 0.01, "mem": 8, "disk": 0, "instances": N,
       "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}}


def marathon_get(node, path, timeout=5):
    r = requests.get(node.url + path, timeout=timeout)
    assert r.status_code == 200, f"GET {node.url}{path}: {r.status_code} {r.text[:300]}"
    return r.json()


def mesos_running(cluster):
    """Running tasks of /ha-web on the leading master, by instance id (task id before `._app`)."""
    leader = cluster.wait_leader(30)
    running = collections.Counter()
    framework_ids = set()
    for f in leader.state()["frameworks"]:
        for t in f["tasks"]:
            if t["state"] == "TASK_RUNNING" and t["id"].startswith("ha-web."):
                running[t["id"].split("._app")[0]] += 1
                framework_ids.add(f["id"])
    return running, framework_ids


def test_a_deployment_survives_kill9_of_both_leaders_and_standbys_proxy(request):
    cluster = Cluster(request.node.name, masters=3, agents=2, agent_resources="cpus:2;mem:1024;disk:1024")
    try:
        cluster.start()
        marathons = add_marathons(cluster, 2)
        leader = wait_marathon_leader(marathons, 60)
        standby = next(m for m in marathons if m is not leader)

        # A POST to the standby reaches the leader.
        r = requests.post(standby.url + "/v2/apps", json=APP, timeout=10)
        assert r.status_code == 201, r.text
        assert leader.address in r.headers.get("X-Marathon-Leader", ""), dict(r.headers)
        assert standby.address in r.headers.get("X-Marathon-Via", ""), dict(r.headers)

        def deployed(node, version=None):
            app = marathon_get(node, "/v2/apps/ha-web")["app"]
            tasks = [t for t in app["tasks"] if t["state"] == "TASK_RUNNING"]
            if app["deployments"] or len(tasks) != N:
                return None
            if version and any(t["version"] != version for t in tasks):
                return None
            return app

        before = wait_until(lambda: deployed(leader), 90, "ha-web deployed")
        framework_id = marathon_get(leader, "/v2/info")["frameworkId"]
        assert framework_id

        # A rolling restart; kill -9 both leaders while it runs.
        r = requests.put(leader.url + "/v2/apps/ha-web", json={"cmd": "sleep 601"}, timeout=10)
        assert r.status_code == 200, r.text
        new_version = r.json()["version"]
        wait_until(lambda: marathon_get(leader, "/v2/deployments"), 10, "the deployment listed")
        mesos_leader = cluster.wait_leader(10)
        cluster.kill9(leader)
        cluster.kill9(mesos_leader)
        cluster.restart(leader)  # its supervisor brings it back, as a standby

        new_leader = wait_marathon_leader(marathons, 60, exclude=[])
        # While the deployment finishes: no instance ever runs twice.
        deadline = time.monotonic() + 120
        final = None
        while time.monotonic() < deadline:
            try:
                running, _ = mesos_running(cluster)
                assert all(c == 1 for c in running.values()), f"an instance runs twice: {running}"
                assert len(running) <= N * 1.5, f"over maximumOverCapacity: {running}"
                final = deployed(new_leader, new_version)
            except (requests.RequestException, AssertionError) as e:
                if "runs twice" in str(e) or "over maximumOverCapacity" in str(e):
                    raise
                final = None
            if final:
                break
            time.sleep(0.2)
        assert final, "the deployment completed under the new leaders"
        assert marathon_get(new_leader, "/v2/info")["frameworkId"] == framework_id
        assert marathon_get(new_leader, "/v2/deployments") == []

        seen = {}

        def mesos_agrees():
            running, framework_ids = mesos_running(cluster)
            seen.update(running=dict(running), frameworks=framework_ids)
            return len(running) == N and framework_ids == {framework_id} and all(c == 1 for c in running.values())
        try:
            wait_until(mesos_agrees, 60, f"the master to run exactly {N} instances of ha-web under {framework_id}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen {seen}; marathon tasks {[t['id'] for t in final['tasks']]}") from None
        old_ids = {t["id"] for t in before["tasks"]}
        assert old_ids.isdisjoint({t["id"] for t in final["tasks"]}), "every old instance was replaced"
    finally:
        cluster.stop()
