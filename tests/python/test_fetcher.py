"""The Mesos fetcher (`CommandInfo.uris`, Marathon's `fetch`) on a real `tepui dev`: artifacts
served over real HTTP by a local server, and a file on the agent, land in the task's sandbox
before its command runs; archives are extracted (tar.gz and zip), an executable file is made
executable, Marathon's `destPath` (Mesos' `output_file`) names the saved file; a URI that cannot
be fetched fails the task with the URI named, and Marathon reports it as the app's last task
failure; a task killed while fetching ends TASK_KILLED at once; a URI with `cache: true` is
downloaded once for all the instances of an app.
"""

import os
import socket
import threading
import zipfile

import pytest

from conftest import wait_until
from marathon_http import deploy, get_app, wait_deployed
from static_server import script_tarball, serve
from test_marathon_dev import read_file, sandbox_of

SMALL = {"cpus": 0.01, "mem": 8, "disk": 0}


@pytest.fixture
def artifacts(tmp_path):
    """A local HTTP server over a directory holding app.tar.gz (bin/run.sh), conf.zip
    (conf/app.conf) and tool (a script): yields (base URL, server; `server.requests` lists the
    paths asked for)."""
    root = tmp_path / "www"
    root.mkdir()
    script_tarball(root / "app.tar.gz", "bin/run.sh", "#!/bin/sh\necho run-from-archive\n")
    with zipfile.ZipFile(root / "conf.zip", "w") as z:
        z.writestr("conf/app.conf", "setting=zipped\n")
    (root / "tool").write_text("#!/bin/sh\necho tool-ran\n")

    base, server = serve(root)
    try:
        yield base, server
    finally:
        server.shutdown()
        server.server_close()


def test_fetched_artifacts_are_in_the_sandbox_before_the_command_runs(dev_marathon, artifacts, tmp_path):
    url = dev_marathon.marathon_url
    base, _ = artifacts
    local = tmp_path / "local.txt"
    local.write_text("from-the-agent\n")
    os.chmod(tmp_path, 0o755)
    deploy(url, "POST", "/v2/apps", {
        "id": "/fetching", "instances": 1, **SMALL,
        "cmd": "bin/run.sh && ./tool && cat conf/app.conf renamed.txt && test ! -e ./nothing; sleep 600",
        "fetch": [
            {"uri": f"{base}/app.tar.gz"},
            {"uri": f"{base}/conf.zip"},
            {"uri": f"{base}/tool", "executable": True},
            {"uri": f"file://{local}", "destPath": "renamed.txt"},
        ],
    }, expect=(201,))
    app = wait_deployed(url, "/fetching", 1)
    task_id = app["tasks"][0]["id"]
    sandbox = wait_until(lambda: sandbox_of(dev_marathon, task_id), 10, f"the sandbox of {task_id}")

    def printed():
        out = read_file(dev_marathon, f"{sandbox}/stdout") or ""
        return out if "from-the-agent" in out else None

    out = wait_until(printed, 20, "the command's output from the fetched files")
    assert out.splitlines() == ["run-from-archive", "tool-ran", "setting=zipped", "from-the-agent"], out
    # The fetcher says what it did in the sandbox's stderr, as the Mesos fetcher does.
    err = read_file(dev_marathon, f"{sandbox}/stderr") or ""
    assert f"Fetching URI '{base}/app.tar.gz'" in err and "Extracted" in err, err


def test_a_uri_that_cannot_be_fetched_fails_the_task_naming_it(dev_marathon, artifacts):
    url = dev_marathon.marathon_url
    base, _ = artifacts
    missing = f"{base}/no-such-artifact.tgz"
    deploy(url, "POST", "/v2/apps", {
        "id": "/unfetchable", "instances": 1, **SMALL, "cmd": "sleep 600", "backoffSeconds": 600,
        "fetch": [{"uri": missing}],
    }, expect=(201,))

    def failure():
        return get_app(url, "/unfetchable").get("lastTaskFailure")

    last = wait_until(failure, 30, "the app's last task failure")
    assert last["state"] == "TASK_FAILED", last
    assert "Failed to fetch" in last["message"] and missing in last["message"] and "404" in last["message"], last
    assert get_app(url, "/unfetchable")["tasksRunning"] == 0


@pytest.fixture
def stalled_url():
    """A URL whose server accepts the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/artifact.tgz"
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_task_killed_while_fetching_ends_killed_without_waiting_for_the_download(dev_marathon, stalled_url):
    """The fetch would wait for the stalled server for a minute (the stall timeout); removing the
    app kills the task, which stops the fetch: the task ends TASK_KILLED (the reason,
    REASON_TASK_KILLED_DURING_LAUNCH, is checked by the agent core's tests) and its command never
    ran."""
    url = dev_marathon.marathon_url
    deploy(url, "POST", "/v2/apps", {
        "id": "/stalled", "instances": 1, **SMALL, "cmd": "echo should-not-run; sleep 600",
        "fetch": [{"uri": stalled_url}],
    }, expect=(201,))
    staging = wait_until(lambda: get_app(url, "/stalled").get("tasks"), 20, "a launching task of /stalled")
    task_id = staging[0]["id"]
    assert staging[0]["state"] in ("TASK_STAGING", "TASK_STARTING"), staging
    deploy(url, "DELETE", "/v2/apps/stalled", None, expect=(200,))

    def ended():
        for fw in dev_marathon.master_state().get("frameworks", []):
            for t in fw.get("completed_tasks", []):
                if t["id"] == task_id:
                    return t
        return None

    # Well within the fetcher's 60 s stall timeout, after which it would have failed on its own.
    task = wait_until(ended, 20, f"{task_id} among the master's completed tasks")
    assert task["state"] == "TASK_KILLED", task
    sandbox = sandbox_of(dev_marathon, task_id)
    assert sandbox is None or "should-not-run" not in (read_file(dev_marathon, f"{sandbox}/stdout") or "")


def test_a_cached_uri_is_downloaded_once_for_every_instance(dev_marathon, artifacts):
    url = dev_marathon.marathon_url
    base, server = artifacts
    deploy(url, "POST", "/v2/apps", {
        "id": "/cached", "instances": 3, **SMALL, "cmd": "bin/run.sh && ./tool; sleep 600",
        "fetch": [{"uri": f"{base}/app.tar.gz", "cache": True}, {"uri": f"{base}/tool", "executable": True}],
    }, expect=(201,))
    app = wait_deployed(url, "/cached", 3)
    for task in app["tasks"]:
        sandbox = wait_until(lambda: sandbox_of(dev_marathon, task["id"]), 10, f"the sandbox of {task['id']}")
        wait_until(lambda: (read_file(dev_marathon, f"{sandbox}/stdout") or "").splitlines()
                   == ["run-from-archive", "tool-ran"], 20, f"{task['id']}'s output from its fetched files")
    assert server.requests.count("/app.tar.gz") == 1, server.requests
    assert server.requests.count("/tool") == 3, server.requests
