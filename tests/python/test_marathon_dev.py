"""Marathon inside `tepui dev` (marathon-api.md): real master, agent and task processes, driven over
real HTTP and with the reference Python client.

Covers the issue's real-process list for one machine: a seed-style `hello` app restarted after every
exit with `hello` in its sandbox stdout; scale 0 -> 20 -> 3; a rolling upgrade whose capacity bounds
are checked at every status update; a failing health check replacing its task; bad input answered
with clear 4xx bodies and nothing half-applied. (Leader kills and standby proxying: test_marathon_ha.)
"""

import math
import os
import queue
import time

import requests

from conftest import get_json, wait_until
from marathon_http import (EventStream, deploy, get_app, marathon_client, running_tasks,
                           wait_deployed)

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
            "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
SMALL = {"cpus": 0.01, "mem": 8, "disk": 0}


def sandbox_of(dev, task_id):
    state = dev.agent_state()
    for fw in state.get("frameworks", []) + state.get("completed_frameworks", []):
        for ex in fw.get("executors", []) + fw.get("completed_executors", []):
            if ex.get("id") == task_id and ex.get("directory"):
                return ex["directory"]
    return None


def read_file(dev, path):
    resp = requests.get(f"{dev.agent_url}/files/read", params={"path": path, "offset": 0}, timeout=5)
    if resp.status_code != 200:
        return None
    return resp.json()["data"]


def test_hello_app_is_restarted_after_every_exit_and_says_hello(dev_marathon):
    url = dev_marathon.marathon_url
    resp = deploy(url, "POST", "/v2/apps", {
        "id": "hello2", "cmd": "echo hello; sleep 1", "mem": 16, "cpus": 0.1, "instances": 1,
        "disk": 0.0, "ports": [0], "backoffSeconds": 0,
    }, expect=(201,))
    assert resp.headers["Location"].endswith("/v2/apps/hello2")
    assert resp.headers.get("Marathon-Deployment-Id")
    created = resp.json()
    assert created["id"] == "/hello2"
    assert created["deployments"] and created["deployments"][0]["id"] == resp.headers["Marathon-Deployment-Id"]

    # Every exit (TASK_FINISHED after `sleep 1`) is followed by a new task: at least three runs.
    seen = set()

    def three_runs():
        for task in get_app(url, "/hello2").get("tasks", []):
            seen.add(task["id"])
        return len(seen) >= 3

    wait_until(three_runs, 90, "hello2 relaunched after its exits (3 distinct tasks)")
    app = get_app(url, "/hello2")
    assert app["instances"] == 1
    assert len(app["tasks"]) <= 1, "never more than the one instance"
    # Its sandbox stdout holds hello (any of the runs).
    def said_hello():
        for task_id in seen:
            sandbox = sandbox_of(dev_marathon, task_id)
            if sandbox and "hello" in (read_file(dev_marathon, sandbox + "/stdout") or ""):
                return True
        return False

    wait_until(said_hello, 30, "a hello2 sandbox whose stdout holds hello")
    # The service port was assigned from 10000.. and the task got a host port.
    port = app["portDefinitions"][0]["port"]
    assert 10000 <= port <= 20000, app["portDefinitions"]


def test_scale_from_0_to_20_to_3(dev_marathon):
    url = dev_marathon.marathon_url
    deploy(url, "POST", "/v2/apps", dict(SMALL, id="/scaled", cmd="sleep 600", instances=0), expect=(201,))
    wait_deployed(url, "/scaled", 0)
    deploy(url, "PUT", "/v2/apps/scaled", {"instances": 20})
    wait_deployed(url, "/scaled", 20, timeout=120)
    app = deploy(url, "PUT", "/v2/apps/scaled", {"instances": 3}).json()
    assert app["deploymentId"]
    final = wait_deployed(url, "/scaled", 3, timeout=60)
    # Mesos agrees: exactly three of its tasks run.
    def mesos_running():
        tasks = [t for f in dev_marathon.master_state()["frameworks"] for t in f["tasks"]
                 if t["state"] == "TASK_RUNNING" and t["id"].startswith("scaled.")]
        return len(tasks) == 3
    wait_until(mesos_running, 30, "the master to show exactly 3 running tasks of /scaled")
    # YOUNGEST_FIRST kept the oldest three.
    assert final["killSelection"] == "YOUNGEST_FIRST"


def test_rolling_upgrade_never_leaves_its_capacity_bounds(dev_marathon):
    url = dev_marathon.marathon_url
    n, min_health, over = 4, 0.5, 0.0
    deploy(url, "POST", "/v2/apps", dict(
        SMALL, id="/rolling", cmd="sleep 600", instances=n,
        upgradeStrategy={"minimumHealthCapacity": min_health, "maximumOverCapacity": over},
    ), expect=(201,))
    before = wait_deployed(url, "/rolling", n)
    min_healthy = math.ceil(n * min_health)
    max_capacity = math.floor(n * (1 + over))
    # Task states as the event stream tells them, seeded with what runs now.
    states = {t["id"]: t["state"] for t in before["tasks"]}
    stream = EventStream(url, ["status_update_event", "deployment_success"])
    try:
        result = deploy(url, "PUT", "/v2/apps/rolling", {"cmd": "sleep 601"}).json()
        checked = 0
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "the rolling upgrade did not finish"
            try:
                kind, event = stream.next(timeout=5)
            except queue.Empty:
                continue
            if kind == "deployment_success" and event.get("id") == result["deploymentId"]:
                break
            if kind != "status_update_event" or event.get("appId") != "/rolling":
                continue
            states[event["taskId"]] = event["taskStatus"]
            active = [s for s in states.values() if s not in TERMINAL]
            running = [s for s in states.values() if s == "TASK_RUNNING"]
            assert len(active) <= max_capacity, f"over capacity: {states}"
            assert len(running) >= min_healthy, f"below minimum health: {states}"
            checked += 1
        assert checked >= n, "saw every replacement's updates"
    finally:
        stream.close()
    after = wait_deployed(url, "/rolling", n)
    assert {t["id"] for t in after["tasks"]}.isdisjoint({t["id"] for t in before["tasks"]})
    assert all(t["version"] == after["version"] for t in after["tasks"])


def test_a_failing_health_check_replaces_the_task(dev_marathon):
    url = dev_marathon.marathon_url
    # The task serves its sandbox; /ok exists until the test deletes it.
    deploy(url, "POST", "/v2/apps", dict(
        SMALL, id="/checked", mem=32, instances=1,
        cmd="echo ok > ok; exec python3 -m http.server --bind 0.0.0.0 $PORT0",
        healthChecks=[{"protocol": "HTTP", "path": "/ok", "portIndex": 0, "gracePeriodSeconds": 30,
                       "intervalSeconds": 2, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}],
    ), expect=(201,))
    def healthy_task():
        app = get_app(url, "/checked")
        tasks = [t for t in running_tasks(app)
                 if any(r.get("alive") for r in t.get("healthCheckResults", []))]
        return tasks[0] if app["tasksHealthy"] == 1 and tasks else None
    first = wait_until(healthy_task, 60, "/checked healthy")
    sandbox = wait_until(lambda: sandbox_of(dev_marathon, first["id"]), 10, "its sandbox")
    os.remove(os.path.join(sandbox, "ok"))

    def replaced():
        task = healthy_task()
        return task if task and task["id"] != first["id"] else None
    second = wait_until(replaced, 60, "a healthy replacement of the unhealthy task")
    # The replacement may turn healthy while the unhealthy task is still being killed.
    wait_until(lambda: first["id"] not in {t["id"] for t in get_app(url, "/checked")["tasks"]}, 30,
               "the unhealthy task killed")
    assert get_app(url, "/checked")["instances"] == 1 and second


def test_bad_input_gets_clear_4xx_and_nothing_is_half_applied(dev_marathon):
    url = dev_marathon.marathon_url
    resp = requests.post(url + "/v2/apps", data="{not json", headers={"Content-Type": "application/json"},
                         timeout=10)
    assert resp.status_code == 400 and "message" in resp.json()
    resp = requests.post(url + "/v2/apps", json={"id": "Bad_Id", "cmd": "true"}, timeout=10)
    assert resp.status_code == 422, resp.text
    assert any(d["path"] == "/id" for d in resp.json()["details"]), resp.text
    resp = requests.post(url + "/v2/apps", json={"id": "typed", "cmd": "true", "cpus": "x"}, timeout=10)
    assert resp.status_code == 400, resp.text
    assert resp.json()["details"][0]["path"] == "/cpus"
    resp = requests.post(url + "/v2/apps", json={"id": "cons", "cmd": "true",
                                                 "constraints": [["hostname", "MAX_PER"]]}, timeout=10)
    assert resp.status_code == 422, resp.text
    resp = requests.post(url + "/v2/apps", json={"id": "both", "cmd": "true", "args": ["x"]}, timeout=10)
    assert resp.status_code == 422, resp.text
    assert get_json(url + "/v2/apps")["apps"] == [], "nothing was created"
    assert get_json(url + "/v2/deployments") == []
    resp = requests.get(url + "/v2/apps/missing", timeout=10)
    assert resp.status_code == 404 and resp.json()["message"] == "App '/missing' does not exist"


def test_the_reference_python_client_works(dev_marathon):
    url = dev_marathon.marathon_url
    client = marathon_client(url)
    from marathon.models import MarathonApp  # after marathon_client() set the collections alias
    info = client.get_info()
    assert info.name == "marathon" and info.elected
    client.create_app("client-app", MarathonApp(cmd="sleep 600", instances=2, **SMALL))
    wait_deployed(url, "/client-app", 2)
    apps = client.list_apps(embed_tasks=True)
    assert [a.id for a in apps] == ["/client-app"]
    assert client.get_app("client-app").tasks_running == 2
    client.scale_app("/client-app", instances=1)
    wait_deployed(url, "/client-app", 1)
    tasks = client.list_tasks("client-app")
    assert len(tasks) == 1
    client.kill_task("client-app", tasks[0].id, scale=False)
    wait_until(lambda: any(t.id != tasks[0].id for t in client.list_tasks("client-app")), 60,
               "a replacement for the killed task")
    assert client.list_deployments() is not None
    assert client.ping() is not None
    client.delete_app("client-app")
    wait_until(lambda: client.list_apps() == [], 60, "the app deleted")


def test_a_command_health_check_runs_on_the_agent(dev_marathon):
    """COMMAND checks travel in the TaskInfo; the agent runs them and reports `healthy`; when they
    keep failing the agent kills the task and Marathon replaces it."""
    url = dev_marathon.marathon_url
    deploy(url, "POST", "/v2/apps", dict(
        SMALL, id="/cmd-checked", instances=1, cmd="touch ok; sleep 600",
        healthChecks=[{"protocol": "COMMAND", "command": {"value": "test -e ok"}, "gracePeriodSeconds": 30,
                       "intervalSeconds": 2, "timeoutSeconds": 1, "maxConsecutiveFailures": 2,
                       "delaySeconds": 0}],
    ), expect=(201,))

    def healthy_task():
        app = get_app(url, "/cmd-checked")
        return running_tasks(app)[0] if app["tasksHealthy"] == 1 and not app["deployments"] else None
    first = wait_until(healthy_task, 60, "/cmd-checked healthy through the agent's check")
    sandbox = wait_until(lambda: sandbox_of(dev_marathon, first["id"]), 10, "its sandbox")
    os.remove(os.path.join(sandbox, "ok"))

    def replaced():
        task = healthy_task()
        return task if task and task["id"] != first["id"] else None
    wait_until(replaced, 60, "a healthy replacement after the agent killed the unhealthy task")
    statuses = [t for f in dev_marathon.master_state()["completed_frameworks"] + dev_marathon.master_state()["frameworks"]
                for t in f.get("completed_tasks", []) if t["id"] == first["id"]]
    assert statuses and statuses[0]["state"] == "TASK_KILLED", statuses


def test_the_queue_says_why_an_app_waits_and_its_delay_can_be_reset(dev_marathon):
    url = dev_marathon.marathon_url
    deploy(url, "POST", "/v2/apps", dict(SMALL, id="/too-big", cmd="sleep 600", cpus=1000), expect=(201,))
    deploy(url, "POST", "/v2/apps", dict(SMALL, id="/nowhere", cmd="sleep 600",
                                         constraints=[["hostname", "LIKE", "no-such-host"]]), expect=(201,))

    def reasons():
        queue = get_json(url + "/v2/queue")["queue"]
        found = {}
        for item in queue:
            summary = item["processedOffersSummary"]
            declined = [r["reason"] for r in summary.get("rejectSummaryLastOffers", []) if r.get("declined")]
            if declined:
                found[item["app"]["id"]] = declined
        return found if {"/too-big", "/nowhere"} <= set(found) else None

    found = wait_until(reasons, 30, "both waiting apps to show why offers were declined")
    assert "InsufficientCpus" in found["/too-big"], found
    assert any("Constraint" in r for r in found["/nowhere"]), found
    assert requests.delete(url + "/v2/queue/too-big/delay", timeout=10).status_code == 204
    assert requests.delete(url + "/v2/queue/not-queued/delay", timeout=10).status_code == 404
