"""Drives the admin page in headless Chromium over the Chrome DevTools protocol, as an operator
would: signs in with the admin token, creates a key, sees its balance fall after a generation made
with that key (Python `requests`), tops it up, sets and removes its budget per day and revokes it. Screenshots go to OUTPUT_DIR.

    admin_page.py BASE_URL ADMIN_TOKEN OUTPUT_DIR     prints "admin page: ok" or fails with the reason
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import requests
import websocket

base, admin_token, output = sys.argv[1], sys.argv[2], sys.argv[3]
profile = tempfile.mkdtemp(prefix="sdgate-chromium-")
browser = subprocess.Popen(
    ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
     "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}", "--window-size=1280,1700",
     "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def devtools_port():
    path = os.path.join(profile, "DevToolsActivePort")
    if os.path.exists(path):
        with open(path) as file:
            first = file.readline().strip()
            return int(first) if first else None
    return None


class Page:
    """One tab, spoken to over its DevTools websocket."""

    def __init__(self, port):
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(target for target in targets if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors = []
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(message["params"]["exceptionDetails"])
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, name):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(os.path.join(output, name), "wb") as file:
            file.write(base64.b64decode(data))


def available(page, key_id):
    return page.eval(f"document.querySelector('tr[data-key=\"{key_id}\"] .available')?.textContent")


try:
    page = Page(wait_for(devtools_port, "Chromium's DevTools port"))
    page.call("Page.navigate", url=base + "/admin")
    wait_for(lambda: page.eval("document.readyState === 'complete' && !!document.getElementById('login-form')"), "the page")

    # A wrong token is refused on the page; the right one opens the console.
    page.eval("document.getElementById('token').value = 'not-the-token'; document.getElementById('login-form').requestSubmit()")
    wait_for(lambda: page.eval("document.getElementById('login-error').textContent"), "the refusal")
    assert page.eval("document.getElementById('console').hidden"), "the console stays closed"
    page.eval(f"document.getElementById('token').value = {json.dumps(admin_token)}; document.getElementById('login-form').requestSubmit()")
    wait_for(lambda: page.eval("!document.getElementById('console').hidden"), "the console")
    page.screenshot("1-signed-in.png")

    # Create a key with one credit; its secret is shown once.
    page.eval("""(() => { const form = document.getElementById('create-key');
        form.name.value = 'page-member'; form.credits.value = '1'; form.requestSubmit(); })()""")
    secret = wait_for(lambda: page.eval("document.getElementById('new-secret-value').textContent"), "the new key's secret")
    key_id = secret.split("_")[1]
    wait_for(lambda: available(page, key_id) == "1", "the new key's row with 1 credit")

    # A generation with that key, made the way client code makes it.
    answer = requests.post(base + "/v1/sdxl1.0-txt2img", headers={"x-api-key": secret},
                           json={"prompt": "a lighthouse at dusk", "base64": False}, timeout=60)
    assert answer.status_code == 200, (answer.status_code, answer.text)
    after = answer.headers["x-remaining-credits"]
    assert after != "1", after
    page.eval("document.getElementById('refresh').click()")
    wait_for(lambda: available(page, key_id) == after, f"the balance to show {after}")
    assert page.eval("document.querySelectorAll('#chart-keys rect.bar').length") >= 1, "the spend per key is charted"
    assert page.eval("document.querySelectorAll('#chart-models rect.bar').length") >= 1, "the spend per model is charted"
    assert page.eval("[...document.querySelectorAll('#requests tbody td')].some(cell => cell.textContent === 'sdxl1.0-txt2img')"), \
        "the request is among the recent ones"
    assert page.eval("document.getElementById('chart-models').textContent.includes('sdxl1.0-txt2img')"), "the model is in the legend"
    page.screenshot("2-after-a-request.png")

    # Top up by 5 credits from the key's row.
    page.eval(f"""(() => {{ const form = document.querySelector('tr[data-key="{key_id}"] form.top-up');
        form.amount.value = '5'; form.requestSubmit(); }})()""")
    wait_for(lambda: available(page, key_id) not in (None, after), "the top-up")
    assert available(page, key_id) == requests.get(base + f"/admin/keys/{key_id}", headers={"Authorization": f"Bearer {admin_token}"},
                                                   timeout=10).json()["available"], "the page shows the ledger's balance"

    # A budget per day from the key's row: the page shows what the day spent and has left, as the API does.
    page.eval(f"""(() => {{ const form = document.querySelector('tr[data-key="{key_id}"] form.budget-form');
        form.per.value = 'day'; form.amount.value = '2'; form.time_zone.value = 'Europe/Paris'; form.requestSubmit(); }})()""")
    budget_text = lambda: page.eval(f"document.querySelector('tr[data-key=\"{key_id}\"] .budget-state')?.textContent")
    wait_for(lambda: budget_text() == "day 2: spent 0, left 2", "the budget set from the page")
    shown = requests.get(base + f"/admin/keys/{key_id}", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).json()
    assert shown["period_budget"]["time_zone"] == "Europe/Paris" and shown["spendable"] == "2", shown
    page.screenshot("3-budget.png")
    # A rolling day instead: it counts the request made before it was set.
    page.eval(f"""(() => {{ const form = document.querySelector('tr[data-key="{key_id}"] form.budget-form');
        form.per.value = 'rolling day'; form.amount.value = '1'; form.requestSubmit(); }})()""")
    wait_for(lambda: budget_text() == "rolling day 1: spent 0.008, left 0.992", "the rolling budget set from the page")
    page.eval(f"document.querySelector('tr[data-key=\"{key_id}\"] button.remove-budget').click()")
    wait_for(lambda: budget_text() == "none", "the budget removed from the page")

    # Revoke it (confirming the dialog): its requests are refused from now on.
    page.eval(f"""(() => {{ window.confirm = () => true;
        document.querySelector('tr[data-key="{key_id}"] button.revoke').click(); }})()""")
    wait_for(lambda: page.eval(f"document.querySelector('tr[data-key=\"{key_id}\"] .state')?.textContent") == "revoked", "the revocation")
    refused = requests.post(base + "/v1/sdxl1.0-txt2img", headers={"x-api-key": secret}, json={"prompt": "again"}, timeout=60)
    assert refused.status_code == 401, refused.status_code
    page.screenshot("4-revoked.png")

    assert not page.errors, f"the page threw: {page.errors}"
    print("admin page: ok")
finally:
    browser.terminate()
    browser.wait(timeout=30)
    shutil.rmtree(profile, ignore_errors=True)
