"""The official Segmind Python SDK's asynchronous (v2) path against a gateway, printed as JSON.

    segmind_v2.py run PORT KEY SLUG PARAMS_JSON       client.run(slug, **params)
    segmind_v2.py submit-wait PORT KEY SLUG PARAMS_JSON  client.submit_async(slug, **params).wait()
    segmind_v2.py submit PORT KEY SLUG PARAMS_JSON    client.submit_async(slug, **params): its submit answer
    segmind_v2.py wait PORT KEY SUBMIT_ANSWER_JSON    the job of an earlier submit, .wait()
    segmind_v2.py status PORT KEY SUBMIT_ANSWER_JSON  the job of an earlier submit, .status()

A finished job prints {"result": <body>, "images": [{format, width, height} of each output URL]};
InferenceFailed prints {"failed": detail}; any other SegmindError {"error": detail, "status": code}.
"""
import json
import struct
import sys

import httpx
from segmind import SegmindClient
from segmind.exceptions import SegmindError
from segmind.v2 import AsyncJob, InferenceFailed

mode, port, key = sys.argv[1], sys.argv[2], sys.argv[3]
client = SegmindClient(api_key=key, base_url=f"http://127.0.0.1:{port}/v1")


def describe(url):
    image = httpx.get(url).raise_for_status().content
    if image[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", image[16:24])
        return {"format": "png", "width": width, "height": height}
    return {"format": "jpeg" if image[:2] == b"\xff\xd8" else "unknown"}


def job(submitted):
    return AsyncJob(request_id=submitted["request_id"], status_url=submitted["status_url"],
                    response_url=submitted["response_url"], submit_response=submitted, _client=client)


try:
    if mode == "run":
        result = client.run(sys.argv[4], **json.loads(sys.argv[5]))
    elif mode == "submit-wait":
        result = client.submit_async(sys.argv[4], **json.loads(sys.argv[5])).wait()
    elif mode == "submit":
        print(json.dumps(client.submit_async(sys.argv[4], **json.loads(sys.argv[5])).submit_response))
        sys.exit(0)
    elif mode == "status":
        print(json.dumps(job(json.loads(sys.argv[4])).status()))
        sys.exit(0)
    else:
        result = job(json.loads(sys.argv[4])).wait(timeout=120, interval=0.2)
except InferenceFailed as error:
    print(json.dumps({"failed": error.detail}))
    sys.exit(0)
except SegmindError as error:
    print(json.dumps({"error": error.detail, "status": error.status}))
    sys.exit(0)
outputs = result["output"] if isinstance(result["output"], list) else [result["output"]]
print(json.dumps({"result": result, "images": [describe(url) for url in outputs]}))
