//! A configured gateway: a built-in profile's defaults (`docs/gateways.md`
//! §2 and §4), with the settings a shop gave beside it, checked once at
//! start-up so that a recipe that could be fooled never serves.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::signature::{Digest, Output, PairForm, Part, Signature, SortedFields};
use crate::domain::Currency;

/// The built-in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Freekassa,
    Yoomoney,
    Webmoney,
    Robokassa,
    Interkassa,
    /// "Веб Оплата": nothing of its signature is published; without a
    /// recipe a notification is captured for review, never a payment.
    Weboplata,
    /// Everything spelled out in the settings.
    Custom,
}

impl Profile {
    pub const ALL: [Profile; 7] = [
        Profile::Freekassa,
        Profile::Yoomoney,
        Profile::Webmoney,
        Profile::Robokassa,
        Profile::Interkassa,
        Profile::Weboplata,
        Profile::Custom,
    ];

    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Freekassa => "freekassa",
            Profile::Yoomoney => "yoomoney",
            Profile::Webmoney => "webmoney",
            Profile::Robokassa => "robokassa",
            Profile::Interkassa => "interkassa",
            Profile::Weboplata => "weboplata",
            Profile::Custom => "custom",
        }
    }
}

/// One `[[gateway]]` table of `PAYHOOK_GATEWAYS_FILE`, as written. Secrets
/// given as files are read by the configuration and handed in whole.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    pub name: String,
    pub profile: String,
    pub secret: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
    /// The secret before a rotation, accepted beside the current one.
    pub previous_secret: Option<String>,
    pub previous_secret_file: Option<std::path::PathBuf>,
    /// `query`, `body` or `both` (the default: a query's fields, then a
    /// form body's).
    pub read: Option<String>,
    /// `utf-8` (default) or `windows-1251`: how field text is decoded.
    pub charset: Option<String>,
    pub order_field: Option<String>,
    pub amount_field: Option<String>,
    /// The amount's decimal separator, `.` (default) or `,`.
    pub amount_decimal: Option<String>,
    /// A fixed currency, for gateways whose notification names none.
    pub currency: Option<String>,
    pub currency_field: Option<String>,
    pub status_field: Option<String>,
    pub paid_values: Option<Vec<String>>,
    pub test_field: Option<String>,
    pub test_values: Option<Vec<String>>,
    /// The gateway's own payment id.
    pub dedup_field: Option<String>,
    pub signature: Option<SignatureSettings>,
    /// The accepting reply's body, `{Field}` replaced by that field's value.
    pub reply: Option<String>,
    pub reject_status: Option<u16>,
    pub reject_body: Option<String>,
    /// Sender addresses (CIDRs) accepted; empty: any.
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    pub field: Option<String>,
    /// `field:NAME`, `secret`, `literal:TEXT`, `sorted`.
    pub parts: Option<Vec<String>>,
    pub separator: Option<String>,
    pub digest: Option<String>,
    pub output: Option<String>,
    pub case_insensitive: Option<bool>,
    pub sorted: Option<SortedSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortedSettings {
    pub prefix: String,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `value` (default) or `name=value`.
    pub form: Option<String>,
}

/// Why a gateway's settings were refused at start-up: names the gateway and
/// the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway {gateway:?}: {setting}: {reason}")]
pub struct RecipeError {
    pub gateway: String,
    pub setting: &'static str,
    pub reason: String,
}

/// Where the amount's currency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrencyRule {
    /// None is configured or sent: the notification's currency is unknown.
    Unknown,
    Fixed(Currency),
    /// A field holding a letter code, or an ISO 4217 number (643 = RUB).
    Field(String),
    /// WebMoney: the payee purse's first letter (Z USD, R RUB, E EUR).
    PurseLetter(String),
}

/// What says the notification is a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusRule {
    /// Every verified notification is a payment (the gateway sends no other).
    Always,
    /// A field whose value is one of these.
    Field { name: String, paid: Vec<String> },
    /// Paid unless a field has one of these values (YooMoney's `codepro`,
    /// `unaccepted`): such a field may only make it less paid.
    Unless(Vec<(String, String)>),
}

/// What marks a test payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestRule {
    Never,
    Field {
        name: String,
        values: Vec<String>,
        /// The field need not be signed: a test payment is signed with
        /// another key, so the flag can only make a payment less trusted
        /// (Robokassa's `IsTest`).
        lowers_only: bool,
    },
}

/// Where the fields are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Query,
    Body,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Windows1251,
}

/// A gateway ready to verify: its profile's defaults with the shop's
/// settings, checked.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub profile: Profile,
    /// Tried in order; the first whose field the notification carries (and
    /// whose output length matches) decides. Empty only for a `weboplata`
    /// gateway without a recipe.
    pub signatures: Vec<Signature>,
    pub(super) secrets: Vec<SecretString>,
    pub read: ReadFrom,
    pub charset: Charset,
    pub order_field: Option<String>,
    pub amount_field: Option<String>,
    pub amount_decimal: char,
    pub currency: CurrencyRule,
    pub status: StatusRule,
    pub test: TestRule,
    pub dedup_field: Option<String>,
    pub reply: String,
    pub reject_status: u16,
    pub reject_body: String,
    pub allow: Vec<ipnet::IpNet>,
}

/// A gateway's name, as it appears in `/gateways/{name}/callback` and as its
/// orders' project: letters, digits, `-` and `_`, 1 to 40 of them, and never
/// a number (a classic project's id is one).
fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit())
}

struct Defaults {
    signatures: Vec<Signature>,
    order: Option<&'static str>,
    amount: Option<&'static str>,
    currency: CurrencyRule,
    status: StatusRule,
    test: TestRule,
    dedup: Option<&'static str>,
    reply: &'static str,
    reject_status: u16,
}

fn field_parts(names: &[&str]) -> Vec<Part> {
    names.iter().map(|n| Part::Field(n.to_string())).collect()
}

fn signature(
    field: &str,
    parts: Vec<Part>,
    sep: &str,
    digest: Digest,
    output: Output,
) -> Signature {
    Signature {
        field: field.into(),
        parts,
        separator: sep.into(),
        digest,
        output,
        case_insensitive: false,
    }
}

/// WebMoney's ten values with the secret key after the seventh.
fn webmoney_parts() -> Vec<Part> {
    let mut parts = field_parts(&[
        "LMI_PAYEE_PURSE",
        "LMI_PAYMENT_AMOUNT",
        "LMI_PAYMENT_NO",
        "LMI_MODE",
        "LMI_SYS_INVS_NO",
        "LMI_SYS_TRANS_NO",
        "LMI_SYS_TRANS_DATE",
    ]);
    parts.push(Part::Secret);
    parts.extend(field_parts(&["LMI_PAYER_PURSE", "LMI_PAYER_WM"]));
    parts
}

fn defaults(profile: Profile) -> Defaults {
    let none = Defaults {
        signatures: vec![],
        order: None,
        amount: None,
        currency: CurrencyRule::Unknown,
        status: StatusRule::Always,
        test: TestRule::Never,
        dedup: None,
        reply: "OK",
        reject_status: 400,
    };
    match profile {
        Profile::Freekassa => {
            let mut parts = field_parts(&["MERCHANT_ID", "AMOUNT"]);
            parts.push(Part::Secret);
            parts.push(Part::Field("MERCHANT_ORDER_ID".into()));
            Defaults {
                signatures: vec![signature("SIGN", parts, ":", Digest::Md5, Output::HexLower)],
                order: Some("MERCHANT_ORDER_ID"),
                amount: Some("AMOUNT"),
                dedup: Some("intid"),
                reply: "YES",
                ..none
            }
        }
        Profile::Yoomoney => {
            let mut parts = field_parts(&[
                "notification_type",
                "operation_id",
                "amount",
                "currency",
                "datetime",
                "sender",
                "codepro",
            ]);
            parts.push(Part::Secret);
            parts.push(Part::Field("label".into()));
            Defaults {
                signatures: vec![signature(
                    "sha1_hash",
                    parts,
                    "&",
                    Digest::Sha1,
                    Output::HexLower,
                )],
                order: Some("label"),
                amount: Some("amount"),
                currency: CurrencyRule::Field("currency".into()),
                status: StatusRule::Unless(vec![
                    ("codepro".into(), "true".into()),
                    ("unaccepted".into(), "true".into()),
                ]),
                dedup: Some("operation_id"),
                reply: "",
                ..none
            }
        }
        Profile::Webmoney => {
            let mut hash2 = signature(
                "LMI_HASH2",
                webmoney_parts(),
                ";",
                Digest::Sha256,
                Output::HexUpper,
            );
            hash2.case_insensitive = true;
            let mut md5 = signature(
                "LMI_HASH",
                webmoney_parts(),
                "",
                Digest::Md5,
                Output::HexUpper,
            );
            md5.case_insensitive = true;
            let mut sha256 = signature(
                "LMI_HASH",
                webmoney_parts(),
                "",
                Digest::Sha256,
                Output::HexUpper,
            );
            sha256.case_insensitive = true;
            Defaults {
                signatures: vec![hash2, md5, sha256],
                order: Some("LMI_PAYMENT_NO"),
                amount: Some("LMI_PAYMENT_AMOUNT"),
                currency: CurrencyRule::PurseLetter("LMI_PAYEE_PURSE".into()),
                test: TestRule::Field {
                    name: "LMI_MODE".into(),
                    values: vec!["1".into()],
                    lowers_only: false,
                },
                dedup: Some("LMI_SYS_TRANS_NO"),
                reply: "YES",
                ..none
            }
        }
        Profile::Robokassa => {
            let mut parts = field_parts(&["OutSum", "InvId"]);
            parts.push(Part::Secret);
            parts.push(Part::Sorted(SortedFields {
                prefix: "Shp_".into(),
                exclude: vec![],
                form: PairForm::NameValue,
            }));
            let mut sig = signature("SignatureValue", parts, ":", Digest::Md5, Output::HexUpper);
            sig.case_insensitive = true;
            Defaults {
                signatures: vec![sig],
                order: Some("InvId"),
                amount: Some("OutSum"),
                test: TestRule::Field {
                    name: "IsTest".into(),
                    values: vec!["1".into()],
                    lowers_only: true,
                },
                dedup: Some("InvId"),
                reply: "OK{InvId}",
                ..none
            }
        }
        Profile::Interkassa => {
            let parts = vec![
                Part::Sorted(SortedFields {
                    prefix: "ik_".into(),
                    exclude: vec![],
                    form: PairForm::Value,
                }),
                Part::Secret,
            ];
            Defaults {
                signatures: vec![signature(
                    "ik_sign",
                    parts,
                    ":",
                    Digest::Md5,
                    Output::Base64,
                )],
                order: Some("ik_pm_no"),
                amount: Some("ik_am"),
                currency: CurrencyRule::Field("ik_cur".into()),
                status: StatusRule::Field {
                    name: "ik_inv_st".into(),
                    paid: vec!["success".into()],
                },
                test: TestRule::Field {
                    name: "ik_pw_via".into(),
                    values: vec!["test_interkassa_test_xts".into()],
                    lowers_only: false,
                },
                dedup: Some("ik_inv_id"),
                reply: "OK",
                ..none
            }
        }
        Profile::Weboplata => Defaults {
            reply: "ok",
            ..none
        },
        Profile::Custom => none,
    }
}

impl Recipe {
    /// The gateway `settings` describe, with its secrets (`secret` or the
    /// content of `secret_file`, then the previous one), checked.
    pub fn build(
        settings: &GatewaySettings,
        secret: Option<SecretString>,
        previous: Option<SecretString>,
    ) -> Result<Recipe, RecipeError> {
        let name = settings.name.clone();
        let err = |setting: &'static str, reason: String| RecipeError {
            gateway: name.clone(),
            setting,
            reason,
        };
        if !valid_name(&name) {
            return Err(err(
                "name",
                "1 to 40 letters, digits, - or _, and not only digits".into(),
            ));
        }
        let profile = Profile::parse(&settings.profile).ok_or_else(|| {
            let known: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
            err("profile", format!("one of {}", known.join(", ")))
        })?;
        let d = defaults(profile);
        let signatures = match &settings.signature {
            None => d.signatures,
            Some(s) => vec![custom_signature(s, d.signatures.first(), &err)?],
        };
        let one = |setting: Option<&String>, default: Option<&str>| {
            setting.cloned().or(default.map(str::to_string))
        };
        let currency = match (&settings.currency, &settings.currency_field) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "currency",
                    "give currency or currency_field, not both".into(),
                ))
            }
            (Some(code), None) => CurrencyRule::Fixed(
                Currency::parse(code)
                    .ok()
                    .filter(|c| c.as_str().bytes().all(|b| b.is_ascii_uppercase()))
                    .ok_or_else(|| err("currency", "three upper-case letters, e.g. RUB".into()))?,
            ),
            (None, Some(field)) => CurrencyRule::Field(field.clone()),
            (None, None) => d.currency,
        };
        let status = match (&settings.status_field, &settings.paid_values) {
            (Some(field), Some(paid)) if !paid.is_empty() => StatusRule::Field {
                name: field.clone(),
                paid: paid.clone(),
            },
            (Some(_), _) => return Err(err("paid_values", "needed with status_field".into())),
            (None, Some(_)) => return Err(err("status_field", "needed with paid_values".into())),
            (None, None) => d.status,
        };
        let test = match (&settings.test_field, &settings.test_values) {
            (Some(field), values) => TestRule::Field {
                name: field.clone(),
                values: values.clone().unwrap_or_else(|| vec!["1".into()]),
                lowers_only: false,
            },
            (None, Some(_)) => return Err(err("test_field", "needed with test_values".into())),
            (None, None) => d.test,
        };
        let read = match settings.read.as_deref() {
            None | Some("both") => ReadFrom::Both,
            Some("query") => ReadFrom::Query,
            Some("body") => ReadFrom::Body,
            Some(_) => return Err(err("read", "query, body or both".into())),
        };
        let charset = match settings
            .charset
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("utf-8") | Some("utf8") => Charset::Utf8,
            Some("windows-1251") | Some("cp1251") => Charset::Windows1251,
            Some(_) => return Err(err("charset", "utf-8 or windows-1251".into())),
        };
        let amount_decimal = match settings.amount_decimal.as_deref() {
            None | Some(".") => '.',
            Some(",") => ',',
            Some(_) => return Err(err("amount_decimal", "\".\" or \",\"".into())),
        };
        let reject_status = settings.reject_status.unwrap_or(d.reject_status);
        if !(400..=599).contains(&reject_status) {
            return Err(err(
                "reject_status",
                "an HTTP status from 400 to 599".into(),
            ));
        }
        let allow = settings
            .allow
            .iter()
            .map(|cidr| {
                // A bare address is its own network (an IPv6 one has colons).
                let whole = if cidr.contains(':') { 128 } else { 32 };
                let cidr_text = if cidr.contains('/') {
                    cidr.clone()
                } else {
                    format!("{cidr}/{whole}")
                };
                cidr_text
                    .parse::<ipnet::IpNet>()
                    .map_err(|_| err("allow", format!("{cidr:?} is not an address or a CIDR")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let recipe = Recipe {
            signatures,
            secrets: secret.into_iter().chain(previous).collect(),
            read,
            charset,
            order_field: one(settings.order_field.as_ref(), d.order),
            amount_field: one(settings.amount_field.as_ref(), d.amount),
            amount_decimal,
            currency,
            status,
            test,
            dedup_field: one(settings.dedup_field.as_ref(), d.dedup),
            reply: settings
                .reply
                .clone()
                .unwrap_or_else(|| d.reply.to_string()),
            reject_status,
            reject_body: settings
                .reject_body
                .clone()
                .unwrap_or_else(|| "rejected".into()),
            allow,
            name: name.clone(),
            profile,
        };
        recipe.check(&err)?;
        Ok(recipe)
    }

    /// The start-up rules: a recipe signs with the secret and has one; every
    /// field a decision reads is covered by every signature that can decide.
    fn check(&self, err: &dyn Fn(&'static str, String) -> RecipeError) -> Result<(), RecipeError> {
        if self.signatures.is_empty() {
            return match self.profile {
                // Captured for review only: never a payment, so no secret.
                Profile::Weboplata => Ok(()),
                _ => Err(err(
                    "signature",
                    "the profile has none: give [gateway.signature]".into(),
                )),
            };
        }
        if self.secrets.is_empty() {
            return Err(err("secret", "required (secret or secret_file)".into()));
        }
        if self.secrets.iter().any(|s| s.expose_secret().is_empty()) {
            return Err(err("secret", "empty".into()));
        }
        for signature in &self.signatures {
            if signature.case_insensitive && signature.output == Output::Base64 {
                return Err(err(
                    "signature.case_insensitive",
                    "only for hex output: in base64 case is part of the value".into(),
                ));
            }
            if !signature.uses_secret() {
                return Err(err(
                    "signature.parts",
                    "must contain the secret: without it anyone can compute the digest".into(),
                ));
            }
            let mut decided: Vec<(&'static str, &str)> = Vec::new();
            decided.extend(self.order_field.as_deref().map(|f| ("order_field", f)));
            decided.extend(self.amount_field.as_deref().map(|f| ("amount_field", f)));
            match &self.currency {
                CurrencyRule::Field(f) | CurrencyRule::PurseLetter(f) => {
                    decided.push(("currency_field", f))
                }
                CurrencyRule::Unknown | CurrencyRule::Fixed(_) => {}
            }
            if let StatusRule::Field { name, .. } = &self.status {
                decided.push(("status_field", name));
            }
            if let TestRule::Field {
                name,
                lowers_only: false,
                ..
            } = &self.test
            {
                decided.push(("test_field", name));
            }
            for (setting, field) in decided {
                if !signature.covers(field) {
                    return Err(err(
                        setting,
                        format!(
                            "field {field} is not covered by the signature {}: a decision may \
                             read only signed fields",
                            signature.field
                        ),
                    ));
                }
            }
        }
        if self.order_field.is_none() || self.amount_field.is_none() {
            return Err(err(
                "order_field",
                "a recipe needs order_field and amount_field".into(),
            ));
        }
        Ok(())
    }

    /// A recipe verifies; a `weboplata` gateway without one only captures.
    pub fn verifies(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// Whether a notification from `sender` is looked at: any sender without
    /// an allow-list; with one, only a known address inside it.
    pub fn allows(&self, sender: Option<core::net::IpAddr>) -> bool {
        self.allow.is_empty() || sender.is_some_and(|ip| self.allow.iter().any(|n| n.contains(&ip)))
    }
}

fn custom_signature(
    s: &SignatureSettings,
    base: Option<&Signature>,
    err: &dyn Fn(&'static str, String) -> RecipeError,
) -> Result<Signature, RecipeError> {
    let sorted = match &s.sorted {
        None => None,
        Some(sorted) => Some(SortedFields {
            prefix: sorted.prefix.clone(),
            exclude: sorted.exclude.clone(),
            form: match sorted.form.as_deref() {
                None | Some("value") => PairForm::Value,
                Some("name=value") => PairForm::NameValue,
                Some(_) => return Err(err("signature.sorted.form", "value or name=value".into())),
            },
        }),
    };
    let parts = match &s.parts {
        None => base
            .map(|b| b.parts.clone())
            .ok_or_else(|| err("signature.parts", "required".into()))?,
        Some(parts) => parts
            .iter()
            .map(|p| match p.split_once(':') {
                None if p == "secret" => Ok(Part::Secret),
                None if p == "sorted" => sorted
                    .clone()
                    .map(Part::Sorted)
                    .ok_or_else(|| err("signature.sorted", "needed for a \"sorted\" part".into())),
                Some(("field", name)) if !name.is_empty() => Ok(Part::Field(name.to_string())),
                Some(("literal", text)) => Ok(Part::Literal(text.to_string())),
                _ => Err(err(
                    "signature.parts",
                    format!("{p:?}: field:NAME, secret, literal:TEXT or sorted"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let digest = match &s.digest {
        None => base.map(|b| b.digest).unwrap_or(Digest::Md5),
        Some(name) => Digest::parse(name).ok_or_else(|| {
            err(
                "signature.digest",
                "md5, sha1, sha256, sha384 or sha512".into(),
            )
        })?,
    };
    let output = match &s.output {
        None => base.map(|b| b.output).unwrap_or(Output::HexLower),
        Some(name) => Output::parse(name)
            .ok_or_else(|| err("signature.output", "hex, hex_upper or base64".into()))?,
    };
    let field = s
        .field
        .clone()
        .or_else(|| base.map(|b| b.field.clone()))
        .ok_or_else(|| err("signature.field", "required".into()))?;
    Ok(Signature {
        field,
        parts,
        separator: s
            .separator
            .clone()
            .or_else(|| base.map(|b| b.separator.clone()))
            .unwrap_or_default(),
        digest,
        output,
        case_insensitive: s
            .case_insensitive
            .or(base.map(|b| b.case_insensitive))
            .unwrap_or(false),
    })
}
