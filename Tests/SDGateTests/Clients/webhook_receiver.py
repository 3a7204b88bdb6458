"""A webhook receiver as a ModelsLab client would run one, checking signatures with the
`standardwebhooks` package (the Standard Webhooks reference implementation for Python).

    webhook_receiver.py SECRET FAILURES [PORT]

Listens on 127.0.0.1 (PORT, or a free port; printed first as `listening PORT`); answers the first FAILURES
deliveries with HTTP 500, then 204. Prints one JSON line per delivery: its number, the answer
given, the signature check's outcome, the webhook headers and the body.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret, failures = sys.argv[1], int(sys.argv[2])
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
webhook = Webhook(secret)
received = 0


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        global received
        received += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            webhook.verify(body, dict(self.headers))
            verified = True
        except WebhookVerificationError as error:
            verified = str(error)
        answer = 500 if received <= failures else 204
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()
        headers = {name: self.headers.get(name) for name in ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"]}
        print(json.dumps({"n": received, "answered": answer, "verified": verified, "headers": headers, "body": json.loads(body)}), flush=True)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", port), Receiver)
print(f"listening {server.server_port}", flush=True)
server.serve_forever()
