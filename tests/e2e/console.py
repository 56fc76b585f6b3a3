"""The console in headless Chromium, driven by Selenium; run by tests/e2e/console.rs.

Walks the console as an operator would: the token asked once, the wizard refusing an invalid id
and an owned parent topic beside their fields, a rule created, running, counting messages,
disabled, enabled, edited and deleted, the plugins view, a phone's width. A screenshot of each
step goes to --shots. Messages are sent by the Rust test: this script prints `send N` and waits
for `sent` on stdin. The API is also read directly (urllib, not the page) to check what the page
claims. Exits non-zero with the reason on the first thing that does not hold.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

args = argparse.ArgumentParser()
for name in ("url", "token", "rule", "topic", "parent", "owned", "config-rule", "shots"):
    args.add_argument(f"--{name}", required=True)
args.add_argument("--messages", type=int, required=True)
args = args.parse_args()

DESKTOP, PHONE = (1280, 900), (390, 844)
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=%d,%d" % DESKTOP):
    options.add_argument(flag)
# Both paths given: Selenium Manager has nothing to download.
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
shot_number = 0


def shot(name):
    global shot_number
    shot_number += 1
    driver.save_screenshot(f"{args.shots}/{shot_number:02d}-{name}.png")


def wait(what, condition, seconds=30):
    """Waits until condition() is truthy; a live refresh may replace elements meanwhile."""
    try:
        return WebDriverWait(driver, seconds, 0.1, ignored_exceptions=[StaleElementReferenceException]).until(lambda _: condition())
    except TimeoutException:
        shot("failed")
        sys.exit(f"timed out waiting for {what}; page text:\n{driver.find_element(By.TAG_NAME, 'body').text}")


def find(css):
    return driver.find_element(By.CSS_SELECTOR, css)


def visible(css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found and found[0].is_displayed() else None


def click(css):
    wait(f"{css} to be clickable", lambda: visible(css) and visible(css).is_enabled())
    for _ in range(5):
        try:
            return find(css).click()
        except StaleElementReferenceException:
            continue
    sys.exit(f"{css} kept being replaced")


def type_into(key, value):
    field = find(f'[data-field="{key}"] input')
    field.clear()
    field.send_keys(value)


def field_error(key):
    box = visible(f'[data-field="{key}"] .field-error')
    return box.text if box else ""


def api_status(path):
    request = urllib.request.Request(args.url + path, headers={"Authorization": f"Bearer {args.token}"})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as e:
        return e.code, None


def row(rule):
    return f'tr[data-key="{rule}"]'


def row_state(rule):
    badge = visible(f"{row(rule)} .state")
    return badge.get_attribute("data-state") if badge else None


def check(what, ok):
    if not ok:
        shot("failed")
        sys.exit(f"does not hold: {what}")


def confirm(label):
    wait("the confirmation dialog", lambda: visible("#confirm"))
    check(f"the dialog's button says {label}", find("#confirm-ok").text == label)
    shot(f"confirm-{label.lower()}")
    click("#confirm-ok")


def step(n):
    current = visible('.steps li[aria-current="step"]')
    return current is not None and current.get_attribute("data-step") == str(n)


try:
    # The page loads without the token; its first API call meets a 401 and asks once.
    driver.get(args.url + "/")
    wait("the token dialog", lambda: visible("#token-input"))
    shot("token")
    find("#token-input").send_keys(args.token)
    click("#token-ok")
    wait("the config file's rule in the list", lambda: visible(row(args.config_rule)))
    check("the config file's rule is marked as such", "config file" in find(row(args.config_rule)).text)
    shot("list")

    # Step 1 refuses an invalid id beside the field, with the fix.
    click("#new-rule")
    wait("the wizard", lambda: step(0))
    type_into("id", "x!")
    click("#wizard-next")
    wait("the id's mistake", lambda: "Fix:" in field_error("id"))
    check("still on step 1", step(0))
    check("the id's mistake names the character", "contains" in field_error("id") or "characters" in field_error("id"))
    shot("invalid-id")

    type_into("id", args.rule)
    type_into("description", "made by the browser test")
    click("#wizard-next")
    wait("step 2", lambda: step(1))
    check("the id's mistake is gone", field_error("id") == "")
    type_into("source.topic", args.topic)
    Select(find("#f-source-start")).select_by_value("earliest")
    shot("source")
    click("#wizard-next")
    wait("step 3", lambda: step(2))

    # Step 3 refuses a parent topic another rule owns, naming it, and creates nothing.
    type_into("target.parent_topic", args.owned)
    check("the last step's button creates", find("#wizard-next").text == "Create rule")
    click("#wizard-next")
    wait("the parent topic's mistake", lambda: "also the target of" in field_error("target.parent_topic"))
    check("the owner is named", args.config_rule in field_error("target.parent_topic"))
    shot("parent-topic-owned")
    check("nothing was created", api_status(f"/api/v1/rules/{args.rule}")[0] == 404)

    type_into("target.parent_topic", args.parent)
    click("#wizard-next")
    wait("the new rule running in the list", lambda: row_state(args.rule) == "running")
    check("the list says it was created", "created" in find("#notice").text)
    shot("created-running")

    # Messages: the list's rate rises above zero, the rule page counts every one. The rate is
    # watched while they are sent: it shows for one refresh only, perhaps before `sent`.
    print(f"send {args.messages}", flush=True)
    rate = f'{row(args.rule)} [data-counter="rate"]'
    wait("a message rate above zero", lambda: find(rate).text not in ("—", "0.0"), seconds=60)
    shot("list-rate")
    check("the test sent the messages", sys.stdin.readline().strip() == "sent")
    click(f'{row(args.rule)} a.rule-id')
    forwarded = '[data-counter="forwarded"]'
    wait(f"{args.messages} forwarded on the rule page", lambda: visible(forwarded) and find(forwarded).text == str(args.messages))
    check("the rule page shows its config", f'"parent_topic": "{args.parent}"' in find("#rule-config").text)
    shot("rule-page")

    # Disable (confirmed), then enable, from the list.
    click('a[href="#/"][data-nav]')
    click(f'{row(args.rule)} button[data-action="disable"]')
    confirm("Disable")
    wait("the rule disabled", lambda: row_state(args.rule) == "disabled")
    check("the API agrees", api_status(f"/api/v1/rules/{args.rule}/status")[1]["state"] == "disabled")
    shot("disabled")
    click(f'{row(args.rule)} button[data-action="enable"]')
    wait("the rule running again", lambda: row_state(args.rule) == "running")
    shot("enabled")

    # Edit: the id is read-only, a new description is saved.
    click(f'{row(args.rule)} a[data-action-link="edit"]')
    wait("the edit wizard", lambda: step(0) and find("#f-id").get_attribute("value") == args.rule)
    check("the id cannot be changed", find("#f-id").get_attribute("readonly") is not None)
    type_into("description", "edited in the console")
    shot("edit")
    for n in (1, 2):
        click("#wizard-next")
        wait(f"edit step {n + 1}", lambda: step(n))
    check("the last step's button saves", find("#wizard-next").text == "Save changes")
    click("#wizard-next")
    wait("the new description in the list", lambda: visible(row(args.rule)) and "edited in the console" in find(row(args.rule)).text)
    check("the API has it", api_status(f"/api/v1/rules/{args.rule}")[1]["config"]["description"] == "edited in the console")

    # A phone's width: the list and the wizard still fit.
    driver.set_window_size(*PHONE)
    wait("the list at phone width", lambda: visible(row(args.rule)))
    check("no sideways scrolling", driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))
    shot("phone-list")
    click("#new-rule")
    wait("the wizard at phone width", lambda: step(0))
    check("no sideways scrolling in the wizard", driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))
    shot("phone-wizard")
    driver.set_window_size(*DESKTOP)

    # Plugins: this inflow has none loaded, and says so.
    click('a[data-nav="plugins"]')
    wait("the plugins view", lambda: visible("#plugins") and "No plugin is loaded" in find("#plugins").text)
    shot("plugins")

    # A rule of the config file cannot be deleted here: the refusal and its fix are shown.
    click('a[href="#/"][data-nav]')
    click(f'{row(args.config_rule)} button[data-action="delete"]')
    confirm("Delete")
    wait("the refusal", lambda: visible("#notice") and "Fix:" in find("#notice").text)
    check("the refusal names the config file", "config file" in find("#notice").text)
    shot("config-rule-refused")

    # Delete (confirmed): gone from the list and from the API.
    click(f'{row(args.rule)} button[data-action="delete"]')
    confirm("Delete")
    wait("the rule gone from the list", lambda: not driver.find_elements(By.CSS_SELECTOR, row(args.rule)))
    check("the API agrees", api_status(f"/api/v1/rules/{args.rule}")[0] == 404)
    shot("deleted")
except Exception:
    shot("failed")
    raise
finally:
    driver.quit()
