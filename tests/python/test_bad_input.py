"""Bad input to the master's v1 scheduler API (spec sections 1, 7, 8): precise 4xx/5xx answers,
terminal task updates for invalid launches, and never a crash or a hang (checked after each case).
"""

import getpass
import json
import socket
import uuid

import pytest
import requests

from mesos_http import SchedulerStream, TERMINAL_STATES, command_task, scalar, unique_id

VALID_SUBSCRIBE = {
    "type": "SUBSCRIBE",
    "subscribe": {"framework_info": {"user": getpass.getuser(), "name": "bad-input-test"}},
}


@pytest.fixture
def cluster(dev_module):
    """The module's shared `tepui dev`; after every case the master must still be healthy."""
    yield dev_module
    dev_module.assert_running()
    resp = requests.get(dev_module.master_url + "/health", timeout=5)
    assert resp.status_code == 200, f"master /health after the case: {resp.status_code}"
    agents = dev_module.active_agents()
    assert len(agents) == 1, f"master lost its agent: {agents}"


@pytest.fixture
def framework(cluster):
    """A subscribed v1 framework (torn down after the test)."""
    stream = SchedulerStream(
        cluster.master_url,
        {"user": getpass.getuser(), "name": "bad-input-test", "failover_timeout": 0.0},
    )
    yield stream
    stream.teardown()


def post(cluster, body, headers=None, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        cluster.master_url + "/api/v1/scheduler", data=data, headers=headers or {}, timeout=10, **kw
    )


JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def test_malformed_json_is_400_naming_the_problem(cluster):
    resp = post(cluster, b'{"type": "SUBSCRIBE", "subscribe": {', JSON)
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert resp.text.strip(), "400 without a reason in the body"
    assert "json" in resp.text.lower() or "parse" in resp.text.lower(), resp.text


def test_text_plain_content_type_is_415(cluster):
    resp = post(cluster, VALID_SUBSCRIBE, {"Content-Type": "text/plain", "Accept": "application/json"})
    assert resp.status_code == 415, (resp.status_code, resp.text)


def test_missing_content_type_is_400(cluster):
    resp = post(cluster, json.dumps(VALID_SUBSCRIBE).encode(), {"Accept": "application/json"})
    assert "Content-Type" not in resp.request.headers
    assert resp.status_code == 400, (resp.status_code, resp.text)


def test_unacceptable_accept_is_406(cluster):
    resp = post(cluster, VALID_SUBSCRIBE, {"Content-Type": "application/json", "Accept": "text/html"},
                stream=True)
    try:
        assert resp.status_code == 406, (resp.status_code, resp.headers)
    finally:
        resp.close()


def test_unknown_call_type_is_400_naming_it(cluster):
    resp = post(cluster, {"type": "FOO"}, JSON)
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert "FOO" in resp.text, resp.text


def test_call_type_unknown_is_501(cluster):
    resp = post(cluster, {"type": "UNKNOWN"}, JSON)
    assert resp.status_code == 501, (resp.status_code, resp.text)


def test_call_without_stream_id_is_400(framework):
    resp = framework.post(
        {"type": "REVIVE", "framework_id": {"value": framework.framework_id}, "revive": {}},
        with_stream_id=False,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert "stream" in resp.text.lower(), f"400 body should name Mesos-Stream-Id: {resp.text!r}"


def test_call_with_stale_stream_id_is_400(framework):
    resp = framework.post(
        {"type": "REVIVE", "framework_id": {"value": framework.framework_id}, "revive": {}},
        headers={"Mesos-Stream-Id": str(uuid.uuid4())},
    )
    assert resp.status_code == 400, (resp.status_code, resp.text)


def test_call_for_unknown_framework_is_4xx_naming_it(cluster):
    fw_id = f"no-such-framework-{uuid.uuid4().hex[:8]}"
    resp = post(
        cluster,
        {"type": "REVIVE", "framework_id": {"value": fw_id}, "revive": {}},
        dict(JSON, **{"Mesos-Stream-Id": str(uuid.uuid4())}),
    )
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert fw_id in resp.text, f"body should name the framework {fw_id}: {resp.text!r}"


def test_subscribe_with_stream_id_is_400(cluster):
    resp = post(cluster, VALID_SUBSCRIBE, dict(JSON, **{"Mesos-Stream-Id": str(uuid.uuid4())}),
                stream=True)
    try:
        assert resp.status_code == 400, (resp.status_code, resp.headers)
    finally:
        resp.close()


def _raw_request(cluster, body_sent, content_length, half_close, timeout=10):
    """Send a POST over a raw socket (optionally closing our write side after it); return the
    status code of the answer."""
    head = (
        "POST /api/v1/scheduler HTTP/1.1\r\n"
        f"Host: {cluster.ip}:{cluster.master_port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()
    with socket.create_connection((cluster.ip, cluster.master_port), timeout=timeout) as s:
        s.sendall(head + body_sent)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            raise AssertionError(f"no answer within {timeout}s to a truncated request") from None
    assert data.startswith(b"HTTP/1."), f"no HTTP response to a truncated request: {data[:200]!r}"
    return int(data.split(b" ", 2)[1])


def test_body_shorter_than_content_length_is_400(cluster):
    prefix = json.dumps(VALID_SUBSCRIBE).encode()[:25]
    # The client sends a JSON prefix, announces more, and closes its write side (EOF mid-body).
    assert _raw_request(cluster, prefix, content_length=len(prefix) + 100, half_close=True) == 400
    # The server stays up and keeps serving.
    resp = post(cluster, b"{", JSON)
    assert resp.status_code == 400, (resp.status_code, resp.text)


def test_truncated_json_body_is_400(cluster):
    prefix = json.dumps(VALID_SUBSCRIBE).encode()[:25]
    # The whole (truncated) JSON arrives as announced; the connection stays open.
    assert _raw_request(cluster, prefix, content_length=len(prefix), half_close=False) == 400


def test_accept_of_unknown_offer_loses_the_task(cluster, framework):
    task_id = unique_id("bad-offer")
    resp = framework.post({
        "type": "ACCEPT",
        "framework_id": {"value": framework.framework_id},
        "accept": {
            "offer_ids": [{"value": f"no-such-offer-{uuid.uuid4().hex[:8]}"}],
            "operations": [{"type": "LAUNCH", "launch": {
                "task_infos": [command_task(task_id, cluster.agent_id, "true")]}}],
        },
    })
    assert resp.status_code == 202, (resp.status_code, resp.text)
    status = framework.wait_for_update(task_id, lambda s: True, 15, f"an UPDATE for {task_id}")
    assert status["state"] in TERMINAL_STATES, status
    assert status["state"] in ("TASK_LOST", "TASK_DROPPED") or status.get("reason") == "REASON_INVALID_OFFERS", status


def test_launch_beyond_offer_cpus_is_task_error_naming_cpus(cluster, framework):
    offer = framework.take_offer(30)
    too_many = scalar(offer, "cpus") + 1.0
    task_id = unique_id("too-big")
    framework.accept_launch(offer, [command_task(task_id, offer["agent_id"]["value"], "true", cpus=too_many)])
    status = framework.wait_for_update(task_id, lambda s: True, 15, f"an UPDATE for {task_id}")
    assert status["state"] in ("TASK_ERROR", "TASK_LOST"), status
    assert "cpus" in status.get("message", ""), f"message should name cpus: {status}"
    # Nothing of the task reached the agent.
    for fw in cluster.agent_state().get("frameworks", []):
        for ex in fw.get("executors", []) + fw.get("completed_executors", []):
            assert ex.get("id") != task_id, f"invalid task reached the agent: {ex}"
