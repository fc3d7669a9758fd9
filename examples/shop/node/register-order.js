// Registers an order with payhook before the buyer is sent to Paysera.
//
//   PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... \
//     node register-order.js ORDERID AMOUNT_IN_MINOR_UNITS CURRENCY
//
// payhook answers a paid callback for an order it does not know with 409, and
// fulfils one only if amount and currency match what was registered here: so
// register first, redirect second. (Or let payhook build the signed payment URL
// itself with POST /api/v1/payments, which registers the order too.)
const [orderid, amount, currency] = process.argv.slice(2);
if (!currency) {
  console.error("usage: node register-order.js ORDERID AMOUNT_IN_MINOR_UNITS CURRENCY");
  process.exit(2);
}

// The order id is a path segment: escape it (ids may hold "/" or "?").
const answer = await fetch(
  `${process.env.PAYHOOK_ADMIN_URL}/api/v1/orders/${encodeURIComponent(orderid)}`,
  {
    method: "PUT",
    headers: {
      Authorization: `Bearer ${process.env.PAYHOOK_ADMIN_TOKEN}`,
      "Content-Type": "application/json",
    },
    // Minor units as a JSON integer: "1250" (a string) would be refused.
    body: JSON.stringify({ amount: Number.parseInt(amount, 10), currency }),
    signal: AbortSignal.timeout(10_000),
  },
);
const text = await answer.text();
if (!answer.ok) {
  // 409: the id is registered with another amount or currency; 422: a field
  // is invalid. Do not send the buyer to pay an order payhook would not fulfil.
  console.error(`not registered ${orderid}: ${answer.status} ${text}`);
  process.exit(1);
}
// 201: registered; 200: already registered the same way. Both are fine, so the
// call can simply be retried after a network error.
console.log(`registered ${orderid}: ${answer.status} ${text}`);

// Now redirect the buyer to Paysera with callbackurl = https://<payhook>/paysera/callback.
