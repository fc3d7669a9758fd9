<?php
// Reads the events feed from where the last run stopped (for shops that poll
// instead of receiving notifications; run it from cron, or in a loop).
//
//   PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... php feed.php
//
// The place reached is kept in PAYHOOK_FEED_CURSOR (default ./payhook-feed.cursor).
$cursor = getenv('PAYHOOK_FEED_CURSOR') ?: 'payhook-feed.cursor';
$limit = (int) (getenv('PAYHOOK_FEED_LIMIT') ?: 100);
$context = stream_context_create(['http' => [
    'header'  => "Authorization: Bearer " . getenv('PAYHOOK_ADMIN_TOKEN') . "\r\n",
    'timeout' => 10,
]]);

// `after` is a feed position, not an event id: payhook hands positions out only
// after an event committed, so paging by them never skips a late commit.
$after = file_exists($cursor) ? (int) file_get_contents($cursor) : 0;
do {
    $answer = file_get_contents(getenv('PAYHOOK_ADMIN_URL') . "/api/v1/events?after=$after&limit=$limit", false, $context);
    if ($answer === false) {
        fwrite(STDERR, "feed: no answer from payhook\n");
        exit(1);
    }
    $page = json_decode($answer, true, 512, JSON_THROW_ON_ERROR);
    foreach ($page['events'] as $event) {
        // The notification's body plus state, attempts and position. An event
        // can be seen twice (a crash before the cursor is saved): deduplicate
        // on $event['id'], the same id as the notification's webhook-id.
        echo "event {$event['id']} {$event['type']} order={$event['orderid']} state={$event['state']}\n";
    }
    // Save the cursor only once the page is handled: a crash in between
    // re-reads the page (harmless), it never skips it. Write-then-rename so a
    // crash cannot leave half a number behind.
    file_put_contents("$cursor.tmp", (string) $page['next_after']);
    rename("$cursor.tmp", $cursor);
    $after = $page['next_after'];
} while (count($page['events']) === $limit); // fewer: caught up
