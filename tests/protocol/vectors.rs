//! Every shared vector, one test per file, through the library and through the
//! `payhook verify` binary. The vectors live in `tests/vectors` (a copy of the
//! shared set); a missing directory fails loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use payhook::domain::Proof;
use payhook::paysera::{
    build_payment_request, build_repeat_request, validate_request, CallbackError, Environment,
    KeySet, Policy, Project, RequestParams, Verifier,
};
use secrecy::SecretString;
use serde_json::Value;

use crate::support;

use support::vectors::vectors_dir;

fn load(rel: &str) -> (PathBuf, Value) {
    let path = vectors_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (
        path,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}")),
    )
}

fn verifier(project: u64, password: &str, key_file: &Path, policy: Policy) -> Verifier {
    let keys = KeySet::from_pem(&std::fs::read_to_string(key_file).unwrap()).unwrap();
    let project = Project::new(project, Some(SecretString::from(password.to_string())));
    Verifier::new(vec![project], keys, policy).unwrap()
}

fn policy_named(check: &str) -> Policy {
    Policy {
        accept_ss1: check == "ss1",
        ..Policy::default()
    }
}

fn fields_json(v: &payhook::domain::VerifiedCallback) -> Value {
    serde_json::to_value(v.fields()).unwrap()
}

/// Field pairs in order, for vectors whose expectation is an ordered list.
fn ordered_pairs(v: &payhook::domain::VerifiedCallback) -> Vec<(String, String)> {
    v.fields()
        .iter()
        .map(|(k, v)| match v {
            payhook::domain::FieldValue::Text(t) => (k.to_string(), t.clone()),
            other => panic!("{k} is not text: {other:?}"),
        })
        .collect()
}

fn expected_pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

struct CliRun {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_cli(args: &[&str]) -> CliRun {
    let out = Command::new(env!("CARGO_BIN_EXE_payhook"))
        .args(args)
        .env_remove("PAYSERA_PROJECT_ID")
        .env_remove("PAYSERA_PROJECT_PASSWORD")
        .env_remove("PAYSERA_PUBLIC_KEY_FILE")
        .env_remove("PAYHOOK_ACCEPT_LEGACY")
        .output()
        .expect("run payhook");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `current/` vector: library and CLI agree with the official library.
fn check_current(rel: &str) {
    let (path, case) = load(rel);
    let dir = path.parent().unwrap();
    let project = case["project_id"].as_u64().unwrap();
    let password = case["password"].as_str().unwrap();
    let key_file = dir.join(case["public_key"].as_str().unwrap());
    let check = case["signature_check"].as_str().unwrap();
    let query = case["query"].as_str().unwrap();
    let ok = case["expect"]["ok"].as_bool().unwrap();

    let result = verifier(project, password, &key_file, policy_named(check))
        .verify(&RequestParams::from_query_or_url(query));
    let mut cli_args = vec![
        "verify".to_string(),
        "--project-id".into(),
        project.to_string(),
        "--password".into(),
        password.into(),
        "--public-key".into(),
        key_file.display().to_string(),
    ];
    if check == "ss1" {
        cli_args.push("--accept-ss1".into());
    }
    cli_args.push(query.into());
    let cli = run_cli(&cli_args.iter().map(String::as_str).collect::<Vec<_>>());

    if ok {
        let callback = result.unwrap_or_else(|e| panic!("{rel}: rejected: {e}"));
        assert_eq!(
            fields_json(&callback),
            case["expect"]["fields"],
            "{rel}: fields"
        );
        assert_eq!(cli.code, 0, "{rel}: cli stderr {}", cli.stderr);
        let printed: Value = serde_json::from_str(cli.stdout.trim()).unwrap();
        assert_eq!(printed, case["expect"]["fields"], "{rel}: cli fields");
    } else {
        let err = result.err().unwrap_or_else(|| panic!("{rel}: accepted"));
        assert_eq!(cli.code, 1, "{rel}: cli exit code, stderr {}", cli.stderr);
        assert_eq!(
            cli.stderr.lines().count(),
            1,
            "{rel}: one line: {}",
            cli.stderr
        );
        assert!(
            cli.stderr.contains(&err.to_string()),
            "{rel}: {}",
            cli.stderr
        );
    }
}

macro_rules! current_vectors {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $name() { check_current(concat!("current/", $file)); })*
        const CURRENT_FILES: &[&str] = &[$($file),*];
    };
}

current_vectors! {
    additional_info_status_3 => "additional-info-status-3.json",
    currency_converted => "currency-converted.json",
    gcm_wrong_password => "gcm-wrong-password.json",
    micro_sms => "micro-sms.json",
    missing_data => "missing-data.json",
    not_executed_status_0 => "not-executed-status-0.json",
    paid_all_signatures => "paid-all-signatures.json",
    paid_certificate_as_key => "paid-certificate-as-key.json",
    paid_gcm_encrypted => "paid-gcm-encrypted.json",
    paid_ss1_only => "paid-ss1-only.json",
    paid_ss2_only => "paid-ss2-only.json",
    paid_ss3_only => "paid-ss3-only.json",
    pending_status_2 => "pending-status-2.json",
    special_characters => "special-characters.json",
    ss1_wrong_password => "ss1-wrong-password.json",
    tampered_data => "tampered-data.json",
    test_payment => "test-payment.json",
    wrong_project => "wrong-project.json",
}

#[test]
fn every_vector_file_has_a_test() {
    for (sub, listed) in [("current", CURRENT_FILES), ("real", REAL_FILES)] {
        let mut on_disk: Vec<String> = std::fs::read_dir(vectors_dir().join(sub))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "vectors in {sub}/ without a test, or tests without a file"
        );
    }
}

#[test]
fn ss1_only_vector_needs_accept_ss1() {
    let (path, case) = load("current/paid-ss1-only.json");
    let key = path.parent().unwrap().join("public.pem");
    let query = case["query"].as_str().unwrap();
    let err = verifier(123, "pass-1f2e3d", &key, Policy::default())
        .verify(&RequestParams::from_query_or_url(query))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no RSA signature (ss2 or ss3); ss1 alone is not accepted"
    );
    let cli = run_cli(&[
        "verify",
        "--project-id",
        "123",
        "--password",
        "pass-1f2e3d",
        "--public-key",
        key.to_str().unwrap(),
        query,
    ]);
    assert_eq!(cli.code, 1, "{}", cli.stderr);
}

const REAL_FILES: &[&str] = &[
    "legacy-1.3-micro-sms-test.json",
    "legacy-1.4-macro-paid-test.json",
    "legacy-1.4-micro-sms-test.json",
    "request-build-official-lib.json",
    "synthetic-gcm-short-password.json",
    "v16-paid-test-usd-ss1-ss2.json",
];

fn real_key_files() -> Vec<PathBuf> {
    let keys = vectors_dir().join("real/keys");
    [
        "paysera-rsa1024.spki.pem",
        "paysera-2009-mokejimai.crt.pem",
        "paysera-live-2025.crt.pem",
    ]
    .iter()
    .map(|f| keys.join(f))
    .collect()
}

fn without_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|p| p.split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn real_v16_paid_test_usd_ss1_ss2() {
    let (_, case) = load("real/v16-paid-test-usd-ss1-ss2.json");
    let query = case["raw_query"].as_str().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let project = case["secrets"]["project_id"].as_u64().unwrap();
    let want = expected_pairs(&case["expected"]["official_lib_3_1_5_openssl_signer"]["fields"]);
    for key in real_key_files() {
        for strict in [false, true] {
            let policy = Policy {
                strict,
                ..Policy::default()
            };
            let got = verifier(project, password, &key, policy)
                .verify(&RequestParams::from_query_or_url(query))
                .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
            assert_eq!(ordered_pairs(&got), want, "{}", key.display());
        }
    }
    // The compiled-in key is the gateway's: no key file needed.
    let default = Verifier::new(
        vec![Project::new(project, None)],
        KeySet::paysera_production(),
        Policy::default(),
    )
    .unwrap();
    let got = default
        .verify(&RequestParams::from_query_or_url(query))
        .unwrap();
    assert_eq!(ordered_pairs(&got), want);
    let cli = run_cli(&["verify", "--project-id", "31530", query]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(cli.stdout.trim()).unwrap(),
        serde_json::to_value(got.fields()).unwrap()
    );

    // As the library's SS1 signer sees it: ss2 gone, ss1 accepted only on request.
    let ss1_only = without_param(query, "ss2");
    let key = &real_key_files()[0];
    let ss1_want = expected_pairs(&case["expected"]["official_lib_3_1_5_ss1_signer"]["fields"]);
    let accept = Policy {
        accept_ss1: true,
        ..Policy::default()
    };
    let got = verifier(project, password, key, accept)
        .verify(&RequestParams::from_query_or_url(&ss1_only))
        .unwrap();
    assert_eq!(ordered_pairs(&got), ss1_want);
    assert!(verifier(project, password, key, Policy::default())
        .verify(&RequestParams::from_query_or_url(&ss1_only))
        .is_err());
}

const LEGACY: Policy = Policy {
    accept_ss1: false,
    strict: false,
    accept_legacy: true,
};

#[test]
fn real_legacy_1_4_macro_paid_test() {
    let (_, case) = load("real/legacy-1.4-macro-paid-test.json");
    let query = case["raw_query"].as_str().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let project = case["secrets"]["project_id"].as_u64().unwrap();
    let want = expected_pairs(
        &case["expected"]["lib-webtopay_1.4_(c2e69d7)_checkResponse_with_SS2"]["fields"],
    );
    for key in real_key_files() {
        for (accept_ss1, strict) in [(false, false), (true, false), (false, true)] {
            let policy = Policy {
                accept_ss1,
                strict,
                accept_legacy: true,
            };
            let got = verifier(project, password, &key, policy)
                .verify(&RequestParams::from_query_or_url(query))
                .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
            assert_eq!(ordered_pairs(&got), want, "{}", key.display());
            assert_eq!(got.kind(), payhook::domain::PaymentKind::Macro);
        }
    }
    // Off by default, in the library and in the CLI.
    let key = &real_key_files()[0];
    let err = verifier(project, password, key, Policy::default())
        .verify(&RequestParams::from_query_or_url(query))
        .unwrap_err();
    assert_eq!(err, CallbackError::LegacyDisabled);
    let cli = run_cli(&[
        "verify",
        "--project-id",
        "13156",
        "--password",
        password,
        query,
    ]);
    assert_eq!(cli.code, 1, "{}", cli.stderr);
    assert!(
        cli.stderr.contains("PAYHOOK_ACCEPT_LEGACY"),
        "{}",
        cli.stderr
    );
    let cli = run_cli(&[
        "verify",
        "--accept-legacy",
        "--project-id",
        "13156",
        "--password",
        password,
        query,
    ]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    // Without the password `_ss1` cannot be checked: a configuration error.
    let cli = run_cli(&["verify", "--accept-legacy", "--project-id", "13156", query]);
    assert_eq!(cli.code, 2, "{}", cli.stderr);

    // `_ss1` alone (the library's SS1-only run) is never enough, whatever the policy.
    let ss1_only = without_param(query, "wp__ss2");
    for accept_ss1 in [false, true] {
        let policy = Policy {
            accept_ss1,
            ..LEGACY
        };
        assert_eq!(
            verifier(project, password, key, policy)
                .verify(&RequestParams::from_query_or_url(&ss1_only))
                .unwrap_err(),
            CallbackError::NoLegacyRsaSignature
        );
    }
    // Wrong password: `_ss1` fails beside a valid `_ss2`.
    assert_eq!(
        verifier(project, "0123456789abcdef0123456789abcdef", key, LEGACY)
            .verify(&RequestParams::from_query_or_url(query))
            .unwrap_err(),
        CallbackError::SignatureMismatch(Proof::LegacySs1)
    );
}

/// `_ss2` signs the values in order but not their names. Every way of moving a
/// genuine legacy callback's values under other names must fail.
#[test]
fn real_legacy_relabelled_callbacks_are_rejected() {
    let (_, case) = load("real/legacy-1.4-macro-paid-test.json");
    let query = case["raw_query"].as_str().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let project = case["secrets"]["project_id"].as_u64().unwrap();
    let key = &real_key_files()[0];
    let verify = |q: &str| {
        verifier(project, password, key, LEGACY).verify(&RequestParams::from_query_or_url(q))
    };
    let genuine = verify(query).unwrap();

    // The attack found against the old main: `test` and `_ss1` renamed.
    let attack = query
        .replace("wp_test=1", "wp_tesx=1")
        .replace("wp__ss1=", "wp_xss1=");
    assert_eq!(verify(&attack).unwrap_err(), CallbackError::NoLegacySs1);
    // `_ss1` dropped or renamed alone.
    for q in [
        without_param(query, "wp__ss1"),
        query.replace("wp__ss1=", "wp__ss9="),
    ] {
        assert_eq!(verify(&q).unwrap_err(), CallbackError::NoLegacySs1, "{q}");
    }
    // Each field the decision reads, renamed.
    for name in [
        "projectid",
        "orderid",
        "amount",
        "currency",
        "test",
        "version",
        "status",
    ] {
        let renamed = query.replace(&format!("wp_{name}="), &format!("wp_{name}x="));
        assert!(verify(&renamed).is_err(), "renamed {name} accepted");
    }
    // A value moved under another read field's name (names swapped).
    let swaps = [
        ("amount", "currency"),
        ("test", "status"),
        ("status", "payamount"),
        ("currency", "paycurrency"),
        ("orderid", "projectid"),
        ("lang", "currency"),
        ("receiverid", "orderid"),
    ];
    for (a, b) in swaps {
        let swapped = query
            .replace(&format!("wp_{a}="), "wp_SWAP=")
            .replace(&format!("wp_{b}="), &format!("wp_{a}="))
            .replace("wp_SWAP=", &format!("wp_{b}="));
        let err = verify(&swapped).expect_err(&format!("{a} <-> {b} accepted"));
        assert!(
            matches!(
                err,
                CallbackError::OutOfOrder(_) | CallbackError::SignatureMismatch(_)
            ),
            "{a} <-> {b}: {err}"
        );
    }
    // A name twice: in the query, or once in the query and once in the body.
    let twice = format!("{query}&wp_test=0");
    assert!(matches!(
        verify(&twice).unwrap_err(),
        CallbackError::RepeatedName(n) if n == "wp_test"
    ));
    let posted = verifier(project, password, key, LEGACY)
        .verify(&RequestParams::parse(query.as_bytes(), b"wp_status=1"));
    assert!(matches!(posted, Err(CallbackError::RepeatedName(_))));
    // PHP turns `wp.test` into `wp_test`: still the same name twice.
    let mangled = format!("{query}&wp.test=0");
    assert!(matches!(
        verify(&mangled).unwrap_err(),
        CallbackError::RepeatedName(_)
    ));

    // A field the decision does not read may be renamed (the gateway echoes the
    // shop's own fields), but it stays the same payment: the same identity.
    let echo_renamed = query.replace("wp_lang=", "wp_langx=");
    let relabelled = verify(&echo_renamed).unwrap();
    assert_eq!(relabelled.identity(), genuine.identity());
    // The merchant's own, unprefixed parameters change nothing either.
    let extra = format!("{query}&shop_param=1");
    assert_eq!(verify(&extra).unwrap().identity(), genuine.identity());
}

const REAL_SMS_FILES: [&str; 2] = [
    "real/legacy-1.3-micro-sms-test.json",
    "real/legacy-1.4-micro-sms-test.json",
];

/// Genuine 1.3 and 1.4 SMS callbacks carry their fields in the
/// gateway's SMS order (`test`, `country`, `_ss1`, `amount`, ...), not the
/// macro order; both verify as micro payments of the project whose password
/// made their `_ss1`, under every policy that accepts legacy callbacks.
#[test]
fn real_legacy_sms_callbacks_verify() {
    for file in REAL_SMS_FILES {
        let (_, case) = load(file);
        let query = case["raw_query"].as_str().unwrap();
        let password = case["secrets"]["project_password"].as_str().unwrap();
        let project = case["secrets"]["project_id"].as_u64().unwrap();
        let mut want = expected_pairs(&case["params_after_prefix_strip"]);
        want.push(("type".into(), "micro".into()));
        for key in real_key_files() {
            for (accept_ss1, strict) in [(false, false), (true, false), (false, true)] {
                let policy = Policy {
                    accept_ss1,
                    strict,
                    accept_legacy: true,
                };
                let got = verifier(project, password, &key, policy)
                    .verify(&RequestParams::from_query_or_url(query))
                    .unwrap_or_else(|e| panic!("{file}, {}: {e}", key.display()));
                assert_eq!(got.kind(), payhook::domain::PaymentKind::Micro, "{file}");
                assert_eq!(got.project_id(), project.to_string(), "{file}");
                assert_eq!(ordered_pairs(&got), want, "{file}");
            }
        }
        let key = &real_key_files()[0];
        assert_eq!(
            verifier(project, password, key, Policy::default())
                .verify(&RequestParams::from_query_or_url(query))
                .unwrap_err(),
            CallbackError::LegacyDisabled,
            "{file}"
        );
        assert_eq!(
            verifier(project, "0123456789abcdef0123456789abcdef", key, LEGACY)
                .verify(&RequestParams::from_query_or_url(query))
                .unwrap_err(),
            CallbackError::SignatureMismatch(Proof::LegacySs1),
            "{file}"
        );
        let cli = run_cli(&[
            "verify",
            "--accept-legacy",
            "--project-id",
            &project.to_string(),
            "--password",
            password,
            query,
        ]);
        assert_eq!(cli.code, 0, "{file}: {}", cli.stderr);
    }
}

/// The SMS order keeps what the macro order is for: `_ss2` binds values, not
/// names, so a genuine SMS callback's values moved under other names (swapped,
/// or a macro callback made of them) must still fail.
#[test]
fn real_legacy_relabelled_sms_callbacks_are_rejected() {
    for file in REAL_SMS_FILES {
        let (_, case) = load(file);
        let query = case["raw_query"].as_str().unwrap();
        let password = case["secrets"]["project_password"].as_str().unwrap();
        let project = case["secrets"]["project_id"].as_u64().unwrap();
        let key = &real_key_files()[0];
        let verify = |q: &str| {
            verifier(project, password, key, LEGACY).verify(&RequestParams::from_query_or_url(q))
        };
        assert!(verify(query).is_ok(), "{file}: the genuine one");
        let swaps = [
            ("from", "to"),
            ("sms", "key"),
            ("amount", "currency"),
            ("test", "amount"),
            ("id", "amount"),
            ("sms", "from"),
            ("country", "currency"),
            ("provider", "operator"),
            ("to", "version"),
        ];
        for (a, b) in swaps {
            let swapped = query
                .replace(&format!("wp_{a}="), "wp_SWAP=")
                .replace(&format!("wp_{b}="), &format!("wp_{a}="))
                .replace("wp_SWAP=", &format!("wp_{b}="));
            assert_ne!(swapped, query);
            let err = verify(&swapped).expect_err(&format!("{file}: {a} <-> {b} accepted"));
            assert!(
                matches!(err, CallbackError::OutOfOrder(_)),
                "{file}: {a} <-> {b}: {err}"
            );
        }
        // Relabelled as a macro payment: the values the gateway signed, under
        // the names a paid order callback carries.
        let as_macro = query
            .replace("wp_country=", "wp_projectid=")
            .replace("wp_amount=", "wp_orderid=")
            .replace("wp_currency=", "wp_amount=")
            .replace("wp_id=", "wp_currency=")
            .replace("wp_key=", "wp_status=");
        assert!(verify(&as_macro).is_err(), "{file}: relabelled as macro");
        // Renamed out of the micro shape: the macro rules apply, and refuse it.
        let renamed = query.replace("wp_to=", "wp_tox=");
        assert!(verify(&renamed).is_err(), "{file}: to renamed");
    }
}

#[test]
fn real_synthetic_gcm_short_password() {
    let (_, case) = load("real/synthetic-gcm-short-password.json");
    let query = case["raw_query"].as_str().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let want = expected_pairs(&case["expected"]["official_lib_3_1_5"]["fields"]);
    let key = &real_key_files()[0];
    let got = verifier(123, password, key, Policy::default())
        .verify(&RequestParams::from_query_or_url(query))
        .unwrap();
    assert_eq!(ordered_pairs(&got), want);
    let cli = run_cli(&[
        "verify",
        "--project-id",
        "123",
        "--password",
        password,
        query,
    ]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    // Without a password the check cannot run: a configuration error, exit 2.
    let cli = run_cli(&["verify", "--project-id", "123", query]);
    assert_eq!(cli.code, 2, "{}", cli.stderr);
}

#[test]
fn real_request_build_official_lib() {
    let (_, case) = load("real/request-build-official-lib.json");
    let project = case["secrets"]["project_id"].as_u64().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let request = &case["request"];
    let fields = expected_pairs(&request["input_in_call_order"]);
    let built = build_payment_request(project, password, &fields, "3.1.5").unwrap();
    assert_eq!(built.data, request["data"].as_str().unwrap());
    assert_eq!(built.sign, request["sign"].as_str().unwrap());
    assert_eq!(
        built.url(Environment::Production),
        request["payment_url_production"].as_str().unwrap()
    );
    assert_eq!(
        built.url(Environment::Sandbox),
        request["payment_url_sandbox"].as_str().unwrap()
    );
    let decoded = payhook::paysera::base64url::decode(built.data.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        request["http_build_query"].as_str().unwrap().as_bytes()
    );

    let repeat = build_repeat_request(project, password, "42", "3.1.5");
    assert_eq!(
        repeat.data,
        case["repeat_request"]["data"].as_str().unwrap()
    );
    assert_eq!(
        repeat.sign,
        case["repeat_request"]["sign"].as_str().unwrap()
    );

    let docs = &case["docs_encoding_example"];
    let query = payhook::paysera::php::build_query([
        ("param1", "abc"),
        ("param2", "Some string with symbols %=&"),
    ]);
    assert_eq!(query, docs["http_build_query"].as_str().unwrap());
    assert_eq!(
        payhook::paysera::base64url::encode(query.as_bytes()),
        docs["base64"].as_str().unwrap()
    );

    let base = &fields[..4];
    for (summary, edit) in [
        ("orderid empty", ("orderid", String::new())),
        ("lang 'lt' (needs 3 letters)", ("lang", "lt".to_string())),
        ("test '2'", ("test", "2".to_string())),
        ("orderid 41 chars", ("orderid", "x".repeat(41))),
    ] {
        let mut input: Vec<(String, String)> = base.to_vec();
        match input.iter_mut().find(|(k, _)| k == edit.0) {
            Some(slot) => slot.1 = edit.1.clone(),
            None => input.push((edit.0.to_string(), edit.1.clone())),
        }
        let err = validate_request(&input).unwrap_err();
        let want = case["validation_errors_from_lib"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["input_summary"] == summary)
            .unwrap();
        assert_eq!(
            err.to_string(),
            want["message"].as_str().unwrap(),
            "{summary}"
        );
        assert_eq!(err.field(), want["field"].as_str().unwrap(), "{summary}");
    }

    // The CLI prints the same URL and JSON.
    let mut args = vec![
        "payment-url".to_string(),
        "--project-id".into(),
        project.to_string(),
        "--password".into(),
        password.into(),
        "--spec-version".into(),
        "3.1.5".into(),
        "--json".into(),
    ];
    args.extend(fields.iter().map(|(k, v)| format!("{k}={v}")));
    let cli = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let printed: Value = serde_json::from_str(cli.stdout.trim()).unwrap();
    assert_eq!(printed["url"], request["payment_url_production"]);
    assert_eq!(printed["sign"], request["sign"]);
}

/// A payment link's `data` + `sign` is a valid `ss1` callback: fields only the
/// gateway sets can never be put into one.
#[test]
fn payment_url_refuses_gateway_only_fields() {
    for field in [
        "status",
        "payamount",
        "refund_amount",
        "_ss2",
        "ss3",
        "sign",
    ] {
        let cli = run_cli(&[
            "payment-url",
            "--project-id",
            "123",
            "--password",
            "pass-1f2e3d",
            "orderid=1",
            "accepturl=https://a",
            "cancelurl=https://c",
            "callbackurl=https://b",
            &format!("{field}=1"),
        ]);
        assert_eq!(cli.code, 2, "{field}: {}", cli.stdout);
        assert!(
            cli.stderr.contains(&format!("'{field}'")) && cli.stdout.is_empty(),
            "{field}: {}",
            cli.stderr
        );
    }
}
