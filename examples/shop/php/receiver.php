<?php
// Receives payhook's signed notifications (Standard Webhooks) and acts on each
// event once. Serve it like any PHP endpoint; to try it:
//
//   composer install
//   PAYHOOK_NOTIFY_SECRET=whsec_... php -S 127.0.0.1:8000 receiver.php
//
// Point payhook's SHOP_NOTIFY_URL at it (http://127.0.0.1:8000/ here) with the
// same secret in SHOP_NOTIFY_SECRET.
require __DIR__ . '/vendor/autoload.php';

// The secret exactly as payhook has it, "whsec_" prefix included: the library
// strips the prefix and base64-decodes the rest itself.
$webhook = new \StandardWebhooks\Webhook(getenv('PAYHOOK_NOTIFY_SECRET'));

// The library looks the headers up by lower-case name. Leave a missing one
// out (not ''), so the library reports it as missing; and compare with null,
// not truthiness: payhook's test event has webhook-id "0".
$headers = array_filter([
    'webhook-id'        => $_SERVER['HTTP_WEBHOOK_ID'] ?? null,
    'webhook-timestamp' => $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? null,
    'webhook-signature' => $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? null,
], fn ($value) => $value !== null);
try {
    // Verify the raw bytes as received, before any json_decode: the signature
    // covers these exact bytes.
    $event = $webhook->verify(file_get_contents('php://input'), $headers);
} catch (\Exception $e) {
    // Tampered, signed with another secret, more than 5 minutes old, or a
    // header missing: not from payhook. 400, and act on nothing.
    error_log('rejected: ' . $e->getMessage());
    http_response_code(400);
    exit;
}
$id = $headers['webhook-id'];
error_log("verified webhook-id=$id {$event['type']} order={$event['orderid']}");

// Delivery is at least once: the same event can come again (a lost 2xx, an
// operator's retry). A real shop keeps these ids in a UNIQUE column, written
// in the same transaction as the order's change. Every PHP request starts
// afresh, so this example keeps them as files in HANDLED_DIR instead.
$dir = getenv('HANDLED_DIR') ?: sys_get_temp_dir() . '/payhook-handled';
is_dir($dir) || mkdir($dir, 0700, true);
$mark = $dir . '/' . (ctype_digit($id) ? $id : md5($id));
if (file_exists($mark)) {
    error_log("webhook-id=$id already handled");
} else {
    if ($event['type'] === 'order.paid') {
        // Amounts are integers in minor units (1250 = 12.50 EUR).
        error_log("ship order {$event['orderid']}: paid {$event['amount']} {$event['currency']}");
    } elseif ($event['type'] !== 'payhook.test') { // `payhook check`: acknowledge only
        // order.needs_review, order.refunded, order.paid_again, ...: a person looks.
        error_log("order {$event['orderid']}: {$event['type']}, for a person to look at");
    }
    touch($mark);
}
// 2xx only once the event is handled: any other answer (a fatal error is a
// 500) makes payhook send it again later, so nothing is lost.
http_response_code(204);
