"""A ModelsLab v3 client written the way the ModelsLab documentation's examples are: Python
`requests`, numbers as strings, JSON with an explicit Content-Type, or a plain form.

    modelslab_client.py post URL json|form BODY_JSON   prints {"http": status, "body": <answer>}
    modelslab_client.py download URL                   prints {"http": status, "base64": <bytes>}
"""
import base64
import json
import sys

import requests

command, url = sys.argv[1], sys.argv[2]
if command == "post":
    payload = json.loads(sys.argv[4])
    if sys.argv[3] == "json":
        headers = {"Content-Type": "application/json"}
        response = requests.request("POST", url, headers=headers, data=json.dumps(payload), timeout=60)
    else:
        response = requests.post(url, data=payload, timeout=60)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    print(json.dumps({"http": response.status_code, "body": body}))
else:
    response = requests.get(url, timeout=60)
    print(json.dumps({"http": response.status_code, "base64": base64.b64encode(response.content).decode()}))
