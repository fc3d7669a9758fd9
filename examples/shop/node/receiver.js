// Receives payhook's signed notifications (Standard Webhooks) and acts on each
// event once.
//
//   PAYHOOK_NOTIFY_SECRET=whsec_... RECEIVER_ADDR=127.0.0.1:8000 node receiver.js
//
// Point payhook's SHOP_NOTIFY_URL at it (http://127.0.0.1:8000/ here) with the
// same secret in SHOP_NOTIFY_SECRET. Plain node:http; with Express, take the
// body with express.raw(), never express.json(): the signature covers the raw bytes.
import http from "node:http";
import { Webhook } from "standardwebhooks";

// The secret exactly as payhook has it, "whsec_" prefix included: the library
// strips the prefix and base64-decodes the rest itself.
const webhook = new Webhook(process.env.PAYHOOK_NOTIFY_SECRET);

// Delivery is at least once: the same event can come again (a lost 2xx, an
// operator's retry). A real shop keeps these ids in a UNIQUE column, written in
// the same transaction as the order's change; a Set is enough for an example.
const handled = new Set();

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // Verify the raw bytes as received, before any JSON parsing.
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = webhook.verify(body, req.headers); // Node lowercases header names
    } catch (e) {
      // Tampered, signed with another secret, or more than 5 minutes old:
      // not from payhook. 400, and act on nothing.
      console.error(`rejected: ${e.message}`);
      return res.writeHead(400).end();
    }
    const id = req.headers["webhook-id"];
    console.error(`verified webhook-id=${id} ${event.type} order=${event.orderid}`);
    if (handled.has(id)) {
      console.error(`webhook-id=${id} already handled`);
    } else {
      handle(event);
      handled.add(id);
    }
    // 2xx only once the event is handled: any other answer makes payhook send
    // it again later, so nothing is lost if handle() throws.
    res.writeHead(204).end();
  });
});

function handle(event) {
  if (event.type === "order.paid") {
    // Amounts are integers in minor units (1250 = 12.50 EUR).
    console.error(`ship order ${event.orderid}: paid ${event.amount} ${event.currency}`);
  } else if (event.type !== "payhook.test") { // `payhook check`: acknowledge only
    // order.needs_review, order.refunded, order.paid_again, ...: a person looks.
    console.error(`order ${event.orderid}: ${event.type}, for a person to look at`);
  }
}

const [host, port] = (process.env.RECEIVER_ADDR ?? "127.0.0.1:8000").split(/:(?=\d+$)/);
server.listen(Number(port), host);
