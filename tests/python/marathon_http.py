"""Helpers for the Marathon suites: REST calls, waiting on app state, reading `/v2/events`.

The reference client `marathon` 0.13.0 (marathon-api.md 9) is imported through `marathon_client()`,
which first aliases `collections.Iterable` (removed in Python 3.10; the wheel still uses it).
"""

import collections
import collections.abc
import json
import queue
import threading

import requests

from conftest import wait_until

HTTP_TIMEOUT = 10


def marathon_client(url):
    for name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    from marathon import MarathonClient  # noqa: E402 - after the alias
    return MarathonClient(url, timeout=HTTP_TIMEOUT)


def get_app(url, app_id):
    resp = requests.get(f"{url}/v2/apps/{app_id.lstrip('/')}", timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, f"GET app {app_id}: {resp.status_code} {resp.text[:300]}"
    return resp.json()["app"]


def deploy(url, method, path, body, expect=(200, 201)):
    resp = requests.request(method, url + path, json=body, timeout=HTTP_TIMEOUT)
    assert resp.status_code in expect, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
    return resp


def running_tasks(app):
    return [t for t in app.get("tasks", []) if t.get("state") == "TASK_RUNNING"]


def wait_deployed(url, app_id, instances, timeout=60):
    """Until the app has no deployment and exactly `instances` tasks running; returns the app."""
    def settled():
        app = get_app(url, app_id)
        if app["deployments"] or len(running_tasks(app)) != instances or app["tasksRunning"] != instances:
            return None
        return app
    return wait_until(settled, timeout, f"{app_id} deployed with {instances} running tasks")


class EventStream:
    """`GET /v2/events` read on a thread; events land in a queue as (eventType, payload)."""

    def __init__(self, url, event_types=()):
        params = [("event_type", t) for t in event_types]
        self.response = requests.get(
            f"{url}/v2/events", params=params, headers={"Accept": "text/event-stream"},
            stream=True, timeout=(5, None),
        )
        assert self.response.status_code == 200, self.response.text[:300]
        self.events = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        event_type = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line.startswith("event:"):
                    event_type = line[len("event:"):].strip()
                elif line.startswith("data:"):
                    payload = json.loads(line[len("data:"):].strip())
                    self.events.put((event_type, payload))
        except Exception:  # noqa: BLE001 - the stream is closed at teardown
            pass

    def next(self, timeout):
        return self.events.get(timeout=timeout)

    def close(self):
        self.response.close()
