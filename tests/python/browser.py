"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) through Selenium, for the UI suites.

    with Browser("name") as b:
        b.open(url); b.wait_css("#leader"); b.screenshot("master-home")

Screenshots go to `<test output>/screenshots/<name>-<label>.png` (the test command prints where its
artifacts are). Every wait is a condition with a deadline.
"""

import os
import re

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import OUTPUT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30
SCREENSHOTS = os.path.join(OUTPUT_ROOT, "screenshots")


class Browser:
    def __init__(self, name):
        for path in (CHROMIUM, CHROMEDRIVER):
            assert os.path.exists(path), f"{path} is missing: apt-get install -y chromium chromium-driver"
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1366,900", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(WAIT)
        os.makedirs(SCREENSHOTS, exist_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.screenshot("failure")
        self.driver.quit()

    def open(self, url):
        self.driver.get(url)

    def screenshot(self, label):
        path = os.path.join(SCREENSHOTS, f"{self.name}-{label}.png")
        try:
            self.driver.save_screenshot(path)
        except WebDriverException:
            pass
        return path

    def wait(self, condition, message, timeout=WAIT):
        """Until condition(driver) is truthy (exceptions count as not yet); returns its value."""
        def attempt(driver):
            try:
                return condition(driver)
            except WebDriverException:
                return False
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(attempt, message)

    def wait_css(self, selector, timeout=WAIT):
        return self.wait(lambda d: next(iter(e for e in d.find_elements(By.CSS_SELECTOR, selector)
                                             if e.is_displayed()), None),
                         f"a visible {selector}", timeout)

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text_of(self, selector):
        found = self.css(selector)
        return found[0].text if found else ""

    def fill(self, selector, value):
        field = self.wait_css(selector)
        field.clear()
        field.send_keys(str(value))

    def click(self, selector):
        self.wait_css(selector).click()

    def click_link_text(self, text):
        self.wait(lambda d: d.find_element(By.LINK_TEXT, text), f"a link '{text}'").click()
