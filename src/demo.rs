//! Demo mode: with no gateway configured, payhook makes a throw-away gateway of
//! its own (a classic project with its password and RSA key pair, a Checkout
//! project with its client secret, a FreeKassa-profile gateway with its
//! secret, an admin token) in its data directory, so `payhook simulate` can
//! send it callbacks, webhooks and notifications signed the way Paysera and
//! FreeKassa sign them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::config::{CheckoutProject, ConfigError, Settings};
use crate::gateways::Recipe;
use crate::paysera::{KeySet, ProjectCredentials};
use crate::sim::GatewaySigner;

pub const DEMO_PROJECT_ID: u64 = 100_001;
/// The demo Checkout project's API client id.
pub const DEMO_CHECKOUT_CLIENT_ID: &str = "demo-checkout";
/// The demo hash-signed gateway's name (profile `freekassa`, orders in EUR).
pub const DEMO_GATEWAY: &str = "demo-fk";

pub struct DemoMaterial {
    pub project_id: u64,
    pub password: SecretString,
    pub admin_token: SecretString,
    pub checkout_secret: SecretString,
    /// The demo FreeKassa gateway's "secret word 2".
    pub freekassa_secret: SecretString,
    pub gateway_public_pem: String,
    pub gateway_private_pem: String,
}

pub fn demo_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("demo")
}

/// Puts demo mode's gateway into the settings: its project, its public key (in
/// place of any configured one) and its admin token. Called once, at start-up,
/// by the commands that need them; nothing to do outside demo mode.
pub fn provision(settings: &mut Settings) -> Result<(), ConfigError> {
    if !settings.demo {
        return Ok(());
    }
    let material = prepare(&settings.data_dir)
        .map_err(|e| ConfigError::new("PAYHOOK_DATA_DIR", format!("demo set-up failed: {e}")))?;
    if !settings
        .gateway
        .recipes
        .iter()
        .any(|r| r.name == DEMO_GATEWAY)
    {
        let recipe = demo_gateway(&material)
            .map_err(|e| ConfigError::new("PAYHOOK_DATA_DIR", format!("demo gateway: {e}")))?;
        settings.gateway.recipes.push(recipe);
    }
    settings.gateway.keys = KeySet::from_pem(&material.gateway_public_pem)
        .map_err(|e| ConfigError::new("PAYHOOK_DATA_DIR", format!("demo key: {e}")))?;
    settings.gateway.projects = vec![ProjectCredentials {
        id: material.project_id,
        password: material.password,
    }];
    settings.gateway.checkout = vec![CheckoutProject {
        client_id: DEMO_CHECKOUT_CLIENT_ID.to_string(),
        secrets: vec![("current".to_string(), material.checkout_secret)],
    }];
    settings.http.admin_token = Some(material.admin_token);
    Ok(())
}

/// The demo FreeKassa gateway's recipe, as a gateways file would declare it.
pub fn demo_gateway(material: &DemoMaterial) -> Result<Recipe, ConfigError> {
    // The secret is hex (made by `prepare`): nothing in it needs quoting.
    let text = format!(
        "[[gateway]]\nname = \"{DEMO_GATEWAY}\"\nprofile = \"freekassa\"\ncurrency = \"EUR\"\n\
         secret = \"{}\"\n",
        material.freekassa_secret.expose_secret()
    );
    let mut recipes = crate::config::gateways::parse(&text, "the demo gateway")?;
    Ok(recipes.remove(0))
}

/// Creates the demo material once, then reuses it.
pub fn prepare(data_dir: &Path) -> std::io::Result<DemoMaterial> {
    let dir = demo_dir(data_dir);
    fs::create_dir_all(&dir)?;
    let password = read_or_create(&dir.join("project-password"), || {
        hex::encode(rand::random::<[u8; 16]>())
    })?;
    let admin_token = read_or_create(&dir.join("admin-token"), || {
        hex::encode(rand::random::<[u8; 16]>())
    })?;
    let checkout_secret = read_or_create(&dir.join("checkout-secret"), || {
        hex::encode(rand::random::<[u8; 24]>())
    })?;
    let freekassa_secret = read_or_create(&dir.join("freekassa-secret"), || {
        hex::encode(rand::random::<[u8; 16]>())
    })?;
    let private_path = dir.join("gateway-private.pem");
    let private_pem = if private_path.exists() {
        fs::read_to_string(&private_path)?
    } else {
        let signer = GatewaySigner::generate(&password).map_err(std::io::Error::other)?;
        let pem = signer.private_key_pem().map_err(std::io::Error::other)?;
        write_private(&private_path, &pem)?;
        pem
    };
    let signer = GatewaySigner::from_pem(&private_pem, &password).map_err(std::io::Error::other)?;
    Ok(DemoMaterial {
        project_id: DEMO_PROJECT_ID,
        password: SecretString::from(password),
        admin_token: SecretString::from(admin_token),
        checkout_secret: SecretString::from(checkout_secret),
        freekassa_secret: SecretString::from(freekassa_secret),
        gateway_public_pem: signer.public_key_pem().map_err(std::io::Error::other)?,
        gateway_private_pem: private_pem,
    })
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> std::io::Result<String> {
    if path.exists() {
        return Ok(fs::read_to_string(path)?.trim().to_string());
    }
    let value = make();
    write_private(path, &value)?;
    Ok(value)
}

/// Secrets are written readable by the owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_makes_the_demo_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let get = |key: &str| (key == "PAYHOOK_DATA_DIR").then(|| data_dir.clone());
        let mut settings = Settings::from_lookup(get).unwrap();
        assert!(settings.demo);
        assert!(!demo_dir(dir.path()).exists(), "made while parsing");

        provision(&mut settings).unwrap();
        assert!(demo_dir(dir.path()).join("gateway-private.pem").exists());
        let ids: Vec<u64> = settings.gateway.projects.iter().map(|p| p.id).collect();
        assert_eq!(ids, [DEMO_PROJECT_ID]);
        let token = settings.http.admin_token.clone().expect("the demo token");
        let summary = settings.summary();
        assert!(
            summary.contains(
                "projects=[100001,checkout:demo-checkout(secrets=1)] gateways=[demo-fk(freekassa)]"
            ),
            "{summary}"
        );
        // The demo key, not Paysera's, verifies demo callbacks.
        let paysera = KeySet::paysera_production().keys()[0].fingerprint();
        assert!(!summary.contains(&paysera), "{summary}");

        // The next start reads the same gateway back.
        let mut again = Settings::from_lookup(get).unwrap();
        provision(&mut again).unwrap();
        assert_eq!(
            again.http.admin_token.unwrap().expose_secret(),
            token.expose_secret()
        );
        assert_eq!(
            again.gateway.keys.keys()[0].fingerprint(),
            settings.gateway.keys.keys()[0].fingerprint()
        );
    }
}
