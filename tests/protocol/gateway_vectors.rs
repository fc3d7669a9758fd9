//! The hash-signed gateways' callbacks built from their published examples
//! (`tests/vectors-gateways/`, a copy of the shared set), read by each
//! built-in profile: a genuine one gives the order, amount, currency and
//! reply the example states; a tampered one proves nothing.

use payhook::gateways::{GatewaySettings, Recipe, Request};
use secrecy::SecretString;
use serde_json::Value;

use crate::support::gateway_vectors::{expected_minor, gateway_vectors as vectors};

/// The built-in profile of a vector, with its secret and nothing else set.
fn recipe(vector: &Value) -> Recipe {
    let profile = vector["profile"].as_str().unwrap();
    let settings = GatewaySettings {
        name: profile.to_string(),
        profile: profile.to_string(),
        ..GatewaySettings::default()
    };
    let secret = SecretString::from(vector["secret"].as_str().unwrap().to_string());
    Recipe::build(&settings, Some(secret), None).unwrap()
}

#[test]
fn every_gateway_vector_reads_as_its_example_says() {
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        let request = Request::from_urlencoded(vector["body"].as_str().unwrap().as_bytes());
        let read = recipe(&vector).read(&request);
        let expect = &vector["expect"];
        if expect["ok"] == false {
            assert!(
                read.is_err(),
                "{name}: a tampered callback verified: {read:?}"
            );
            continue;
        }
        let payment = read.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(payment.verified && payment.paid, "{name}");
        assert_eq!(
            payment.orderid.as_deref(),
            expect["orderid"].as_str(),
            "{name}"
        );
        let minor = expected_minor(&vector);
        assert_eq!(
            payment.amount.map(|a| a.minor_units()),
            Some(minor),
            "{name}"
        );
        if let Some(currency) = expect["currency"].as_str() {
            assert_eq!(
                payment.currency.as_ref().map(|c| c.as_str()),
                Some(currency),
                "{name}"
            );
        }
        if let Some(dedup) = expect["dedup"].as_str() {
            assert_eq!(payment.dedup.as_deref(), Some(dedup), "{name}");
        }
        if let Some(reply) = expect["reply_body"].as_str() {
            assert_eq!(payment.reply, reply, "{name}");
        }
        // What the signature covers is stored whole; the rest is the sender's.
        if let Some(signed) = expect["signed_fields"].as_array() {
            for field in signed {
                let field = field.as_str().unwrap();
                assert!(
                    payment.signed.contains(&format!("{field}=")),
                    "{name}: {field}"
                );
                assert!(
                    !payment.unsigned.contains(&format!("{field}=")),
                    "{name}: {field}"
                );
            }
        }
        assert!(
            payment.unsigned.contains("P_EMAIL")
                || !vector["body"].as_str().unwrap().contains("P_EMAIL")
        );
    }
}

#[test]
fn a_genuine_callback_with_any_signed_field_changed_proves_nothing() {
    for vector in vectors().into_iter().filter(|v| v["expect"]["ok"] == true) {
        let name = vector["name"].as_str().unwrap();
        let recipe = recipe(&vector);
        let fields: Vec<(String, String)> = vector["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
            .collect();
        let request = |fields: &[(String, String)]| {
            Request::new(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                    .collect(),
            )
        };
        let genuine = recipe.read(&request(&fields)).unwrap();
        for i in 0..fields.len() {
            let mut changed = fields.clone();
            changed[i].1.push('1');
            let read = recipe.read(&request(&changed));
            let covered = genuine.signed.contains(&format!("{}=", fields[i].0));
            if covered {
                assert!(
                    read.is_err(),
                    "{name}: {} changed and still verified",
                    fields[i].0
                );
            } else if let Ok(payment) = read {
                // An unsigned field changes nothing a decision reads, except
                // to make it less of a payment.
                assert_eq!(payment.orderid, genuine.orderid, "{name}");
                assert_eq!(payment.amount, genuine.amount, "{name}");
                assert_eq!(payment.currency, genuine.currency, "{name}");
                assert_eq!(
                    payment.identity, genuine.identity,
                    "{name}: {}",
                    fields[i].0
                );
                assert!(!payment.paid || genuine.paid, "{name}");
            }
        }
        // A second copy of a signed field is refused, not guessed at.
        let mut doubled = fields.clone();
        let signed = fields
            .iter()
            .find(|(k, _)| genuine.signed.contains(&format!("{k}=")))
            .unwrap();
        doubled.push(signed.clone());
        assert!(recipe.read(&request(&doubled)).is_err(), "{name}");
    }
}
