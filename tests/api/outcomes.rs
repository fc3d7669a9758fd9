//! Every outcome, asserted on the HTTP answer and on the stored rows.

use payhook::sim::CallbackForm;

use crate::helpers::{
    both_backends, legacy_paid_fields, paid_fields, sign, with, Backend, TestApp,
};

async fn fulfilled_once_and_duplicates_answer_ok(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let query = sign(
        &paid_fields("A-1", "1250", "EUR"),
        CallbackForm::AllSignatures,
    );

    let first = app.get_callback(&query).await;
    assert_eq!((first.status, first.body.as_str()), (200, "OK"));
    let again = app.post_callback(&query).await;
    assert_eq!((again.status, again.body.as_str()), (200, "OK"));

    assert_eq!(app.outcomes("A-1").await, ["fulfilled", "duplicate"]);
    assert_eq!(app.fulfilments("A-1"), 1);
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "paid");
    assert!(order["fulfilled_at"].is_string());
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE kind = 'fulfilled'"),
        1
    );
}

async fn rejected_callbacks_are_stored_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let query = sign(&paid_fields("A-1", "1250", "EUR"), CallbackForm::Ss2);
    // Flip a character of `data`: the signature no longer matches.
    let tampered = query.replacen("data=c", "data=d", 1);
    let reply = app.get_callback(&tampered).await;
    assert_eq!(reply.status, 400);
    assert_ne!(reply.body, "OK");
    assert!(
        reply.body.contains("ss2 signature does not verify"),
        "{}",
        reply.body
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected' AND reason = 'ss2 signature does not verify'"),
        1
    );
    assert_eq!(app.fulfilments("A-1"), 0);

    let nothing = app.get_callback("").await;
    assert_eq!(
        (nothing.status, nothing.body.as_str()),
        (400, "rejected: missing data")
    );
}

async fn sms_callbacks_answer_the_reply(backend: Backend) {
    let sms = [
        ("projectid", "123"),
        ("to", "1679"),
        ("sms", "KEY text"),
        ("from", "37060000000"),
        ("operator", "tele2"),
        ("amount", "100"),
        ("currency", "EUR"),
        ("country", "lt"),
        ("id", "123456"),
        ("test", "0"),
        ("key", "KEY"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    let app = TestApp::spawn(backend).await;
    let reply = app.get_callback(&sign(&sms, CallbackForm::Ss2)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "NOSMS"));

    let app = TestApp::spawn_with(backend, &[("PAYHOOK_SMS_REPLY", "Thank you")]).await;
    let query = sign(&sms, CallbackForm::Ss3);
    for _ in 0..2 {
        let reply = app.get_callback(&query).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK Thank you"));
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'sms_received'"),
        1
    );
}

async fn test_payments_are_ignored_unless_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let fields = with(paid_fields("A-1", "1250", "EUR"), "test", "1");
    let reply = app.get_callback(&sign(&fields, CallbackForm::Ss2)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(app.outcomes("A-1").await, ["test_ignored"]);
    assert_eq!(app.order("A-1").await["state"], "awaiting_payment");
    assert_eq!(app.fulfilments("A-1"), 0);

    let app = TestApp::spawn_with(backend, &[("PAYHOOK_ALLOW_TEST_PAYMENTS", "true")]).await;
    app.register("A-1", 1250, "EUR").await;
    let reply = app.get_callback(&sign(&fields, CallbackForm::Ss2)).await;
    assert_eq!(reply.body, "OK");
    assert_eq!(app.outcomes("A-1").await, ["fulfilled"]);
}

async fn statuses_other_than_paid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let base = paid_fields("A-1", "1250", "EUR");
    for (status, extra) in [
        ("0", None),
        ("2", None),
        ("3", None),
        ("4", None),
        ("7", None),
    ] {
        let _: Option<()> = extra;
        let reply = app
            .get_callback(&sign(
                &with(base.clone(), "status", status),
                CallbackForm::Ss2,
            ))
            .await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "OK"),
            "status {status}"
        );
    }
    assert_eq!(
        app.outcomes("A-1").await,
        ["not_paid", "pending", "info", "info", "info"]
    );
    assert_eq!(app.order("A-1").await["state"], "awaiting_payment");

    // Paid, then a status 0: stored, OK, flagged, and the order stays paid.
    let paid = app.get_callback(&sign(&base, CallbackForm::Ss2)).await;
    assert_eq!(paid.body, "OK");
    let unpaid = with(with(base.clone(), "status", "0"), "requestid", "111");
    let reply = app.get_callback(&sign(&unpaid, CallbackForm::Ss2)).await;
    assert_eq!(reply.body, "OK");
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "paid");
    assert_eq!(order["flags"], serde_json::json!(["paid_order_unpaid"]));

    // A refund, registered or not: recorded with its amount.
    let refund = with(with(base.clone(), "status", "5"), "refund_amount", "1250");
    let reply = app.get_callback(&sign(&refund, CallbackForm::Ss2)).await;
    assert_eq!(reply.body, "OK");
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "refunded");
    assert_eq!(order["refunded_amount"], 1250);
    let unregistered = with(
        with(paid_fields("Z-9", "10", "EUR"), "status", "5"),
        "refund_amount",
        "10",
    );
    assert_eq!(
        app.get_callback(&sign(&unregistered, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'refunded'"),
        2
    );
}

async fn unknown_orders_are_retried_until_registered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let query = sign(&paid_fields("LATE-1", "500", "EUR"), CallbackForm::Ss2);
    let reply = app.get_callback(&query).await;
    assert_eq!(reply.status, 409);
    assert_ne!(reply.body, "OK");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'unknown_order' AND orderid = 'LATE-1'"),
        1
    );
    // The gateway retries after the shop registered the order: decided afresh.
    app.register("LATE-1", 500, "EUR").await;
    let retry = app.get_callback(&query).await;
    assert_eq!((retry.status, retry.body.as_str()), (200, "OK"));
    assert_eq!(app.outcomes("LATE-1").await, ["unknown_order", "fulfilled"]);
    assert_eq!(app.fulfilments("LATE-1"), 1);
}

async fn paying_twice_is_flagged_not_fulfilled_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let first = paid_fields("A-1", "1250", "EUR");
    let second = with(first.clone(), "requestid", "555");
    assert_eq!(
        app.get_callback(&sign(&first, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    assert_eq!(
        app.get_callback(&sign(&second, CallbackForm::Ss3))
            .await
            .body,
        "OK"
    );
    assert_eq!(app.outcomes("A-1").await, ["fulfilled", "paid_again"]);
    assert_eq!(app.fulfilments("A-1"), 1);
    assert_eq!(
        app.order("A-1").await["flags"],
        serde_json::json!(["paid_again"])
    );
}

async fn mismatches_need_review(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    app.register("A-2", 1250, "EUR").await;
    let cheap = sign(&paid_fields("A-1", "1", "EUR"), CallbackForm::Ss2);
    let foreign = sign(&paid_fields("A-2", "1250", "USD"), CallbackForm::Ss2);
    assert_eq!(app.get_callback(&cheap).await.body, "OK");
    assert_eq!(app.get_callback(&foreign).await.body, "OK");
    assert_eq!(app.outcomes("A-1").await, ["amount_mismatch"]);
    assert_eq!(app.outcomes("A-2").await, ["currency_mismatch"]);
    for id in ["A-1", "A-2"] {
        assert_eq!(app.order(id).await["state"], "needs_review");
        assert_eq!(app.fulfilments(id), 0);
    }
}

async fn order_check_none_records_unchecked_fulfilment(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_ORDER_CHECK", "none")]).await;
    let query = sign(&paid_fields("FREE-1", "990", "EUR"), CallbackForm::Ss2);
    assert_eq!(app.get_callback(&query).await.body, "OK");
    assert_eq!(app.fulfilments("FREE-1"), 1);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM fulfilments WHERE orderid = 'FREE-1' AND NOT amount_checked"
        ),
        1
    );
}

async fn every_form_arrives_at_the_same_endpoint(backend: Backend) {
    // Legacy callbacks are off by default (tests/api/forgery.rs); on here.
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_ACCEPT_LEGACY", "true")]).await;
    for (i, form) in [
        CallbackForm::Ss2,
        CallbackForm::Ss3,
        CallbackForm::AllSignatures,
        CallbackForm::Encrypted,
        CallbackForm::Legacy,
    ]
    .into_iter()
    .enumerate()
    {
        let orderid = format!("F-{i}");
        app.register(&orderid, 700, "EUR").await;
        let fields = match form {
            CallbackForm::Legacy => legacy_paid_fields(&orderid, "700", "EUR"),
            _ => paid_fields(&orderid, "700", "EUR"),
        };
        let query = sign(&fields, form);
        let reply = if i % 2 == 0 {
            app.get_callback(&query).await
        } else {
            app.post_callback(&query).await
        };
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"), "{form:?}");
        assert_eq!(app.fulfilments(&orderid), 1, "{form:?}");
    }
    // ss1 alone is refused by default, accepted with PAYHOOK_ACCEPT_SS1.
    app.register("S-1", 700, "EUR").await;
    let ss1 = sign(&paid_fields("S-1", "700", "EUR"), CallbackForm::Ss1);
    assert_eq!(app.get_callback(&ss1).await.status, 400);
    let lenient = TestApp::spawn_with(backend, &[("PAYHOOK_ACCEPT_SS1", "true")]).await;
    lenient.register("S-1", 700, "EUR").await;
    assert_eq!(lenient.get_callback(&ss1).await.body, "OK");
}

both_backends!(
    fulfilled_once_and_duplicates_answer_ok,
    rejected_callbacks_are_stored_with_the_reason,
    sms_callbacks_answer_the_reply,
    test_payments_are_ignored_unless_allowed,
    statuses_other_than_paid,
    unknown_orders_are_retried_until_registered,
    paying_twice_is_flagged_not_fulfilled_twice,
    mismatches_need_review,
    order_check_none_records_unchecked_fulfilment,
    every_form_arrives_at_the_same_endpoint,
);
