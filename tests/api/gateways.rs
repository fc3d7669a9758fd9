//! Hash-signed gateways over HTTP (`/gateways/{name}/callback`), through the
//! same pipeline, journal, orders, outbox and metrics as Paysera's callbacks:
//! every published vector, a genuine and forged notification of each built-in
//! profile, and "Веб Оплата" captured, reviewed, confirmed and fulfilled once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use payhook::gateways::Recipe;
use serde_json::{json, Value};

use crate::helpers::{both_backends, Backend, Reply, TestApp, ADMIN_TOKEN};
use crate::notify::receiver::{Receiver, Reply as ShopReply};
use crate::support::cli::{payhook, run};
use crate::support::gateway_vectors::{expected_minor, gateway_vectors};

/// One gateway of each built-in profile, its secret, and the fields of a
/// genuine paid notification for an order (signature not yet added).
struct Profile {
    name: &'static str,
    toml: &'static str,
    secret: &'static str,
    /// The accepting reply for the order `Profile::fields` was given.
    reply: fn(&str) -> String,
    fields: fn(&str) -> Vec<(&'static str, String)>,
}

fn profiles() -> Vec<Profile> {
    vec![
        Profile {
            name: "fk",
            toml: "profile = \"freekassa\"\ncurrency = \"RUB\"",
            secret: "fk-secret-2",
            reply: |_| "YES".into(),
            fields: |order| {
                vec![
                    ("MERCHANT_ID", "14963".into()),
                    ("AMOUNT", "12.50".into()),
                    ("intid", "90001".into()),
                    ("MERCHANT_ORDER_ID", order.into()),
                    ("P_EMAIL", "buyer@example.com".into()),
                ]
            },
        },
        Profile {
            name: "ym",
            toml: "profile = \"yoomoney\"",
            secret: "01234567890ABCDEF01234567890",
            reply: |_| String::new(),
            fields: |order| {
                vec![
                    ("notification_type", "p2p-incoming".into()),
                    ("operation_id", format!("op-{order}")),
                    ("amount", "12.50".into()),
                    ("currency", "643".into()),
                    ("datetime", "2026-12-04T09:00:00.000+03:00".into()),
                    ("sender", "41001000040".into()),
                    ("codepro", "false".into()),
                    ("label", order.into()),
                ]
            },
        },
        Profile {
            name: "wm",
            toml: "profile = \"webmoney\"",
            secret: "wm-secret-key",
            reply: |_| "YES".into(),
            fields: |order| {
                vec![
                    ("LMI_PAYEE_PURSE", "R123456789012".into()),
                    ("LMI_PAYMENT_AMOUNT", "12.50".into()),
                    ("LMI_PAYMENT_NO", order.into()),
                    ("LMI_MODE", "0".into()),
                    ("LMI_SYS_INVS_NO", "281".into()),
                    ("LMI_SYS_TRANS_NO", format!("tr-{order}")),
                    ("LMI_SYS_TRANS_DATE", "20261204 09:00:00".into()),
                    ("LMI_PAYER_PURSE", "R210987654321".into()),
                    ("LMI_PAYER_WM", "123456789012".into()),
                ]
            },
        },
        Profile {
            name: "rk",
            toml: "profile = \"robokassa\"\ncurrency = \"RUB\"",
            secret: "rk-password-2",
            reply: |order| format!("OK{order}"),
            fields: |order| {
                vec![
                    ("OutSum", "12.50".into()),
                    ("InvId", order.into()),
                    ("Shp_item", "7".into()),
                ]
            },
        },
        Profile {
            name: "ik",
            toml: "profile = \"interkassa\"",
            secret: "ik-secret-key",
            reply: |_| "OK".into(),
            fields: |order| {
                vec![
                    ("ik_co_id", "51237daa8f2a2d8413000000".into()),
                    ("ik_pm_no", order.into()),
                    ("ik_am", "12.50".into()),
                    ("ik_cur", "RUB".into()),
                    ("ik_inv_id", format!("inv-{order}")),
                    ("ik_inv_st", "success".into()),
                ]
            },
        },
    ]
}

/// The Веб Оплата gateway: no recipe, the order named by `order`.
const WEBOPLATA: &str =
    "[[gateway]]\nname = \"wo\"\nprofile = \"weboplata\"\norder_field = \"order\"\n";

/// A gateways file with every profile above, Веб Оплата, and one gateway per
/// vector's profile (named `v-PROFILE`, with the vector's secret).
fn gateways_file(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for p in profiles() {
        text.push_str(&format!(
            "[[gateway]]\nname = \"{}\"\n{}\nsecret = \"{}\"\n\n",
            p.name, p.toml, p.secret
        ));
    }
    text.push_str(WEBOPLATA);
    let mut seen = Vec::new();
    for v in gateway_vectors() {
        let profile = v["profile"].as_str().unwrap().to_string();
        if seen.contains(&profile) {
            continue;
        }
        text.push_str(&format!(
            "\n[[gateway]]\nname = \"v-{profile}\"\nprofile = \"{profile}\"\nsecret = \"{}\"\ncurrency = \"RUB\"\n",
            v["secret"].as_str().unwrap()
        ));
        seen.push(profile);
    }
    // YooMoney names its currency: a fixed one beside it is refused as
    // two rules, so the vector gateway takes the field.
    let text = text.replace(
        "profile = \"yoomoney\"\nsecret = \"01234567890ABCDEF01234567890\"\ncurrency = \"RUB\"\n",
        "profile = \"yoomoney\"\nsecret = \"01234567890ABCDEF01234567890\"\n",
    );
    let path = dir.join("gateways.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn spawn(backend: Backend, dir: &Path, extra: &[(&str, &str)]) -> TestApp {
    let file = gateways_file(dir).display().to_string();
    let mut env = vec![("PAYHOOK_GATEWAYS_FILE", file.as_str())];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

/// The profile's recipe as payhook reads it, to sign with (the gateway's side).
fn recipe(p: &Profile) -> Recipe {
    let text = format!(
        "[[gateway]]\nname = \"{}\"\n{}\nsecret = \"x\"\n",
        p.name, p.toml
    );
    payhook::config::gateways::parse(&text, "test")
        .unwrap()
        .remove(0)
}

/// `fields` signed as the gateway signs them with `secret`, as a form body.
fn signed(p: &Profile, fields: &[(&str, String)], secret: &str) -> String {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    payhook::sim::signed_form(&recipe(p), &pairs, secret).unwrap()
}

async fn post(app: &TestApp, gateway: &str, body: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/gateways/{gateway}/callback", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("gateway notification");
    Reply {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

async fn register(app: &TestApp, gateway: &str, orderid: &str, amount: i64) {
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"amount": amount, "currency": "RUB", "project_id": gateway}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {gateway} {orderid}");
}

async fn order(app: &TestApp, gateway: &str, orderid: &str) -> Value {
    app.admin_get(&format!("/orders/{orderid}?project_id={gateway}"))
        .await
}

fn fulfilments(app: &TestApp, gateway: &str, orderid: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) AS n FROM fulfilments WHERE project_id = '{gateway}' AND orderid = '{orderid}'"
    ))
}

fn outcomes(order: &Value) -> Vec<String> {
    order["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// Every vector of `tests/vectors-gateways/` over HTTP: a genuine one is
/// fulfilled once and answered with the reply its gateway wants, again as a
/// duplicate; a tampered one is refused and fulfils nothing.
async fn every_gateway_vector_over_http(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(backend, dir.path(), &[]).await;
    for vector in gateway_vectors() {
        let name = vector["name"].as_str().unwrap();
        let gateway = format!("v-{}", vector["profile"].as_str().unwrap());
        let body = vector["body"].as_str().unwrap();
        let expect = &vector["expect"];
        if expect["ok"] == false {
            let reply = post(&app, &gateway, body).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (400, "rejected"),
                "{name}"
            );
            continue;
        }
        let orderid = expect["orderid"].as_str().unwrap();
        register(&app, &gateway, orderid, expected_minor(&vector)).await;
        let want = expect["reply_body"].as_str().unwrap_or("");
        for _ in 0..2 {
            let reply = post(&app, &gateway, body).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, want), "{name}");
        }
        assert_eq!(fulfilments(&app, &gateway, orderid), 1, "{name}");
        let order = order(&app, &gateway, orderid).await;
        assert_eq!(order["state"], "paid", "{name}");
        assert_eq!(outcomes(&order), ["fulfilled", "duplicate"], "{name}");
    }
    // The tampered vectors were refused and stored as rejections, nothing else.
    let tampered = gateway_vectors()
        .iter()
        .filter(|v| v["expect"]["ok"] == false)
        .count() as i64;
    assert!(tampered >= 2);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        tampered
    );
}

/// Each built-in profile: a genuine notification is fulfilled once (eight at
/// once, and again later, are duplicates), answered with its template, told
/// to the shop and counted; a changed amount, another secret or an unsigned
/// field's change of meaning never fulfils and never gets the reply.
async fn each_profile_fulfils_once_and_refuses_forgeries(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(backend, dir.path(), &[]).await;
    for p in profiles() {
        let orderid = "7001";
        register(&app, p.name, orderid, 1250).await;
        let fields = (p.fields)(orderid);

        // Forged: the amount changed under a genuine signature, or signed
        // with a secret that is not the shop's.
        let genuine = signed(&p, &fields, p.secret);
        let cheaper = genuine.replacen("12.50", "0.01", 1);
        assert_ne!(cheaper, genuine, "{}", p.name);
        let wrong_key = signed(&p, &fields, "not-the-secret");
        for forged in [&cheaper, &wrong_key] {
            let reply = post(&app, p.name, forged).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (400, "rejected"),
                "{}: {forged}",
                p.name
            );
        }
        assert_eq!(fulfilments(&app, p.name, orderid), 0, "{}", p.name);
        assert_eq!(
            order(&app, p.name, orderid).await["state"],
            "awaiting_payment"
        );

        // Genuine, eight at once: one fulfilment, every one answered.
        let replies = futures::future::join_all((0..8).map(|_| post(&app, p.name, &genuine))).await;
        for reply in &replies {
            assert_eq!(
                (reply.status, reply.body.clone()),
                (200, (p.reply)(orderid)),
                "{}",
                p.name
            );
        }
        assert_eq!(fulfilments(&app, p.name, orderid), 1, "{}", p.name);
        let order = order(&app, p.name, orderid).await;
        assert_eq!(order["state"], "paid", "{}", p.name);
        let outcomes = outcomes(&order);
        assert_eq!(
            outcomes.iter().filter(|o| *o == "fulfilled").count(),
            1,
            "{}: {outcomes:?}",
            p.name
        );
        assert!(outcomes
            .iter()
            .all(|o| o == "fulfilled" || o == "duplicate"));
        // The shop's event, for this order.
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM outbox WHERE kind = 'fulfilled' AND orderid = '{orderid}' \
                 AND project_id = '{}'",
                p.name
            )),
            1,
            "{}",
            p.name
        );
        let metrics = app.metrics().await;
        assert_eq!(
            metrics[&format!(
                "payhook_gateway_callbacks_total{{gateway=\"{}\",outcome=\"fulfilled\"}}",
                p.name
            )],
            1.0
        );
    }
    let metrics = app.metrics().await;
    assert_eq!(
        metrics["payhook_callbacks_total{api=\"gateway\",outcome=\"fulfilled\"}"],
        5.0
    );
}

/// A notification of a gateway payhook does not know, or from outside the
/// allow-list, is refused; nothing is paid.
async fn unknown_gateways_and_senders_outside_the_allow_list_are_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(backend, dir.path(), &[]).await;
    let reply = post(&app, "nope", "a=1").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (404, "no such gateway")
    );

    let file = dir.path().join("allow.toml");
    std::fs::write(
        &file,
        "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\ncurrency = \"RUB\"\nsecret = \"fk-secret-2\"\nallow = [\"203.0.113.0/24\"]\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let guarded = TestApp::spawn_with(backend, &[("PAYHOOK_GATEWAYS_FILE", file.as_str())]).await;
    let p = &profiles()[0];
    register(&guarded, "fk", "7002", 1250).await;
    let reply = post(&guarded, "fk", &signed(p, &(p.fields)("7002"), p.secret)).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(fulfilments(&guarded, "fk", "7002"), 0);
    assert_eq!(
        guarded.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        1
    );

    // Behind a trusted proxy, the sender is the client the proxy names; the
    // same header from anyone else is ignored.
    let proxied = TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_GATEWAYS_FILE", file.as_str()),
            ("PAYHOOK_TRUSTED_PROXIES", "127.0.0.1"),
            ("PAYHOOK_CLIENT_IP_HEADER", "X-Forwarded-For"),
        ],
    )
    .await;
    register(&proxied, "fk", "7003", 1250).await;
    let body = signed(p, &(p.fields)("7003"), p.secret);
    let send = |client: &'static str| {
        proxied
            .client
            .post(format!("{}/gateways/fk/callback", proxied.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Forwarded-For", client)
            .body(body.clone())
            .send()
    };
    let outside = send("198.51.100.7").await.unwrap();
    assert_eq!(outside.status(), 403);
    assert_eq!(fulfilments(&proxied, "fk", "7003"), 0);
    let inside = send("203.0.113.9").await.unwrap();
    assert_eq!(inside.status(), 200);
    assert_eq!(inside.text().await.unwrap(), "YES");
    assert_eq!(fulfilments(&proxied, "fk", "7003"), 1);
    // Not a trusted proxy: its header names nobody.
    let direct = guarded
        .client
        .post(format!("{}/gateways/fk/callback", guarded.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-For", "203.0.113.9")
        .body(signed(p, &(p.fields)("7002"), p.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 403);
    assert_eq!(fulfilments(&guarded, "fk", "7002"), 0);
}

/// "Веб Оплата" without a recipe: each notification is stored (bounded) and
/// answered `ok`, attached to its order, which it does not change; the
/// operator confirms it with the command line, and the order is then paid
/// once and the shop told; the same confirmation again changes nothing.
async fn weboplata_is_captured_reviewed_confirmed_and_fulfilled_once(backend: Backend) {
    let shop = Receiver::always(ShopReply::Status(200)).await;
    let url = shop.url();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(
        backend,
        dir.path(),
        &[
            ("SHOP_NOTIFY_URL", url.as_str()),
            (
                "SHOP_NOTIFY_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
        ],
    )
    .await;
    register(&app, "wo", "W-1", 50000).await;
    let body = "order=W-1&sum=500.00&email=buyer%40example.com&sign=whatever";
    for _ in 0..2 {
        let reply = post(&app, "wo", body).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    }
    // A GET is taken as well.
    let reply = app
        .client
        .get(format!(
            "{}/gateways/wo/callback?order=W-1&sum=1.00",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "ok");

    let seen = order(&app, "wo", "W-1").await;
    assert_eq!(seen["state"], "awaiting_payment");
    assert_eq!(outcomes(&seen), ["captured", "duplicate", "captured"]);
    assert_eq!(fulfilments(&app, "wo", "W-1"), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM outbox"), 0);

    // The review: the journal's id is the one the command takes.
    let list = app.admin_get("/callbacks?outcome=captured").await;
    let captured: Vec<i64> = list["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(captured.len(), 2);
    let first = *captured.iter().min().unwrap();

    let cli_dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateways.toml").display().to_string();
    let confirm = |callback: i64| {
        let mut cmd = payhook(cli_dir.path(), &app.database_url);
        cmd.env("PAYHOOK_GATEWAYS_FILE", &file).args([
            "orders",
            "confirm",
            "W-1",
            "--project-id",
            "wo",
            "--callback",
            &callback.to_string(),
        ]);
        cmd.output().unwrap()
    };
    // Not this order's notification, or not a captured one: refused.
    let wrong = confirm(captured.iter().max().unwrap() + 100);
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");

    let out = confirm(first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fulfilled"));
    let again = confirm(first);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("duplicate"));

    let paid = order(&app, "wo", "W-1").await;
    assert_eq!(paid["state"], "paid");
    assert_eq!(fulfilments(&app, "wo", "W-1"), 1);
    let received = shop
        .wait_until(Duration::from_secs(10), "the shop told", |r| !r.is_empty())
        .await;
    let event = received[0].json();
    assert_eq!(
        (&event["type"], &event["project_id"], &event["orderid"]),
        (&json!("order.paid"), &json!("wo"), &json!("W-1")),
        "{event}"
    );
    assert_eq!(
        (&event["amount"], &event["currency"]),
        (&json!(50000), &json!("RUB"))
    );

    // The same through the API: the other captured notification of a paid
    // order is `paid_again`, never a second fulfilment.
    let other = *captured.iter().max().unwrap();
    let response = app
        .client
        .post(format!(
            "{}/api/v1/orders/W-1/confirm?project_id=wo",
            app.admin
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"callback": other}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["outcome"], "paid_again", "{answer}");
    assert_eq!(fulfilments(&app, "wo", "W-1"), 1);
}

/// Anyone can send a gateway without a recipe notifications: captured rows
/// past `PAYHOOK_CAPTURED_RETENTION` are deleted, except the one an operator
/// confirmed, which stays beside its confirmation as the payment's proof.
async fn captured_notifications_expire_unless_confirmed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(backend, dir.path(), &[("PAYHOOK_CAPTURED_RETENTION", "1s")]).await;
    register(&app, "wo", "W-R", 1000).await;
    for n in 0..3 {
        let reply = post(&app, "wo", &format!("order=W-R&n={n}")).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    }
    let first = app.count("SELECT min(id) AS n FROM callbacks WHERE outcome = 'captured'");
    let response = app
        .client
        .post(format!(
            "{}/api/v1/orders/W-R/confirm?project_id=wo",
            app.admin
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"callback": first}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let left = loop {
        let left = app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'captured'");
        if left == 1 || std::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(left, 1, "the unconfirmed notifications are deleted");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM callbacks WHERE id = {first} AND outcome = 'captured'"
        )),
        1,
        "the confirmed one stays"
    );
    let paid = order(&app, "wo", "W-R").await;
    assert_eq!(paid["state"], "paid");
    assert_eq!(outcomes(&paid), ["captured", "fulfilled"]);
    assert_eq!(fulfilments(&app, "wo", "W-R"), 1);
}

/// A gateway's notification found by its buyer's e-mail (`P_EMAIL`, which
/// FreeKassa does not sign: it is stored beside the signed part) in another
/// case, and erased: the address is gone, the signed fields stay decoded,
/// the order stays paid.
async fn a_gateway_notification_is_erased_by_email(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(backend, dir.path(), &[]).await;
    let p = &profiles()[0];
    register(&app, "fk", "7101", 1250).await;
    let reply = post(&app, "fk", &signed(p, &(p.fields)("7101"), p.secret)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "YES"));
    let holding = || {
        app.count(
            "SELECT count(*) AS n FROM callbacks WHERE raw_query || coalesce(raw_unsigned, '') \
             LIKE '%buyer%40example.com%'",
        )
    };
    assert_eq!(holding(), 1);

    let cli_dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateways.toml").display().to_string();
    let mut erase = payhook(cli_dir.path(), &app.database_url);
    erase.env("PAYHOOK_GATEWAYS_FILE", &file).args([
        "erase",
        "--json",
        "--email",
        "Buyer@Example.com",
    ]);
    let (code, out, err) = run(&mut erase);
    assert_eq!(code, 0, "{err}");
    let erased: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        erased["orders"],
        json!([{"project_id": "fk", "orderid": "7101", "rows_erased": 1}])
    );
    assert_eq!(holding(), 0);
    #[derive(diesel::QueryableByName)]
    struct Facts {
        #[diesel(sql_type = diesel::sql_types::Text)]
        facts: String,
    }
    let facts = app
        .query::<Facts>("SELECT coalesce(facts, '') AS facts FROM callbacks WHERE orderid = '7101'")
        .remove(0)
        .facts;
    let facts: Value = serde_json::from_str(&facts).unwrap();
    // The signed fields stay; the e-mail came beside them and is gone.
    assert_eq!(
        (&facts["AMOUNT"], &facts["MERCHANT_ORDER_ID"]),
        (&json!("12.50"), &json!("7101")),
        "{facts}"
    );
    assert!(
        !facts.to_string().to_lowercase().contains("buyer"),
        "{facts}"
    );
    assert_eq!(order(&app, "fk", "7101").await["state"], "paid");
    assert_eq!(fulfilments(&app, "fk", "7101"), 1);
}

both_backends!(
    a_gateway_notification_is_erased_by_email,
    captured_notifications_expire_unless_confirmed,
    every_gateway_vector_over_http,
    each_profile_fulfils_once_and_refuses_forgeries,
    unknown_gateways_and_senders_outside_the_allow_list_are_refused,
    weboplata_is_captured_reviewed_confirmed_and_fulfilled_once,
);
