#!/usr/bin/env python3
"""The web console, driven in headless Chromium against a `raftq dev --secure`
cluster (auth and mutual TLS on). Started by tests/console/run.sh, which
provides the cluster and the environment:

  RAFTQ_BIN       the raftq binary (the CLI makes queues and dead letters)
  CONSOLE_URL     a node's console, e.g. http://127.0.0.1:7481/ui/
  ADMIN_TOKEN     a token with admin and every queue permission
  VIEWER_TOKEN    a token with only `consume` on every queue
  ARTIFACTS       where the screenshots go
  CHROMIUM, CHROMEDRIVER  the browser and its driver

It checks what issue #19 asks: a queue made with the CLI shows its depth; a
dead-lettered message's history opens; Redrive moves the depth; a principal
without `manage` sees no destructive buttons and is refused by the server
when it calls the action anyway. It prints how long the queues page takes to
show 1,000 queues (a measurement, not an assertion).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

RAFTQ = os.environ["RAFTQ_BIN"]
URL = os.environ["CONSOLE_URL"]
ADMIN = os.environ["ADMIN_TOKEN"]
VIEWER = os.environ["VIEWER_TOKEN"]
ARTIFACTS = os.environ["ARTIFACTS"]
WAIT_S = 20

failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)
    if not ok:
        failures.append(name)


def env_with(token):
    """The environment for the CLI, with this token (not the token file)."""
    env = dict(os.environ, RAFTQ_TOKEN=token)
    env.pop("RAFTQ_TOKEN_FILE", None)
    return env


def cli(*args, token=ADMIN):
    done = subprocess.run([RAFTQ, *args], env=env_with(token), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"raftq {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def queue_stats(name):
    return json.loads(cli("queue", "get", name, "--json"))["stats"]


def wait_for(what, predicate, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.1)


def api(method, path, token, body=None):
    """Calls the console's API as the page does; returns (status, json)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + "api/" + path, data=data, method=method)
    request.add_header("x-raftq-console", "1")
    request.add_header("authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def wait_css(driver, css, timeout=WAIT_S):
    return WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css) or False)[0]


def text(driver, css):
    """The text of the first element matching `css`, or None (read in the
    page, so a redraw between finding and reading cannot go stale)."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent", css)


def cell(driver, queue, field):
    return text(driver, f'tr[data-queue="{queue}"] td[data-field="{field}"]')


def sign_in(driver, token):
    driver.get(URL)
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    field = wait_css(driver, "#sign-in #token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()


def shot(driver, name):
    path = os.path.join(ARTIFACTS, name)
    driver.save_screenshot(path)
    print(f"     screenshot {path}", flush=True)


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)

    # The CLI makes a queue whose failed messages go to a dead-letter queue,
    # and three messages that die there (one delivery each, never acked).
    cli("queue", "create", "orders.dlq")
    cli("queue", "create", "orders", "--dead-letter-queue", "orders.dlq", "--max-deliveries", "1")
    cli("queue", "create", "payments")
    for i in range(3):
        cli("publish", "orders", f'{{"order": {i + 1}, "item": "<b>not html</b>"}}')
    for i in range(5):
        cli("publish", "payments", f"payment {i}")
    cli("consume", "orders", "--max", "3", "--no-ack", "--lease", "100ms", "--wait", "2s")
    wait_for("3 dead letters in orders.dlq", lambda: queue_stats("orders.dlq")["ready"] == 3)

    driver = browser()
    try:
        # Without a token the console asks for one.
        driver.get(URL)
        wait_css(driver, "#sign-in")
        check("a cluster with auth on asks for a token", True)
        shot(driver, "console-sign-in.png")

        # The queues page shows the depth the CLI made.
        sign_in(driver, ADMIN)
        wait_css(driver, 'tr[data-queue="orders.dlq"]')
        check("the queues page lists a queue made with the CLI", True)
        WebDriverWait(driver, WAIT_S).until(lambda d: cell(d, "orders.dlq", "ready") == "3")
        check("the queues page shows orders.dlq's depth (3 ready)", True)
        check("the queues page shows payments' depth (5 ready)", cell(driver, "payments", "ready") == "5",
              f"shown {cell(driver, 'payments', 'ready')!r}")
        shot(driver, "console-queues.png")

        # A dead-lettered message's history.
        driver.find_element(By.CSS_SELECTOR, 'tr[data-queue="orders.dlq"] a').click()
        wait_css(driver, "#messages tr[data-message]")
        driver.find_element(By.CSS_SELECTOR, "#messages tr[data-message] a").click()
        wait_css(driver, "#history")
        events = [e.get_attribute("data-event") for e in driver.find_elements(By.CSS_SELECTOR, "#history tr[data-event]")]
        check("a dead letter's history opens", "dead_lettered" in events and "delivered" in events, f"events {events}")
        body = text(driver, "#message-body") or ""
        check("a body is shown as text, never as HTML", "<b>not html</b>" in body, body)
        check("no markup from a body reached the page", not driver.find_elements(By.CSS_SELECTOR, "#message-body b"))
        dlq_link_source = driver.find_elements(By.XPATH, "//dd[text()='orders']")
        check("the dead letter names its source queue", bool(dlq_link_source))
        shot(driver, "console-message.png")

        # Redrive: the depth moves back to the source queue.
        driver.get(URL + "#/queues/orders.dlq")
        button = wait_css(driver, '#queue-actions button[data-action="redrive"]')
        check("an admin sees Purge and Redrive", bool(driver.find_elements(By.CSS_SELECTOR, 'button[data-action="purge"]')))
        shot(driver, "console-queue.png")
        button.click()
        driver.switch_to.alert.accept()
        WebDriverWait(driver, WAIT_S).until(
            lambda d: text(d, '[data-stat="ready"]') == "0")
        check("after Redrive the page shows orders.dlq empty", True)
        stats = queue_stats("orders")
        check("the dead letters are back in orders", stats["ready"] == 3, f"orders {stats}")

        # The cluster page: three nodes, one leader.
        driver.get(URL + "#/cluster")
        wait_css(driver, "#nodes tr[data-node]")
        WebDriverWait(driver, WAIT_S).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#nodes td.role-leader")) == 1)
        nodes = driver.find_elements(By.CSS_SELECTOR, "#nodes tr[data-node]")
        check("the cluster page shows three nodes and one leader", len(nodes) == 3, f"{len(nodes)} nodes")
        shot(driver, "console-cluster.png")

        driver.get(URL + "#/topics")
        wait_css(driver, "h1")
        shot(driver, "console-topics.png")

        # A principal without manage: no destructive buttons, and the server
        # refuses the action when it is called anyway.
        sign_in(driver, VIEWER)
        wait_css(driver, 'tr[data-queue="payments"]')
        driver.get(URL + "#/queues/payments")
        wait_css(driver, "#read-only")
        check("a viewer sees no Purge or Redrive",
              not driver.find_elements(By.CSS_SELECTOR, 'button[data-action="purge"], button[data-action="redrive"]'))
        check("a viewer sees no Publish", not driver.find_elements(By.CSS_SELECTOR, 'button[data-action="publish"]'))
        check("a viewer is told peek needs manage", bool(driver.find_elements(By.CSS_SELECTOR, "#no-peek")))
        driver.get(URL + "#/cluster")
        wait_css(driver, "#nodes tr[data-node]")
        check("a viewer sees no membership actions", not driver.find_elements(By.CSS_SELECTOR, "[data-action]"))
        shot(driver, "console-viewer.png")
        status, answer = api("POST", "queue/purge?name=payments", VIEWER, {})
        check("the server refuses a viewer's purge", status == 403 and answer.get("code") == "PERMISSION_DENIED",
              f"{status} {answer}")
        check("the refusal names the permission", "manage" in answer.get("message", ""), answer.get("message", ""))
        check("the refused purge changed nothing", queue_stats("payments")["ready"] == 5)
        status, answer = api("POST", "cluster/transfer-leader", VIEWER, {"node_id": 1})
        check("the server refuses a viewer's leadership transfer", status == 403, f"{status} {answer}")
        status, _ = api("GET", "queues", "not-a-token")
        check("a bad token is refused", status == 401, str(status))
        request = urllib.request.Request(URL + "api/queues")
        request.add_header("authorization", f"Bearer {ADMIN}")
        try:
            urllib.request.urlopen(request, timeout=10)
            check("a request without the console header is refused", False, "answered 200")
        except urllib.error.HTTPError as e:
            check("a request without the console header is refused", e.code == 403, str(e.code))

        # The queues page with 1,000 queues: time from navigation to the
        # table drawn, as the page itself measures it (performance.now()).
        names = [f"load-{i:04d}" for i in range(1000 - 3)]
        procs = []
        for chunk in range(0, len(names), 125):
            script = " && ".join(f"\"$RAFTQ_BIN\" queue create {n} >/dev/null" for n in names[chunk:chunk + 125])
            procs.append(subprocess.Popen(["bash", "-c", script], env=env_with(ADMIN)))
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError("creating the load queues failed")
        sign_in(driver, ADMIN)
        wait_css(driver, 'tr[data-queue="load-0996"]')
        timings = []
        for _ in range(5):
            # Past the node's one-second shared read, so every load reads
            # the 1,000 queues anew (a measurement, not a synchronisation).
            time.sleep(1.1)
            driver.get("about:blank")
            driver.get(URL + "#/queues")
            WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.body.dataset.queuesRenderedMs"))
            rows = len(driver.find_elements(By.CSS_SELECTOR, "#queue-rows tr"))
            timings.append(int(driver.execute_script("return document.body.dataset.queuesRenderedMs")))
        check("the queues page shows 1,000 queues", rows == 1000, f"{rows} rows")
        timings.sort()
        print(f"     queues page with {rows} queues: drawn {timings[len(timings) // 2]} ms after navigation "
              f"(median of {len(timings)}; all {timings})", flush=True)
        shot(driver, "console-queues-1000.png")
    except (TimeoutException, TimeoutError, WebDriverException) as e:
        shot(driver, "console-failure.png")
        check("the console test ran to the end", False, f"timed out: {e!r} at {driver.current_url}")
    finally:
        logs = None
        try:
            logs = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        except WebDriverException as e:
            print(f"     browser log unavailable: {e}", flush=True)
        driver.quit()
    # Signing in starts with a 401 (no token yet), which the browser logs;
    # nothing else should be.
    check("the browser's console log was read", logs is not None)
    unexpected = [entry["message"] for entry in logs or [] if "401" not in entry["message"]]
    check("no script errors in the browser console", not unexpected, "; ".join(unexpected))

    print(f"console test: {'FAILED ' + ', '.join(failures) if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
