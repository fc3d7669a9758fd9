"""Reads the events feed from where the last run stopped (for shops that poll
instead of receiving notifications; run it from cron, or in a loop).

    PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... python3 feed.py

The place reached is kept in PAYHOOK_FEED_CURSOR (default ./payhook-feed.cursor).
"""

import json
import os
import urllib.request
from pathlib import Path

admin_url = os.environ["PAYHOOK_ADMIN_URL"]
token = os.environ["PAYHOOK_ADMIN_TOKEN"]
cursor = os.environ.get("PAYHOOK_FEED_CURSOR", "payhook-feed.cursor")
limit = int(os.environ.get("PAYHOOK_FEED_LIMIT", "100"))

# `after` is a feed position, not an event id: payhook hands positions out only
# after an event committed, so paging by them never skips a late commit.
after = int(Path(cursor).read_text()) if os.path.exists(cursor) else 0
while True:
    request = urllib.request.Request(
        f"{admin_url}/api/v1/events?after={after}&limit={limit}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        page = json.load(answer)
    for event in page["events"]:
        # The notification's body plus state, attempts and position. An event
        # can be seen twice (a crash before the cursor is saved): deduplicate
        # on event["id"], the same id as the notification's webhook-id.
        print(f"event {event['id']} {event['type']} order={event['orderid']} state={event['state']}")
    # Save the cursor only once the page is handled: a crash in between
    # re-reads the page (harmless), it never skips it. Write-then-rename so a
    # crash cannot leave half a number behind.
    Path(cursor + ".tmp").write_text(str(page["next_after"]))
    os.replace(cursor + ".tmp", cursor)
    if len(page["events"]) < limit:
        break  # caught up; next_after stays the same until something new commits
    after = page["next_after"]
