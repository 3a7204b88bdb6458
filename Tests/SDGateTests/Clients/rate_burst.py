"""Fires N generation requests at once (one thread each), spread over gateways and over every
dialect in turn: Segmind v1 and v2, ModelsLab v3 and v6, OpenAI and A1111. Each answer is judged
as its dialect's clients judge it: allowed, refused for the key's rate (with the dialect's own
signs of it), or anything else. Then one more request in each dialect, one after another: with
the key's limit spent, each is refused in its dialect's shape, whichever dialects the burst's
allowed requests fell to (the order the burst reaches the limiter in is the scheduler's). Usage:
rate_burst.py PORT[,PORT...] KEY N. Prints {"allowed": {dialect: n}, "limited": {dialect: n},
"other": [...], "headers_ok": bool, "seconds": s, "after": {dialect: verdict}}."""
import collections
import concurrent.futures
import json
import sys
import threading
import time

import requests

ports, key, count = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
prompt = "a lighthouse at dusk"


def segmind(version):
    return lambda base: requests.post(f"{base}/{version}/sdxl1.0-txt2img", headers={"x-api-key": key}, timeout=60,
                                      json={"prompt": prompt, "img_width": 1024, "img_height": 1024})


calls = {
    "v1": segmind("v1"),
    "v2": segmind("v2"),
    "v3": lambda base: requests.post(f"{base}/api/v3/text2img", timeout=60,
                                     json={"key": key, "prompt": prompt, "width": "512", "height": "512"}),
    "v6": lambda base: requests.post(f"{base}/api/v6/images/text2img", timeout=60,
                                     json={"key": key, "prompt": prompt, "model_id": "sdxl"}),
    "openai": lambda base: requests.post(f"{base}/v1/images/generations", headers={"Authorization": f"Bearer {key}"},
                                         timeout=60, json={"prompt": prompt, "model": "dall-e-3", "size": "1024x1024",
                                                           "response_format": "b64_json"}),
    "a1111": lambda base: requests.post(f"{base}/sdapi/v1/txt2img", auth=("user", key), timeout=60,
                                        json={"prompt": prompt, "width": 1024, "height": 1024,
                                              "override_settings": {"sd_model_checkpoint": "sdxl"}}),
}
names = list(calls)
barrier = threading.Barrier(count)


def judge(name, response):
    """allowed, limited (with the dialect's signs checked) or other."""
    if name in ("v3", "v6"):  # ModelsLab: HTTP 200 and a status field, for refusals too
        body = response.json()
        if body.get("status") in ("success", "processing"):
            return "allowed", True
        limited = body.get("message") == "Rate limit exceeded"
        return ("limited" if limited else "other"), limited and body.get("retry_after", 0) >= 1 \
            and int(response.headers.get("Retry-After", "0")) >= 1
    if response.status_code == 200:
        return "allowed", True
    if response.status_code != 429:
        return "other", False
    signs = int(response.headers.get("Retry-After", "0")) >= 1
    if name in ("v1", "v2"):
        signs = signs and response.headers.get("x-rate-limit-reset-at-utc", "").endswith("Z")
    if name == "openai":
        signs = signs and response.json()["error"]["code"] == "rate_limit_exceeded" \
            and response.headers.get("x-ratelimit-reset-requests", "").endswith("s")
    return "limited", signs


def one(index):
    # Each dialect in turn, and each dialect's turns over every gateway.
    name, port = names[index % len(names)], ports[(index // len(names)) % len(ports)]
    barrier.wait()  # all threads send together
    response = calls[name](f"http://127.0.0.1:{port}")
    verdict, signs = judge(name, response)
    return name, verdict, signs, f"{name}@{port}: {response.status_code} {response.text[:200]}"


start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
    results = list(pool.map(one, range(count)))
seconds = time.monotonic() - start
summary = {"allowed": collections.Counter(), "limited": collections.Counter(), "other": [], "headers_ok": True,
           "seconds": round(seconds, 2), "after": {}}
for name, verdict, signs, text in results:
    if verdict == "other":
        summary["other"].append(text)
    else:
        summary[verdict][name] += 1
    summary["headers_ok"] = summary["headers_ok"] and signs
for name in names:
    verdict, signs = judge(name, calls[name](f"http://127.0.0.1:{ports[0]}"))
    summary["after"][name] = verdict
    summary["headers_ok"] = summary["headers_ok"] and signs
print(json.dumps(summary, sort_keys=True))
