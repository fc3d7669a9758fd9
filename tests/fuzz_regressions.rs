use payhook::paysera::{base64url, php, KeySet, Policy, Project, RequestParams, Verifier};
use secrecy::SecretString;

fn verifier(policy: Policy) -> Verifier {
    let mut keys = KeySet::from_pem(include_str!("../fuzz/keys/test-public.pem")).unwrap();
    keys.extend(KeySet::paysera_production());
    let projects = vec![
        Project::new(123, Some(SecretString::from("pass-1f2e3d".to_string()))),
        Project::new(
            31530,
            Some(SecretString::from(
                "8c5ebe834bb61a2e5ab8ef38f8d940f3".to_string(),
            )),
        ),
    ];
    Verifier::new(projects, keys, policy).unwrap()
}

#[test]
fn explore() {
    let many: String = (0..1500)
        .map(|i| format!("p{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let deep = format!("a{}=1", "[".repeat(5000));
    let deep2 = format!("a{}=1", "[]".repeat(5000));
    let deep3 = format!("data{}=1", "[x]".repeat(64));
    let deep4 = format!("data{}=1", "[x]".repeat(65));
    let longname = format!("wp_{}[]=1", "n".repeat(10000));
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("many", many.clone().into_bytes(), vec![]),
        ("deep", deep.into_bytes(), vec![]),
        ("deep2", deep2.into_bytes(), vec![]),
        ("deep3", deep3.into_bytes(), vec![]),
        ("deep4", deep4.into_bytes(), vec![]),
        (
            "wp-newline-array",
            b"wp_a%0D%0AINFO+forged[]=1".to_vec(),
            vec![],
        ),
        ("wp-long-array", longname.into_bytes(), vec![]),
        ("wp-invalid-utf8-name", b"wp_%FF=1".to_vec(), vec![]),
        ("invalid-utf8-value", b"wp_a=%FF".to_vec(), vec![]),
        ("data-only-padding", b"data===&ss2=AA".to_vec(), vec![]),
        ("data-padding4", b"data=====&ss3=".to_vec(), vec![]),
        ("data-empty-ss1", b"data=&ss1=".to_vec(), vec![]),
        (
            "ss3-empty",
            b"data=cHJvamVjdGlkPTEyMw&ss3=".to_vec(),
            vec![],
        ),
        (
            "ss3-empty-ss2",
            b"data=cHJvamVjdGlkPTEyMw&ss3=&ss2=AAAA".to_vec(),
            vec![],
        ),
        ("data-array", b"data[]=x&ss2=AA".to_vec(), vec![]),
        ("ss2-array", b"data=eA&ss2[]=AA".to_vec(), vec![]),
        ("data-bad-b64", b"data=%25%25&ss2=AA".to_vec(), vec![]),
        ("gcm-short", b"data=AAAA".to_vec(), vec![]),
        ("gcm-invalid", b"data=AAAA%20".to_vec(), vec![]),
        (
            "legacy-no-sig",
            b"wp_projectid=123&wp_orderid=1".to_vec(),
            vec![],
        ),
        (
            "legacy-ss2-bad",
            b"wp_projectid=123&wp__ss2=AAAA".to_vec(),
            vec![],
        ),
        (
            "legacy-ss1-only",
            b"wp_projectid=123&wp__ss1=00".to_vec(),
            vec![],
        ),
        ("wp-only", b"wp_=1".to_vec(), vec![]),
        ("empty", b"".to_vec(), vec![]),
        (
            "body-overrides-data",
            b"data=eA&ss2=AA".to_vec(),
            b"data[]=1".to_vec(),
        ),
        ("data-nul-name", b"data%00x=eA&ss2=AA".to_vec(), vec![]),
    ];
    for policy in [
        Policy {
            accept_ss1: false,
            strict: false,
        },
        Policy {
            accept_ss1: true,
            strict: true,
        },
    ] {
        let v = verifier(policy);
        for (name, q, b) in &cases {
            let r = v.verify(&RequestParams::parse(q, b));
            let s = match &r {
                Ok(c) => format!("OK {:?}", c.proof()),
                Err(e) => {
                    let t = e.to_string();
                    format!(
                        "ERR({}) {:?}",
                        t.len(),
                        t.chars().take(120).collect::<String>()
                    )
                }
            };
            println!("{policy:?} {name}: {s}");
        }
    }
    let _ = (php::parse_str(b""), base64url::decode(b""));
}
