"""The same request (one SDXL image at 1024x1024 and the model's default steps) through Segmind's,
OpenAI's and A1111's APIs. Usage: dialect_burst.py PORT KEY N: N requests in each dialect, all sent
at once (one thread each), or, with N = 0, one in each dialect in turn. Prints, per dialect, how
many got each status."""
import collections
import concurrent.futures
import json
import sys
import threading

import requests

port, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
calls = {
    "segmind": lambda: requests.post(f"{base}/v1/sdxl1.0-txt2img", headers={"x-api-key": key}, timeout=60,
                                     json={"prompt": "a lighthouse at dusk", "img_width": 1024, "img_height": 1024}),
    "openai": lambda: requests.post(f"{base}/v1/images/generations", headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                    json={"prompt": "a lighthouse at dusk", "model": "dall-e-3", "size": "1024x1024",
                                          "response_format": "b64_json"}),
    "a1111": lambda: requests.post(f"{base}/sdapi/v1/txt2img", auth=("user", key), timeout=60,
                                   json={"prompt": "a lighthouse at dusk", "width": 1024, "height": 1024,
                                         "override_settings": {"sd_model_checkpoint": "sdxl"}}),
}
jobs = [name for name in calls for _ in range(max(count, 1))]
barrier = threading.Barrier(len(jobs)) if count else None


def one(name):
    if barrier:
        barrier.wait()  # all threads send together
    return name, calls[name]().status_code


if count:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(one, jobs))
else:
    results = [one(name) for name in jobs]
statuses = collections.defaultdict(collections.Counter)
for name, status in results:
    statuses[name][str(status)] += 1
print(json.dumps({name: dict(counter) for name, counter in statuses.items()}, sort_keys=True))
