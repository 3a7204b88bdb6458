"""Fires N generation requests at once (one thread each) and prints how many got each status,
and the smallest x-remaining-credits seen. Usage: burst.py PORT[,PORT...] KEY N; with several
ports (gateway replicas) the requests alternate between them."""
import collections
import concurrent.futures
import json
import sys

import requests

ports, key, count = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
barrier = __import__("threading").Barrier(count)


def one(index):
    barrier.wait()  # all threads send together
    port = ports[index % len(ports)]
    response = requests.post(f"http://127.0.0.1:{port}/v1/sdxl1.0-txt2img", headers={"x-api-key": key},
                             json={"prompt": "a lighthouse at dusk"}, timeout=60)
    return response.status_code, response.headers.get("x-remaining-credits")


with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
    results = list(pool.map(one, range(count)))
statuses = collections.Counter(status for status, _ in results)
remaining = min(float(value) for _, value in results if value is not None)
print(json.dumps({"statuses": {str(k): v for k, v in sorted(statuses.items())}, "min_remaining": remaining}))
