<?php
// Registers an order with payhook before the buyer is sent to Paysera.
//
//   PAYHOOK_ADMIN_URL=http://127.0.0.1:8081 PAYHOOK_ADMIN_TOKEN=... \
//     php register-order.php ORDERID AMOUNT_IN_MINOR_UNITS CURRENCY
//
// payhook answers a paid callback for an order it does not know with 409, and
// fulfils one only if amount and currency match what was registered here: so
// register first, redirect second. (Or let payhook build the signed payment URL
// itself with POST /api/v1/payments, which registers the order too.)
if ($argc !== 4) {
    fwrite(STDERR, "usage: php register-order.php ORDERID AMOUNT_IN_MINOR_UNITS CURRENCY\n");
    exit(2);
}
[, $orderid, $amount, $currency] = $argv;

// Plain streams, no curl extension needed. ignore_errors: read the body of a
// 4xx answer too, to show payhook's reason.
$context = stream_context_create(['http' => [
    'method'        => 'PUT',
    'header'        => "Authorization: Bearer " . getenv('PAYHOOK_ADMIN_TOKEN') . "\r\n"
                     . "Content-Type: application/json\r\n",
    // Minor units as a JSON integer: "1250" (a string) would be refused.
    'content'       => json_encode(['amount' => (int) $amount, 'currency' => $currency]),
    'timeout'       => 10,
    'ignore_errors' => true,
]]);
// The order id is a path segment: escape it (ids may hold "/" or "?").
$url = getenv('PAYHOOK_ADMIN_URL') . '/api/v1/orders/' . rawurlencode($orderid);
$body = file_get_contents($url, false, $context);
if ($body === false) {
    fwrite(STDERR, "not registered $orderid: payhook unreachable\n");
    exit(1);
}
$status = (int) explode(' ', $http_response_header[0])[1];
if ($status !== 200 && $status !== 201) {
    // 409: the id is registered with another amount or currency; 422: a field
    // is invalid. Do not send the buyer to pay an order payhook would not fulfil.
    fwrite(STDERR, "not registered $orderid: $status $body\n");
    exit(1);
}
// 201: registered; 200: already registered the same way. Both are fine, so the
// call can simply be retried after a network error.
echo "registered $orderid: $status $body\n";

// Now redirect the buyer to Paysera with callbackurl = https://<payhook>/paysera/callback.
