//! The hash-signed gateways: `PAYHOOK_GATEWAYS_FILE`, a TOML file of
//! `[[gateway]]` tables (`gateways::GatewaySettings`). Each one is built and
//! checked here, at start-up, so that a recipe that could be fooled (no
//! secret, a decision field the signature does not cover) never serves.
//! Secrets given as files are read here.

use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;

use super::projects::line_number;
use super::{bad, one_line, read_secret_file, ConfigError};
use crate::gateways::{CurrencyRule, GatewaySettings, Recipe};

const KEY: &str = "PAYHOOK_GATEWAYS_FILE";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaysFile {
    gateway: Vec<GatewaySettings>,
}

/// Every gateway in the file at `path`, checked.
pub fn read_file(path: &Path) -> Result<Vec<Recipe>, ConfigError> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(KEY, format!("cannot read {shown}: {e}")))?;
    parse(&text, &shown.to_string())
}

/// The gateways of a file's text (`shown`: how errors name the file).
pub fn parse(text: &str, shown: &str) -> Result<Vec<Recipe>, ConfigError> {
    let file: GatewaysFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| format!(" line {}", line_number(text, span.start)))
            .unwrap_or_default();
        // A parse error may quote the line, and the line may hold a secret:
        // only the names the parser complains about are repeated.
        let message = e.message();
        let reason = if [
            "unknown field",
            "missing field",
            "duplicate key",
            "duplicate field",
        ]
        .iter()
        .any(|p| message.starts_with(p))
        {
            one_line(message)
        } else {
            "not valid TOML, or a value of the wrong type; expected [[gateway]] tables with \
             name, profile and secret or secret_file"
                .to_string()
        };
        bad(KEY, format!("{shown}{line}: {reason}"))
    })?;
    let mut recipes: Vec<Recipe> = Vec::new();
    for settings in &file.gateway {
        let secret = secret_of(
            settings,
            settings.secret.as_ref(),
            settings.secret_file.as_deref(),
            "secret",
        )?;
        let previous = secret_of(
            settings,
            settings.previous_secret.as_ref(),
            settings.previous_secret_file.as_deref(),
            "previous_secret",
        )?;
        let recipe =
            Recipe::build(settings, secret, previous).map_err(|e| bad(KEY, e.to_string()))?;
        if recipes.iter().any(|r| r.name == recipe.name) {
            return Err(bad(
                KEY,
                format!("gateway {:?} is configured twice", recipe.name),
            ));
        }
        recipes.push(recipe);
    }
    Ok(recipes)
}

/// The gateways the service serves (`PAYHOOK_GATEWAYS_FILE`, none when
/// unset), checked against the rest of the configuration: a gateway's name is
/// its orders' project, so no Checkout project may have it; and a gateway
/// that verifies must know its currency, or no registered order could match.
pub fn served(path: Option<String>, checkout_ids: &[&str]) -> Result<Vec<Recipe>, ConfigError> {
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let recipes = read_file(Path::new(&path))?;
    for recipe in &recipes {
        if checkout_ids.contains(&recipe.name.as_str()) {
            return Err(bad(
                KEY,
                format!(
                    "gateway {:?}: name: a Checkout project has this id; orders of both \
                     would be one project",
                    recipe.name
                ),
            ));
        }
        if recipe.verifies() && recipe.currency == CurrencyRule::Unknown {
            return Err(bad(
                KEY,
                format!(
                    "gateway {:?}: currency: its notifications name none; set currency \
                     (e.g. currency = \"RUB\") to the currency of its orders",
                    recipe.name
                ),
            ));
        }
    }
    Ok(recipes)
}

/// A secret given inline or as a file (its content, a final newline dropped).
fn secret_of(
    settings: &GatewaySettings,
    inline: Option<&String>,
    file: Option<&Path>,
    setting: &str,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(bad(
            KEY,
            format!(
                "gateway {:?}: give {setting} or {setting}_file, not both",
                settings.name
            ),
        )),
        (Some(s), None) => Ok(Some(SecretString::from(s.clone()))),
        (None, Some(path)) => read_secret_file(path).map(Some).map_err(|e| {
            bad(
                KEY,
                format!(
                    "gateway {:?}: cannot read {}: {e}",
                    settings.name,
                    path.display()
                ),
            )
        }),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match parse(text, "gateways.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_rule_is_a_clear_error_naming_the_gateway_and_the_setting() {
        let no_secret = refused("[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\n");
        assert!(
            no_secret.contains("gateway \"fk\": secret: required"),
            "{no_secret}"
        );

        let unsigned_order = refused(
            "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"s\"\norder_field = \"intid\"\n",
        );
        assert!(
            unsigned_order
                .contains("order_field: field intid is not covered by the signature SIGN"),
            "{unsigned_order}"
        );

        let no_secret_part = refused(
            "[[gateway]]\nname = \"c\"\nprofile = \"custom\"\nsecret = \"s\"\norder_field = \"o\"\n\
             amount_field = \"a\"\n[gateway.signature]\nfield = \"sig\"\nparts = [\"field:o\", \"field:a\"]\n",
        );
        assert!(
            no_secret_part.contains("must contain the secret"),
            "{no_secret_part}"
        );

        let twice = refused(
            "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"s\"\n\
             [[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"t\"\n",
        );
        assert!(twice.contains("configured twice"), "{twice}");

        let unknown = refused("[[gateway]]\nname = \"x\"\nprofile = \"paypal\"\nsecret = \"s\"\n");
        assert!(unknown.contains("profile: one of freekassa"), "{unknown}");
    }

    #[test]
    fn a_parse_error_never_repeats_the_line() {
        let text =
            "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"hunter2\" junk\n";
        let error = refused(text);
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("line 4"), "{error}");
    }

    #[test]
    fn senders_are_addresses_or_networks() {
        let recipes = parse(
            "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"s\"\n\
             allow = [\"203.0.113.7\", \"198.51.100.0/24\", \"2001:db8::1\"]\n",
            "g.toml",
        )
        .unwrap();
        let shown: Vec<String> = recipes[0].allow.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            shown,
            ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::1/128"]
        );
        let bad = refused(
            "[[gateway]]\nname = \"fk\"\nprofile = \"freekassa\"\nsecret = \"s\"\nallow = [\"shop\"]\n",
        );
        assert!(
            bad.contains("allow: \"shop\" is not an address or a CIDR"),
            "{bad}"
        );
    }

    #[test]
    fn weboplata_needs_no_secret_until_it_has_a_recipe() {
        let recipes = parse(
            "[[gateway]]\nname = \"wo\"\nprofile = \"weboplata\"\norder_field = \"order\"\n",
            "g.toml",
        )
        .unwrap();
        assert!(!recipes[0].verifies());
        assert_eq!(recipes[0].reply, "ok");
    }
}
