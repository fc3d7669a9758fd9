r"""Registers an order with payhook before the buyer is sent to Paysera.

    PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... \
        python3 register_order.py ORDERID AMOUNT_IN_MINOR_UNITS CURRENCY

payhook answers a paid callback for an order it does not know with 409, and
fulfils one only if amount and currency match what was registered here: so
register first, redirect second. (Or let payhook build the signed payment URL
itself with POST /api/v1/payments, which registers the order too.)
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

if len(sys.argv) != 4:
    sys.exit(__doc__)
orderid, amount, currency = sys.argv[1], int(sys.argv[2]), sys.argv[3]
request = urllib.request.Request(
    # The order id is a path segment: escape it (ids may hold "/" or "?").
    f"{os.environ['PAYHOOK_ADMIN_URL']}/api/v1/orders/{urllib.parse.quote(orderid, safe='')}",
    method="PUT",
    data=json.dumps({"amount": amount, "currency": currency}).encode(),
    headers={
        "Authorization": f"Bearer {os.environ['PAYHOOK_ADMIN_TOKEN']}",
        "Content-Type": "application/json",
    },
)
try:
    # 201: registered; 200: already registered the same way. Both are fine, so
    # the call can simply be retried after a network error.
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(f"registered {orderid}: {answer.status} {answer.read().decode()}")
except urllib.error.HTTPError as e:
    # 409: the id is registered with another amount or currency; 422: a field
    # is invalid. Do not send the buyer to pay an order payhook would not fulfil.
    sys.exit(f"not registered {orderid}: {e.code} {e.read().decode()}")

# Now redirect the buyer to Paysera with callbackurl = https://<payhook>/paysera/callback.
