//! `payhook simulate`: plays the gateway against a payhook running in demo mode.
//! Registers demo orders and sends them classic callbacks signed with the demo
//! gateway key (paid, duplicate, tampered, wrong amount, test) and Checkout
//! webhooks signed with the demo client secret (partial, full, duplicate, an
//! older snapshot, a wrong secret), and notifications of the demo FreeKassa
//! gateway (paid, again, a wrong secret, a changed amount), printing each
//! answer.

use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::demo;
use crate::sim::{signed_form, CallbackForm, CheckoutSigner, GatewaySigner, OrderFigures};

pub struct Target<'a> {
    pub url: &'a str,
    pub admin_url: &'a str,
    pub data_dir: &'a Path,
}

struct Scenario {
    name: &'static str,
    orderid: String,
    amount: &'static str,
    test: &'static str,
    tamper: bool,
    expect: &'static str,
}

pub async fn run(target: Target<'_>) -> anyhow::Result<bool> {
    let dir = demo::demo_dir(target.data_dir);
    anyhow::ensure!(
        dir.join("gateway-private.pem").exists(),
        "no demo gateway in {}: start payhook in demo mode first (cargo run --release)",
        dir.display()
    );
    let material = demo::prepare(target.data_dir).context("reading the demo gateway")?;
    let signer = GatewaySigner::from_pem(
        &material.gateway_private_pem,
        material.password.expose_secret(),
    )?;
    let token = material.admin_token.expose_secret().to_string();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;

    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let order = format!("DEMO-{stamp}");
    let second = format!("DEMO-{stamp}-B");
    for id in [&order, &second] {
        let created = client
            .post(format!("{}/api/v1/payments", target.admin_url))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "orderid": id, "amount": 1250, "currency": "EUR",
                "accepturl": "https://shop.example/thanks",
                "cancelurl": "https://shop.example/cancel",
                "callbackurl": format!("{}/paysera/callback", target.url),
            }))
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", target.admin_url))?;
        let status = created.status();
        let body: serde_json::Value = created.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "registering {id}: {status} {body}");
        println!(
            "registered {id}: 12.50 EUR, buyer would go to {}",
            body["url"].as_str().unwrap_or("?")
        );
    }

    let scenarios = [
        Scenario {
            name: "paid",
            orderid: order.clone(),
            amount: "1250",
            test: "0",
            tamper: false,
            expect: "200 OK",
        },
        Scenario {
            name: "duplicate",
            orderid: order.clone(),
            amount: "1250",
            test: "0",
            tamper: false,
            expect: "200 OK",
        },
        Scenario {
            name: "tampered",
            orderid: order.clone(),
            amount: "1",
            test: "0",
            tamper: true,
            expect: "400",
        },
        Scenario {
            name: "wrong amount",
            orderid: second.clone(),
            amount: "999",
            test: "0",
            tamper: false,
            expect: "200 OK",
        },
        Scenario {
            name: "test payment",
            orderid: second.clone(),
            amount: "1250",
            test: "1",
            tamper: false,
            expect: "200 OK",
        },
    ];
    let mut all_as_expected = true;
    for s in &scenarios {
        let project = material.project_id.to_string();
        let fields = [
            ("projectid", project.as_str()),
            ("orderid", s.orderid.as_str()),
            ("amount", s.amount),
            ("currency", "EUR"),
            ("payment", "demo"),
            ("country", "LT"),
            ("status", "1"),
            ("test", s.test),
            ("payamount", s.amount),
            ("paycurrency", "EUR"),
            ("version", "1.6"),
            ("requestid", if s.test == "1" { "2" } else { "1" }),
        ];
        let mut query = signer.callback_query(&fields, CallbackForm::AllSignatures);
        if s.tamper {
            // Sign one thing and send another, as a forger would.
            let honest = signer.callback_query(
                &fields.map(|(k, v)| if k == "amount" { (k, "1250") } else { (k, v) }),
                CallbackForm::AllSignatures,
            );
            let data = honest.split('&').next().unwrap_or_default().to_string();
            let forged = query.split('&').next().unwrap_or_default().to_string();
            query = honest.replacen(&data, &forged, 1);
        }
        let reply = client
            .get(format!("{}/paysera/callback?{query}", target.url))
            .send()
            .await
            .with_context(|| format!("cannot reach payhook at {}", target.url))?;
        let status = reply.status().as_u16();
        let body = reply.text().await.unwrap_or_default();
        let answer = format!("{status} {body}");
        let ok = answer.starts_with(s.expect);
        all_as_expected &= ok;
        println!(
            "{:<13} -> {answer:<50} {}",
            s.name,
            if ok { "" } else { "(unexpected)" }
        );
    }

    for id in [&order, &second] {
        show_order(&client, target.admin_url, &token, id, None).await?;
    }
    all_as_expected &= checkout(&client, &target, &material, &token, &stamp).await?;
    all_as_expected &= hashed(&client, &target, &material, &token, &stamp).await?;
    Ok(all_as_expected)
}

/// The Checkout (Modern) half: one order paid in two parts.
async fn checkout(
    client: &reqwest::Client,
    target: &Target<'_>,
    material: &demo::DemoMaterial,
    token: &str,
    stamp: &str,
) -> anyhow::Result<bool> {
    let orderid = format!("DEMO-{stamp}-C");
    let client_id = demo::DEMO_CHECKOUT_CLIENT_ID;
    register(client, target, token, &orderid, 2500, client_id).await?;
    println!("registered {orderid}: 25.00 EUR on the Checkout (Modern) API");
    let signer = CheckoutSigner::new(material.checkout_secret.expose_secret());
    let forger = CheckoutSigner::new("not-the-demo-secret");
    let figures = |amount_paid: i64, updated_at: i64| OrderFigures {
        orderid: &orderid,
        amount: 2500,
        amount_paid,
        currency: "EUR",
        updated_at,
        payment_status: "settled",
    };
    let now = chrono::Utc::now().timestamp();
    let steps = [
        (
            "modern partial",
            signer.snapshot(&figures(1000, now)),
            "200",
        ),
        (
            "modern paid",
            signer.snapshot(&figures(2500, now + 1)),
            "200",
        ),
        (
            "modern again",
            signer.snapshot(&figures(2500, now + 1)),
            "200",
        ),
        (
            "modern older",
            signer.snapshot(&figures(1000, now - 60)),
            "200",
        ),
        (
            "modern forged",
            forger.snapshot(&figures(2500, now + 2)),
            "403",
        ),
    ];
    let mut as_expected = true;
    for (name, webhook, expect) in steps {
        let mut request = client
            .post(format!("{}/paysera/checkout/webhook", target.url))
            .body(webhook.body);
        for (header, value) in &webhook.headers {
            request = request.header(*header, value);
        }
        as_expected &= answered(name, request, expect, target).await?;
    }
    show_order(client, target.admin_url, token, &orderid, Some(client_id)).await?;
    Ok(as_expected)
}

/// A hash-signed gateway (the demo FreeKassa): one order paid, through
/// `/gateways/demo-fk/callback`.
async fn hashed(
    client: &reqwest::Client,
    target: &Target<'_>,
    material: &demo::DemoMaterial,
    token: &str,
    stamp: &str,
) -> anyhow::Result<bool> {
    let orderid = format!("DEMO-{stamp}-F");
    let gateway = demo::DEMO_GATEWAY;
    register(client, target, token, &orderid, 990, gateway).await?;
    println!("registered {orderid}: 9.90 EUR on the {gateway} gateway (FreeKassa profile)");
    let recipe = demo::demo_gateway(material)?;
    let secret = material.freekassa_secret.expose_secret();
    let fields = |amount: &'static str| {
        [
            ("MERCHANT_ID", "100001"),
            ("AMOUNT", amount),
            ("intid", "7001"),
            ("MERCHANT_ORDER_ID", orderid.as_str()),
        ]
    };
    let paid = signed_form(&recipe, &fields("9.90"), secret)?;
    // Signed for one amount, sent with another, as a forger would.
    let changed = paid.replacen("AMOUNT=9.90", "AMOUNT=0.99", 1);
    let steps = [
        ("gateway paid", paid.clone(), "200 YES"),
        ("gateway again", paid, "200 YES"),
        (
            "gateway forged",
            signed_form(&recipe, &fields("9.90"), "not-the-demo-secret")?,
            "400",
        ),
        ("gateway changed", changed, "400"),
    ];
    let mut as_expected = true;
    for (name, body, expect) in steps {
        let request = client
            .post(format!("{}/gateways/{gateway}/callback", target.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        as_expected &= answered(name, request, expect, target).await?;
    }
    show_order(client, target.admin_url, token, &orderid, Some(gateway)).await?;
    Ok(as_expected)
}

/// Registers `orderid` for `amount` minor units of EUR in `project`.
async fn register(
    client: &reqwest::Client,
    target: &Target<'_>,
    token: &str,
    orderid: &str,
    amount: i64,
    project: &str,
) -> anyhow::Result<()> {
    let created = client
        .put(format!("{}/api/v1/orders/{orderid}", target.admin_url))
        .bearer_auth(token)
        .json(&serde_json::json!({"amount": amount, "currency": "EUR", "project_id": project}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status().is_success(),
        "registering {orderid}: {}",
        created.status()
    );
    Ok(())
}

/// Sends `request` and prints its answer on one line; whether it starts
/// with `expect`.
async fn answered(
    name: &str,
    request: reqwest::RequestBuilder,
    expect: &str,
    target: &Target<'_>,
) -> anyhow::Result<bool> {
    let reply = request
        .send()
        .await
        .with_context(|| format!("cannot reach payhook at {}", target.url))?;
    let answer = format!(
        "{} {}",
        reply.status().as_u16(),
        reply.text().await.unwrap_or_default()
    );
    let ok = answer.starts_with(expect);
    println!(
        "{name:<15} -> {answer:<48} {}",
        if ok { "" } else { "(unexpected)" }
    );
    Ok(ok)
}

/// One line: the order's state after the outcomes stored for it.
async fn show_order(
    client: &reqwest::Client,
    admin_url: &str,
    token: &str,
    orderid: &str,
    project_id: Option<&str>,
) -> anyhow::Result<()> {
    let project = project_id.map_or(String::new(), |p| format!("?project_id={p}"));
    let order: serde_json::Value = client
        .get(format!("{admin_url}/api/v1/orders/{orderid}{project}"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let outcomes: Vec<&str> = order["callbacks"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["outcome"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "order {orderid}: state {} after {outcomes:?}",
        order["state"]
    );
    Ok(())
}
