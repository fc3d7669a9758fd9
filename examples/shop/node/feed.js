// Reads the events feed from where the last run stopped (for shops that poll
// instead of receiving notifications; run it from cron, or in a loop).
//
//   PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... node feed.js
//
// The place reached is kept in PAYHOOK_FEED_CURSOR (default ./payhook-feed.cursor).
import fs from "node:fs";

const adminUrl = process.env.PAYHOOK_ADMIN_URL;
const cursor = process.env.PAYHOOK_FEED_CURSOR ?? "payhook-feed.cursor";
const limit = Number(process.env.PAYHOOK_FEED_LIMIT ?? 100);

// `after` is a feed position, not an event id: payhook hands positions out only
// after an event committed, so paging by them never skips a late commit.
let after = fs.existsSync(cursor) ? Number(fs.readFileSync(cursor, "utf8")) : 0;
for (;;) {
  const answer = await fetch(`${adminUrl}/api/v1/events?after=${after}&limit=${limit}`, {
    headers: { Authorization: `Bearer ${process.env.PAYHOOK_ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!answer.ok) throw new Error(`feed: ${answer.status} ${await answer.text()}`);
  const page = await answer.json();
  for (const event of page.events) {
    // The notification's body plus state, attempts and position. An event can
    // be seen twice (a crash before the cursor is saved): deduplicate on
    // event.id, the same id as the notification's webhook-id.
    console.log(`event ${event.id} ${event.type} order=${event.orderid} state=${event.state}`);
  }
  // Save the cursor only once the page is handled: a crash in between re-reads
  // the page (harmless), it never skips it. Write-then-rename so a crash cannot
  // leave half a number behind.
  fs.writeFileSync(`${cursor}.tmp`, String(page.next_after));
  fs.renameSync(`${cursor}.tmp`, cursor);
  if (page.events.length < limit) break; // caught up: next_after stays put until something new commits
  after = page.next_after;
}
