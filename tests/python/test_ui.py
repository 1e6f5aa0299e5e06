"""The web UIs in a real headless Chromium (issue 7): Marathon's UI on `tepui dev` (create an app
through the form, see it running, open its sandbox in the master's UI and see `hello` in stdout, a
validation error next to its field, scale, destroy), the master's
UI (the app's task, its sandbox, `hello` in stdout, followed as it grows) and a standby master's UI
sending the browser to the leader's. Screenshots of each page land in <test output>/screenshots/.
"""

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
