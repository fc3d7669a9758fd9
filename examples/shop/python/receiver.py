"""Receives payhook's signed notifications (Standard Webhooks) and acts on each
event once.

    PAYHOOK_NOTIFY_SECRET=whsec_... RECEIVER_ADDR=127.0.0.1:8000 python3 receiver.py

Point payhook's SHOP_NOTIFY_URL at it (http://127.0.0.1:8000/ here) with the
same secret in SHOP_NOTIFY_SECRET. Only the standard library besides
`standardwebhooks`, so it runs anywhere; a Flask or Django view does the same.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

# The secret exactly as payhook has it, "whsec_" prefix included: the library
# strips the prefix and base64-decodes the rest itself.
webhook = Webhook(os.environ["PAYHOOK_NOTIFY_SECRET"])

# Delivery is at least once: the same event can come again (a lost 2xx, an
# operator's retry). A real shop keeps these ids in a UNIQUE column, written in
# the same transaction as the order's change; a set is enough for an example.
handled = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        # Verify the raw bytes as received, before any JSON parsing: the
        # signature covers these exact bytes.
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError as e:
            # Tampered, signed with another secret, or more than 5 minutes
            # old: not from payhook. 400, and act on nothing.
            log(f"rejected: {e}")
            return self.answer(400)
        event_id = self.headers["webhook-id"]
        log(f"verified webhook-id={event_id} {event['type']} order={event['orderid']}")
        if event_id in handled:
            log(f"webhook-id={event_id} already handled")
        else:
            handle(event)
            handled.add(event_id)
        # 2xx only once the event is handled: any other answer makes payhook
        # send it again later, so nothing is lost if handle() fails.
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass  # one line per event (log below) is enough


def handle(event):
    if event["type"] == "order.paid":
        # Amounts are integers in minor units (1250 = 12.50 EUR).
        log(f"ship order {event['orderid']}: paid {event['amount']} {event['currency']}")
    elif event["type"] == "payhook.test":
        pass  # `payhook check` testing the endpoint: acknowledge, do nothing
    else:
        # order.needs_review, order.refunded, order.paid_again, ...: a person looks.
        log(f"order {event['orderid']}: {event['type']}, for a person to look at")


def log(line):
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    host, port = os.environ.get("RECEIVER_ADDR", "127.0.0.1:8000").rsplit(":", 1)
    HTTPServer((host, int(port)), Receiver).serve_forever()
