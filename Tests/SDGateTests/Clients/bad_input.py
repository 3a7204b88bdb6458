"""Every bad-input class of the OpenAI and A1111 dialects, sent raw: each must be answered in that
dialect's error shape (OpenAI's `{"error": {...}}`, A1111's `{"detail", "errors"}`), with its status.

Usage: bad_input.py PORT KEY. Prints "bad input: N cases ok"."""
import http.client
import json
import sys

port, key = int(sys.argv[1]), sys.argv[2]
cases = 0


def send(path, body, content_type, auth=None, length=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": auth or f"Bearer {key}", "Content-Length": str(len(body) if length is None else length)}
    if content_type:
        headers["Content-Type"] = content_type
    connection.putrequest("POST", path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    if length is None:
        connection.send(body)
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    connection.close()
    return answer


def openai(status, words, path, body, content_type, param=None, length=None):
    global cases
    code, headers, raw = send(f"/v1/images/{path}", body, content_type, length=length)
    error = json.loads(raw)["error"]
    assert code == status, f"{path}: {code}, expected {status}: {raw[:300]}"
    assert words in error["message"], f"{path}: {error}"
    assert error["type"] == "invalid_request_error" and "code" in error, error
    assert param is None or error["param"] == param, f"param {error['param']!r}, expected {param!r}: {error}"
    assert headers.get("x-request-id"), f"{path} {words}: {headers}"
    cases += 1


def a1111(status, words, path, body, content_type="application/json", length=None):
    global cases
    code, headers, raw = send(f"/sdapi/v1/{path}", body, content_type, auth=f"Bearer {key}", length=length)
    answer = json.loads(raw)
    assert code == status, f"{path}: {code}, expected {status}: {raw[:300]}"
    assert words in answer["detail"] and answer["errors"] == answer["detail"], answer
    cases += 1


def form(*parts, boundary="sdgate-test-boundary", close=True):
    body = b""
    for name, value in parts:
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
        body += (b"; filename=\"a.png\"\r\nContent-Type: image/png" if isinstance(value, bytes) else b"") + b"\r\n\r\n"
        body += value if isinstance(value, bytes) else value.encode()
        body += b"\r\n"
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


multipart = "multipart/form-data; boundary=sdgate-test-boundary"
png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x02\x00\x00\x00\x00\x00\x00\x00"

# OpenAI: malformed and oversize multipart, a missing image, wrong types, unknown model, bad size.
openai(400, "boundary", "edits", form(("prompt", "x"), ("image", png)), "multipart/form-data")
openai(400, "incomplete", "edits", form(("prompt", "x"), ("image", png), close=False), multipart)
openai(400, "malformed", "edits", b"--sdgate-test-boundary\r\nno colon here\r\n\r\nx\r\n--sdgate-test-boundary--\r\n", multipart)
openai(400, "multipart/form-data", "edits", b'{"prompt": "x"}', "application/json")
openai(400, "more than 64 parts", "edits", form(*[("prompt", "x")] * 65), multipart)
# A byte above 0x7F in a part's header name, in the first part or a later one: multipart-kit's
# parser looked it up in a table of 128 and stopped the gateway.
openai(400, "not ASCII", "edits", b"--sdgate-test-boundary\r\n\x80a: x\r\n\r\nhi\r\n--sdgate-test-boundary--\r\n", multipart)
openai(400, "not ASCII", "variations", form(("n", "1")).replace(b"--sdgate-test-boundary--", b"--sdgate-test-boundary\r\nContent-Type: x\r\nX\xffY: z\r\n\r\n\r\n--sdgate-test-boundary--"), multipart)
openai(400, "more than 16 header lines", "edits", b"--sdgate-test-boundary\r\n" + b"a: b\r\n" * 17 + b"\r\nx\r\n--sdgate-test-boundary--\r\n", multipart)
openai(400, "is required", "edits", form(("prompt", "a fox")), multipart, param="image")
openai(400, "is required", "variations", form(("n", "1")), multipart, param="image")
openai(400, "whole number", "edits", form(("prompt", "a fox"), ("n", "lots"), ("image", png)), multipart, param="n")
openai(400, "not supported", "edits", form(("prompt", "a fox"), ("image", png), ("mask", png)), multipart, param="mask")
openai(413, "too large", "edits", b"", multipart, length=64 << 20)
openai(413, "too large", "generations", b"", "application/json", length=64 << 20)
openai(400, "JSON object", "generations", b'{"prompt": "a fox",', "application/json")
openai(400, "JSON object", "generations", b'["a fox"]', "application/json")
openai(400, "must be text", "generations", json.dumps({"prompt": 42}).encode(), "application/json", param="prompt")
openai(400, "must be text", "generations", json.dumps({"prompt": "a fox", "model": 3}).encode(), "application/json", param="model")
openai(400, "size", "generations", json.dumps({"prompt": "a fox", "size": "9999x9999"}).encode(), "application/json", param="size")
openai(400, "size", "generations", json.dumps({"prompt": "a fox", "size": 1024}).encode(), "application/json", param="size")
openai(400, "streamed", "generations", json.dumps({"prompt": "a fox", "stream": True}).encode(), "application/json", param="stream")
openai(400, "between", "generations", json.dumps({"prompt": "a fox", "n": -1}).encode(), "application/json", param="n")
code, _, raw = send("/v1/images/generations", json.dumps({"prompt": "a fox", "model": "nope"}).encode(), "application/json")
assert code == 404 and json.loads(raw)["error"]["code"] == "model_not_found", raw
assert json.loads(raw)["error"]["message"] == "The model 'nope' does not exist or you do not have access to it.", raw
cases += 1
# An unknown name is quoted cut: whole, one of 6 MB made an answer of 6 MB (12 MB where A1111 says
# it twice). Long ASCII (which the body's reader keeps as bytes) is an unknown name too, not "not text";
# "é" goes as an escape, which the reader decodes as any other string.
long_names = ["x" * 100_000, "é" * 100_000]
for name in long_names:
    code, _, raw = send("/v1/images/generations", json.dumps({"prompt": "a fox", "model": name}).encode(), "application/json")
    assert code == 404 and len(raw) < 1024, f"{code}, {len(raw)} bytes: {raw[:300]}"
    assert json.loads(raw)["error"]["message"] == f"The model '{name[:40]}…' does not exist or you do not have access to it.", raw[:300]
    cases += 1

# A1111: malformed JSON, oversize, wrong types, unknown checkpoint, bad size, missing image, a mask.
a1111(422, "JSON object", "txt2img", b'{"prompt": ')
a1111(422, "Content-Type", "txt2img", b"prompt=x", "application/x-www-form-urlencoded")
a1111(413, "too large", "img2img", b"", length=64 << 20)
a1111(422, "whole number", "txt2img", json.dumps({"prompt": "a fox", "steps": "many"}).encode())
a1111(422, "whole number from 1 to 100", "txt2img", json.dumps({"prompt": "a fox", "batch_size": 10**30}).encode())
a1111(422, "must be text", "txt2img", json.dumps({"prompt": ["a", "fox"]}).encode())
a1111(404, "Model 'v9' does not exist", "txt2img", json.dumps({"prompt": "x", "override_settings": {"sd_model_checkpoint": "v9"}}).encode())
for name in long_names:
    # options takes a body of 64 KiB at most.
    for path, body in [("txt2img", {"prompt": "x", "override_settings": {"sd_model_checkpoint": name}}), ("options", {"sd_model_checkpoint": name[:10_000]})]:
        code, _, raw = send(f"/sdapi/v1/{path}", json.dumps(body).encode(), "application/json")
        assert code == 404 and len(raw) < 1024, f"{path}: {code}, {len(raw)} bytes: {raw[:300]}"
        assert json.loads(raw)["detail"] == f"Model '{name[:40]}…' does not exist", raw[:300]
        cases += 1
a1111(422, "width, height", "txt2img", json.dumps({"prompt": "a fox", "width": 1000, "height": 1000}).encode())
a1111(422, "init_images", "img2img", json.dumps({"prompt": "a fox"}).encode())
a1111(422, "init_images", "img2img", json.dumps({"prompt": "a fox", "init_images": "abc"}).encode())
a1111(400, "init_images", "img2img", json.dumps({"prompt": "a fox", "init_images": ["bm90IGFuIGltYWdl"]}).encode())
print(f"bad input: {cases} cases ok")
