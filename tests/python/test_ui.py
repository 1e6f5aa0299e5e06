"""The web UIs in a real headless Chromium (issue 7): Marathon's UI on `tepui dev` (create an app
through the form, see it running, open its sandbox in the master's UI and see `hello` in stdout, a
validation error next to its field, scale, destroy), the master's
UI (the app's task, its sandbox, `hello` in stdout, followed as it grows), a standby master's UI
sending the browser to the leader's, and the leader's UI following a failover by itself when the
leader is killed. Screenshots of each page land in <test output>/screenshots/.
"""

import os
import signal
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from browser import Browser
from conftest import wait_until
from marathon_http import deploy, get_app

pytestmark = pytest.mark.timeout(240)


def app_row(b, app_id):
    return f'[data-testid=app-row][data-app-id="{app_id}"]'


def test_marathon_ui_creates_scales_and_destroys_an_app(dev_marathon, request):
    url = dev_marathon.marathon_url
    with Browser(request.node.name) as b:
        b.open(url + "/")
        b.wait_css("#create-app")
        b.screenshot("marathon-apps-empty")

        # A validation error from the API is shown next to its field.
        b.click("#create-app")
        b.fill("#app-id", "Bad_Id")
        b.fill("#app-cmd", "true")
        b.click("#submit-app")
        error = b.wait_css("[data-error-for=id]")
        assert error.text.strip(), "the id error is shown"
        b.screenshot("marathon-form-error")

        b.fill("#app-id", "ui-hello")
        b.fill("#app-cmd", "echo hello; sleep 600")
        b.fill("#app-cpus", "0.1")
        b.fill("#app-mem", "16")
        b.fill("#app-disk", "0")
        b.fill("#app-instances", "1")
        b.click("#submit-app")
        # The form leads to the new app's page; it reaches 1 / 1 running there.
        b.wait(lambda d: "1 / 1" in b.text_of("#app-summary [data-testid=app-instances]"), "ui-hello 1 / 1 on its page")
        b.screenshot("marathon-app-created")
        b.open(url + "/ui/#/apps")
        row = app_row(b, "/ui-hello")
        b.wait(lambda d: "1 / 1" in b.text_of(row + " [data-testid=app-instances]"), "ui-hello 1 / 1 running")
        b.wait(lambda d: "running" in b.text_of(row + " [data-testid=app-status]").lower(), "ui-hello running")
        b.screenshot("marathon-apps-running")

        # Its sandbox, through the master's UI: `hello` in stdout.
        task_id = wait_until(lambda: (get_app(url, "/ui-hello")["tasks"] or [{}])[0].get("id"), 30, "its task id")
        b.open(dev_marathon.master_url + "/")
        b.click(f'[data-testid=task-row][data-task-id="{task_id}"] [data-testid=sandbox-link]')
        b.click_link_text("stdout")
        b.wait(lambda d: "hello" in b.text_of("#file-content"), "hello in the form-created app's stdout")
        b.screenshot("master-sandbox-of-ui-hello")

        # The detail page lists its task; scale to 2.
        b.open(url + "/ui/#/apps")
        b.click(row + " a")
        b.wait_css("[data-testid=task-row]")
        b.screenshot("marathon-app-detail")
        b.click("#scale-app")
        b.fill("#scale-input", "2")
        b.click("#scale-confirm")
        wait_until(lambda: get_app(url, "/ui-hello")["tasksRunning"] == 2, 60, "scaled to 2")
        b.wait(lambda d: len(b.css("[data-testid=task-row]")) == 2, "two task rows")
        b.screenshot("marathon-app-scaled")

        # Destroy it.
        b.click("#destroy-app")
        b.click("#destroy-confirm")
        wait_until(lambda: requests.get(url + "/v2/apps/ui-hello", timeout=5).status_code == 404, 60,
                   "ui-hello destroyed")
        b.open(url + "/ui/")
        b.wait(lambda d: not b.css(row), "the app row gone")
        b.screenshot("marathon-apps-after-destroy")


def test_master_ui_shows_the_task_and_follows_its_stdout(dev_marathon, request):
    deploy(dev_marathon.marathon_url, "POST", "/v2/apps", {
        "id": "tail", "cmd": "echo hello; i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.2; done",
        "cpus": 0.05, "mem": 16, "disk": 0, "instances": 1}, expect=(201,))
    wait_until(lambda: get_app(dev_marathon.marathon_url, "/tail")["tasksRunning"] == 1, 60, "tail running")
    with Browser(request.node.name) as b:
        b.open(dev_marathon.master_url + "/")
        b.wait(lambda d: b.text_of("#leader").strip(), "the leader shown")
        assert b.text_of("#version").strip()
        b.wait_css("[data-testid=agent-row]")
        b.screenshot("master-home")
        b.wait_css("[data-testid=task-row]")
        b.screenshot("master-tasks")
        b.click("[data-testid=task-row] [data-testid=sandbox-link]")
        b.click_link_text("stdout")
        b.wait(lambda d: "hello" in b.text_of("#file-content"), "hello in stdout")
        first = b.text_of("#file-content").count("line-")
        b.wait(lambda d: b.text_of("#file-content").count("line-") > first + 3, "stdout followed as it grows")
        b.screenshot("master-sandbox-stdout")


def test_a_standby_masters_ui_lands_on_the_leaders(request):
    from harness import Cluster

    cluster = Cluster(request.node.name, masters=3, agents=1)
    try:
        cluster.start()
        leader = cluster.wait_leader(30)
        standby = next(m for m in cluster.masters if m is not leader)
        with Browser(request.node.name) as b:
            b.open(standby.url + "/")
            b.wait(lambda d: d.current_url.startswith(leader.url), f"the browser sent to {leader.url}")
            b.wait(lambda d: b.text_of("#leader").strip(), "the leader's page")
            b.screenshot("standby-landed-on-leader")
    finally:
        cluster.stop()


def test_the_leaders_ui_follows_a_failover_by_itself(request):
    """kill -9 the leader under an open page: it notices, hops to another master's UI, and lands
    on the new leader's page with the same `#` route and no failover marker left in the URL."""
    from harness import Cluster

    cluster = Cluster(request.node.name, masters=3, agents=1)
    try:
        cluster.start()
        old = cluster.wait_leader(30)
        endpoints = sorted(f"{m.ip}:{m.port}" for m in cluster.masters)
        listed = sorted(m["endpoint"] for m in old.get_json("/ui/status")["masters"])
        assert listed == endpoints, f"/ui/status lists {listed}, the cluster has {endpoints}"
        with Browser(request.node.name) as b:
            b.open(old.url + "/#agents-title")
            b.wait(lambda d: "(this master)" in b.text_of("#leader-note"), "the leader's own page")
            b.wait(lambda d: sorted(d.execute_script("return window.tepuiFailover.state.known")) == endpoints,
                   "the page knows the three masters")
            b.wait_css("[data-testid=agent-row]")
            b.screenshot("failover-before-kill")

            cluster.kill9(old)
            new = cluster.wait_leader(60, exclude=[old])
            new_endpoint = f"{new.ip}:{new.port}"

            def on_new_leaders_page(d):
                return (d.current_url == f"{new.url}/#agents-title"
                        and new_endpoint in b.text_of("#leader")
                        and "(this master)" in b.text_of("#leader-note"))

            b.wait(on_new_leaders_page, f"the browser on {new.url}/#agents-title showing it as leader", timeout=60)
            # It came by a failover hop: the URL it was loaded with carried the marker, which the
            # leader's page then dropped from the address bar.
            loaded = b.driver.execute_script("return performance.getEntriesByType('navigation')[0].name")
            assert f"failover={old.ip}%3A{old.port}" in loaded, loaded
            b.wait_css("[data-testid=agent-row]")
            b.screenshot("failover-landed-on-new-leader")
    finally:
        cluster.stop()


def test_a_failover_passes_over_a_master_that_does_not_answer(request):
    """kill -9 the leader while the next master in the page's list is frozen (SIGSTOP: the kernel
    still accepts its connections but it never answers): the page knocks on the others first and
    hops past it to a master that answers, then lands on the new leader's page."""
    from harness import Cluster

    cluster = Cluster(request.node.name, masters=3, agents=1)
    frozen = None
    try:
        cluster.start()
        old = cluster.wait_leader(30)
        old_endpoint = f"{old.ip}:{old.port}"
        with Browser(request.node.name) as b:
            b.open(old.url + "/#agents-title")
            b.wait(lambda d: "(this master)" in b.text_of("#leader-note"), "the leader's own page")
            b.wait(lambda d: len(d.execute_script("return window.tepuiFailover.state.known")) == 3,
                   "the page knows the three masters")
            known = b.driver.execute_script("return window.tepuiFailover.state.known")
            first_other = next(e for e in known if e != old_endpoint)
            frozen = next(m for m in cluster.masters if f"{m.ip}:{m.port}" == first_other)
            os.kill(frozen.pid, signal.SIGSTOP)
            cluster.kill9(old)
            new = cluster.wait_leader(60, exclude=[old, frozen])

            def on_new_leaders_page(d):
                return (d.current_url == f"{new.url}/#agents-title"
                        and "(this master)" in b.text_of("#leader-note"))

            b.wait(on_new_leaders_page, f"the browser on {new.url}/#agents-title showing it as leader", timeout=60)
            loaded = b.driver.execute_script("return performance.getEntriesByType('navigation')[0].name")
            query = parse_qs(urlparse(loaded).query)
            assert query.get("failover") == [old_endpoint], loaded
            tried = query["tried"][0].split(",")
            assert first_other not in tried, f"the page hopped to the frozen master {first_other}: {loaded}"
            b.screenshot("failover-passed-over-frozen-master")
    finally:
        if frozen is not None and frozen.running():
            os.kill(frozen.pid, signal.SIGCONT)
        cluster.stop()


def test_a_failover_hop_waits_for_the_election_and_stops_once_every_master_was_tried(request):
    """A hop page on a standby that still names the master the failover started from waits there
    (no bounce back); when its own master dies too and every master is in `tried`, it stays and
    lists the masters as links."""
    from harness import Cluster

    cluster = Cluster(request.node.name, masters=3, agents=0)
    try:
        cluster.start()
        leader = cluster.wait_leader(30)
        standby = next(m for m in cluster.masters if m is not leader)
        endpoints = [f"{m.ip}:{m.port}" for m in cluster.masters]
        marker = {"failover": f"{leader.ip}:{leader.port}", "tried": ",".join(endpoints), "masters": ",".join(endpoints)}
        hop_url = f"{standby.url}/?{urlencode(marker)}#agents-title"
        with Browser(request.node.name) as b:
            b.open(hop_url)
            b.wait(lambda d: "still names it as the leader" in b.text_of("#notice"), "the hop page waiting")
            assert b.driver.current_url == hop_url, "a hop page does not go back to the master it left"
            b.screenshot("failover-hop-waits")

            cluster.kill9(standby)
            banner = b.wait_css("#failover")
            b.wait(lambda d: "no other master is left to try" in banner.text, "the give-up banner")
            links = sorted(a.get_attribute("href") for a in b.css("#failover [data-testid=master-links] a"))
            assert links == sorted(f"http://{e}/#agents-title" for e in endpoints), links
            assert b.driver.current_url == hop_url, "no hop once every master was tried"
            b.screenshot("failover-every-master-tried")
    finally:
        cluster.stop()


def test_a_page_whose_master_has_no_peer_says_so_and_lists_what_it_knows(dev, request):
    """Without ZooKeeper /ui/status lists no masters: when the only master is killed, the page shows
    the failover banner with a link to that master and stays (nothing to hop to, no loop)."""
    assert requests.get(dev.master_url + "/ui/status", timeout=5).json()["masters"] == []
    with Browser(request.node.name) as b:
        b.open(dev.master_url + "/#agents-title")
        b.wait(lambda d: "(this master)" in b.text_of("#leader-note"), "the master's own page")
        dev.kill()
        banner = b.wait_css("#failover")
        b.wait(lambda d: "stopped answering" in banner.text and "no other master" in banner.text,
               "the banner saying the master stopped answering")
        links = [a.get_attribute("href") for a in b.css("#failover [data-testid=master-links] a")]
        assert links == [f"{dev.master_url}/#agents-title"], links
        assert b.driver.current_url == f"{dev.master_url}/#agents-title", "the page stayed where it was"
        b.screenshot("failover-no-master-left")


def test_the_uis_are_usable_by_keyboard(dev_marathon, request):
    """Tab reaches the actions and Enter runs them: Marathon's create form, the master's task list."""
    from selenium.webdriver.common.keys import Keys

    def tab_to(b, selector, presses=40):
        target = b.wait_css(selector)
        for _ in range(presses):
            if b.driver.switch_to.active_element == target:
                return target
            b.driver.switch_to.active_element.send_keys(Keys.TAB)
        raise AssertionError(f"Tab never reached {selector}")

    with Browser(request.node.name) as b:
        b.open(dev_marathon.marathon_url + "/ui/")
        tab_to(b, "#create-app").send_keys(Keys.ENTER)
        b.wait_css("#app-id")
        b.screenshot("marathon-form-by-keyboard")
        b.open(dev_marathon.master_url + "/")
        b.wait_css("[data-testid=agent-row]")
        tab_to(b, "#tasks-completed").send_keys(Keys.ENTER)
        b.wait(lambda d: b.css("#tasks-completed")[0].get_attribute("aria-pressed") == "true",
               "the completed-tasks view chosen by keyboard")
