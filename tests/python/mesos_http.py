"""A small client for the Mesos v1 scheduler HTTP API, written for tests.

It deliberately does its own RecordIO parsing (spec section 7) so that a malformed stream from
the master shows up as a test failure with a precise message.
"""

import json
import queue
import threading
import time
import uuid

import requests

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
TERMINAL_STATES = {
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
}


class RecordIOError(Exception):
    pass


class RecordIODecoder:
    """Incremental RecordIO decoder: `<decimal length>\\n<exactly length bytes>`, repeated."""

    MAX_LENGTH_DIGITS = 20

    def __init__(self):
        self._buf = b""

    def feed(self, data):
        """Add bytes; return the list of complete records (bytes) now available."""
        self._buf += data
        records = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.MAX_LENGTH_DIGITS or not self._buf.isdigit() and self._buf:
                    raise RecordIOError(f"bad RecordIO length prefix: {self._buf[:40]!r}")
                return records
            prefix = self._buf[:nl]
            if not prefix.isdigit():
                raise RecordIOError(f"bad RecordIO length prefix: {prefix[:40]!r}")
            length = int(prefix)
            if len(self._buf) < nl + 1 + length:
                return records
            records.append(self._buf[nl + 1 : nl + 1 + length])
            self._buf = self._buf[nl + 1 + length :]

    @property
    def pending(self):
        return self._buf


def decode_event(record):
    try:
        event = json.loads(record.decode("utf-8"))
    except ValueError as e:
        raise RecordIOError(f"record is not JSON ({e}): {record[:200]!r}") from e
    if not isinstance(event, dict) or "type" not in event:
        raise RecordIOError(f"record has no 'type': {record[:200]!r}")
    return event


class _StreamClosed:
    def __init__(self, error=None):
        self.error = error


class SchedulerStream:
    """A v1 scheduler subscription: SUBSCRIBE on one connection, calls on others."""

    def __init__(self, master_url, framework_info, connect_timeout=10.0, auto_ack=True, allow_redirects=True):
        """Subscribe (a resubscription when framework_info has an id). With auto_ack, every UPDATE
        carrying a uuid is acknowledged as it is read (like pymesos's implicit acknowledgements):
        the agent sends a task's next update only after the previous one was acknowledged. Without
        allow_redirects, a standby's 307 is an error naming its Location."""
        self.master_url = master_url.rstrip("/")
        self.auto_ack = auto_ack
        self.framework_id = None
        self.framework_info = framework_info
        self.events = []  # every event received, in order
        self._queue = queue.Queue()
        self._cursor = 0
        self._offers_done = set()  # offer ids taken or declined through take_offer
        self._closed = None
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info}}
        if framework_info.get("id"):
            body["framework_id"] = framework_info["id"]
        self.response = requests.post(
            self.scheduler_url,
            data=json.dumps(body),
            headers=JSON_HEADERS,
            stream=True,
            timeout=(connect_timeout, None),
            allow_redirects=allow_redirects,
        )
        if self.response.status_code != 200:
            text = self.response.text
            self.response.close()
            raise AssertionError(
                f"SUBSCRIBE to {self.scheduler_url} answered {self.response.status_code} "
                f"(Location {self.response.headers.get('Location')!r}): {text[:300]!r}")
        self.stream_id = self.response.headers.get("Mesos-Stream-Id")
        if not self.stream_id:
            self.response.close()
            raise AssertionError(f"SUBSCRIBE response has no Mesos-Stream-Id: {dict(self.response.headers)}")
        self._reader = threading.Thread(target=self._read_loop, name="recordio-reader", daemon=True)
        self._reader.start()
        subscribed = self.wait_for(lambda e: e["type"] in ("SUBSCRIBED", "ERROR"), 10, "SUBSCRIBED event")
        if subscribed["type"] == "ERROR":
            self.close()
            raise AssertionError(f"SUBSCRIBE got ERROR: {subscribed}")
        self.framework_id = subscribed["subscribed"]["framework_id"]["value"]
        self.subscribed = subscribed["subscribed"]

    @property
    def scheduler_url(self):
        return self.master_url + "/api/v1/scheduler"

    def _read_loop(self):
        decoder = RecordIODecoder()
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                for record in decoder.feed(chunk):
                    self._queue.put(decode_event(record))
            if decoder.pending:
                raise RecordIOError(f"stream ended inside a record: {decoder.pending[:200]!r}")
            self._queue.put(_StreamClosed())
        except Exception as e:  # noqa: BLE001 - reported to the waiting test
            self._queue.put(_StreamClosed(e))

    def _drain(self, timeout):
        item = self._queue.get(timeout=timeout)
        if isinstance(item, _StreamClosed):
            self._closed = item
            return None
        self.events.append(item)
        if self.auto_ack and self.framework_id and item["type"] == "UPDATE":
            self.acknowledge(item["update"]["status"])
        return item

    def wait_for(self, predicate, timeout, what):
        """Return the first event (not returned before) matching predicate, within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.events):
                event = self.events[self._cursor]
                self._cursor += 1
                if predicate(event):
                    return event
            if self._closed is not None:
                raise AssertionError(
                    f"stream closed while waiting for {what} (error: {self._closed.error!r}); "
                    f"events so far: {[e['type'] for e in self.events]}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"events so far: {summarize(self.events)}"
                )
            try:
                self._drain(min(remaining, 0.5))
            except queue.Empty:
                pass

    def take_offer(self, timeout, what="an offer", fits=lambda offer: True):
        """The oldest offer of this stream that fits and was neither taken nor declined before nor
        rescinded, looking at every event received, also those a wait for something else went
        past: the framework holds such an offer (there is no offer timeout), so the allocator will
        not offer its resources again. Offers that do not fit are declined as they are seen
        (refuse 1 s), so the allocator can move their resources."""
        deadline = time.monotonic() + timeout
        while True:
            rescinded = {e["rescind"]["offer_id"]["value"] for e in self.events if e["type"] == "RESCIND"}
            chosen, others = None, []
            for event in self.events:
                if event["type"] != "OFFERS":
                    continue
                for offer in event["offers"]["offers"]:
                    offer_id = offer["id"]["value"]
                    if offer_id in self._offers_done or offer_id in rescinded:
                        continue
                    if not fits(offer):
                        others.append(offer["id"])
                        self._offers_done.add(offer_id)
                    elif chosen is None:
                        chosen = offer
                        self._offers_done.add(offer_id)
            if others:
                self.call("DECLINE", {"offer_ids": others, "filters": {"refuse_seconds": 1}})
            if chosen is not None:
                return chosen
            if self._closed is not None:
                raise AssertionError(f"stream closed while waiting for {what} (error: {self._closed.error!r})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; events so far: "
                                     f"{summarize(self.events)}")
            try:
                self._drain(min(remaining, 0.5))
            except queue.Empty:
                pass

    def wait_for_update(self, task_id, predicate, timeout, what):
        def match(e):
            return (
                e["type"] == "UPDATE"
                and e["update"]["status"]["task_id"]["value"] == task_id
                and predicate(e["update"]["status"])
            )

        return self.wait_for(match, timeout, what)["update"]["status"]

    def updates_for(self, task_id):
        return [
            e["update"]["status"]
            for e in self.events
            if e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == task_id
        ]

    def post(self, body, headers=None, with_stream_id=True):
        h = dict(JSON_HEADERS)
        if with_stream_id:
            h["Mesos-Stream-Id"] = self.stream_id
        h.update(headers or {})
        return requests.post(self.scheduler_url, data=json.dumps(body), headers=h, timeout=10)

    def call(self, call_type, payload=None, expect=202):
        body = {"type": call_type, "framework_id": {"value": self.framework_id}}
        if payload is not None:
            body[call_type.lower()] = payload
        resp = self.post(body)
        assert resp.status_code == expect, f"{call_type} answered {resp.status_code}: {resp.text!r}"
        return resp

    def acknowledge(self, status):
        if "uuid" in status:
            self.call(
                "ACKNOWLEDGE",
                {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]},
            )

    def accept_launch(self, offer, tasks, refuse_seconds=None):
        payload = {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        }
        if refuse_seconds is not None:
            payload["filters"] = {"refuse_seconds": refuse_seconds}
        return self.call("ACCEPT", payload)

    def teardown(self):
        """TEARDOWN the framework (best effort) and close the stream."""
        try:
            if self._closed is None:
                self.post({"type": "TEARDOWN", "framework_id": {"value": self.framework_id}})
        except requests.RequestException:
            pass
        self.close()

    def close(self):
        self.response.close()


def summarize(events, limit=20):
    out = []
    for e in events[-limit:]:
        if e["type"] == "UPDATE":
            s = e["update"]["status"]
            out.append(f"UPDATE({s['task_id']['value']}:{s.get('state')}:{s.get('message', '')})")
        else:
            out.append(e["type"])
    return out


def scalar(offer, name):
    return sum(
        r.get("scalar", {}).get("value", 0.0)
        for r in offer.get("resources", [])
        if r.get("name") == name and r.get("type") == "SCALAR"
    )


def scalar_resource(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def command_task(task_id, agent_id, command, cpus=0.1, mem=32.0):
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": [scalar_resource("cpus", cpus), scalar_resource("mem", mem)],
        "command": {"shell": True, "value": command},
    }


def unique_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
