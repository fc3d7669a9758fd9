//! The docs name everything an operator meets, taken from the code, not from a
//! list kept here:
//! - every outcome (`Outcome::ALL`), order state (`OrderState::ALL`) and order
//!   flag (`OrderFlag::ALL`) in `docs/api.md`;
//! - every alert kind (`AlertKind::all()`) in `docs/operations.md`;
//! - every configuration key the reader accepts in `docs/configuration.md`,
//!   and in `.env.example`.
//!
//! A name counts as documented when it appears in backticks (`` `paid` ``), so
//! a word of prose is not mistaken for it.
//!
//! The configuration keys come from a scan of the reader's source
//! (`src/config/`, and `src/startup.rs` in case it reads one). It cannot miss
//! a key, because:
//! - the environment reaches the configuration only through the lookup given
//!   to `Settings::from_lookup`, wrapped by `config::env::Env` and
//!   `config::notify`'s helpers, and every key they are asked for is spelled
//!   out whole as a string literal in these files (a helper taking `key` is
//!   called with literals);
//! - the one key built at run time is `KEY_FILE`, by the `secret` helpers
//!   (`format!("{key}_FILE")`): the scan adds it for every literal a
//!   `secret(…)` call is given, and fails if any other format string could
//!   build a key;
//! - test modules (`#[cfg(test)]`) are left out: their literals are inputs,
//!   not keys read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use payhook::alerts::AlertKind;
use payhook::domain::{OrderFlag, OrderState, Outcome};
use proc_macro2::{TokenStream, TokenTree};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names of `names` that `text` does not mention in backticks.
fn undocumented<'a>(text: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect()
}

/// The names of `keys` that `.env.example` does not list as a line
/// `KEY=value`, set or commented out (`# KEY=value`).
fn unlisted<'a>(env_example: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let listed: BTreeSet<&str> = env_example
        .lines()
        .map(|line| line.trim_start_matches('#').trim_start())
        .filter_map(|line| line.split_once('=').map(|(key, _)| key))
        .collect();
    keys.into_iter().filter(|k| !listed.contains(k)).collect()
}

fn assert_documented<'a>(doc: &str, what: &str, names: impl IntoIterator<Item = &'a str>) {
    let missing = undocumented(&read(doc), names);
    assert!(
        missing.is_empty(),
        "{doc} does not name these {what} (in backticks): {missing:?}"
    );
}

#[test]
fn every_outcome_state_and_flag_is_in_the_api_reference() {
    assert_documented(
        "docs/api.md",
        "outcomes",
        Outcome::ALL.iter().map(|o| o.as_str()),
    );
    assert_documented(
        "docs/api.md",
        "order states",
        OrderState::ALL.iter().map(|s| s.as_str()),
    );
    assert_documented(
        "docs/api.md",
        "order flags",
        OrderFlag::ALL.iter().map(|f| f.as_str()),
    );
}

#[test]
fn every_alert_kind_is_in_the_operations_guide() {
    let kinds: Vec<&str> = AlertKind::all().map(|k| k.as_str()).collect();
    assert_documented("docs/operations.md", "alert kinds", kinds);
}

#[test]
fn every_configuration_key_is_in_the_configuration_reference() {
    let keys = configuration_keys();
    assert_documented(
        "docs/configuration.md",
        "configuration keys",
        keys.iter().map(String::as_str),
    );
}

#[test]
fn env_example_lists_every_configuration_key() {
    let keys = configuration_keys();
    let missing = unlisted(&read(".env.example"), keys.iter().map(String::as_str));
    assert!(
        missing.is_empty(),
        ".env.example does not list these keys (as `KEY=` or `# KEY=`): {missing:?}"
    );
}

/// The checks above can fail: a name taken out of a document, or a key out of
/// `.env.example`, is reported.
#[test]
fn a_name_missing_from_the_docs_is_reported() {
    let api = read("docs/api.md");
    let outcome = Outcome::Fulfilled.as_str();
    assert!(undocumented(&api, [outcome]).is_empty());
    let without = api.replace(&format!("`{outcome}`"), outcome);
    assert_eq!(undocumented(&without, [outcome]), [outcome]);

    let config = read("docs/configuration.md");
    assert!(undocumented(&config, ["PAYHOOK_BIND"]).is_empty());
    let without = config.replace("`PAYHOOK_BIND`", "PAYHOOK_BIND");
    assert_eq!(undocumented(&without, ["PAYHOOK_BIND"]), ["PAYHOOK_BIND"]);

    let example = read(".env.example");
    assert!(unlisted(&example, ["PAYHOOK_BIND", "SMTP_URL"]).is_empty());
    let without: String = example
        .lines()
        .filter(|l| !l.contains("SMTP_URL="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        unlisted(&without, ["PAYHOOK_BIND", "SMTP_URL"]),
        ["SMTP_URL"]
    );
}

/// The scan finds plain keys, keys only a helper's caller names, and the
/// `_FILE` form of secrets that no literal spells.
#[test]
fn the_key_scan_finds_what_the_reader_reads() {
    let keys = configuration_keys();
    for key in [
        "DATABASE_URL",
        "PAYHOOK_REJECTED_RETENTION",
        "SHOP_NOTIFY_SECRET_PREVIOUS_FILE",
        "PAYSERA_CHECKOUT_SECRET_PREVIOUS_FILE",
    ] {
        assert!(keys.contains(key), "the scan missed {key}: {keys:?}");
    }
}

/// Every configuration key the reader asks the environment for.
fn configuration_keys() -> BTreeSet<String> {
    let mut files = rust_files(&root().join("src/config"));
    files.push(root().join("src/startup.rs"));
    let mut keys = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let tokens =
            TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        collect_keys(tokens, &file, &mut keys);
    }
    assert!(keys.len() > 20, "the scan found too few keys: {keys:?}");
    keys
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Walks the tokens: string literals shaped like a key are keys; a literal
/// given to `secret(…)` is also read as `KEY_FILE`; the item after
/// `#[cfg(test)]` is skipped.
fn collect_keys(tokens: TokenStream, file: &Path, keys: &mut BTreeSet<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == '#' && is_cfg_test(tokens.get(i + 1)) => {
                // Skip the attribute and the item it guards: up to its body
                // (a brace group) or its closing `;`.
                i += 2;
                while i < tokens.len() {
                    match &tokens[i] {
                        TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => {
                            break
                        }
                        TokenTree::Punct(p) if p.as_char() == ';' => break,
                        _ => i += 1,
                    }
                }
            }
            TokenTree::Ident(ident) if ident == "secret" => {
                if let Some(TokenTree::Group(args)) = tokens.get(i + 1) {
                    for tree in args.stream() {
                        if let Some(key) = key_literal(&tree) {
                            keys.insert(format!("{key}_FILE"));
                        }
                    }
                }
            }
            TokenTree::Group(g) => collect_keys(g.stream(), file, keys),
            tree => {
                if let Some(key) = key_literal(tree) {
                    keys.insert(key);
                } else if let TokenTree::Literal(lit) = tree {
                    let text = lit.to_string();
                    assert!(
                        !(text.contains('{') && builds_a_key(&text)) || text == "\"{key}_FILE\"",
                        "{}: {text} may build a configuration key at run time; \
                         spell keys out whole so tests/docs.rs can find them",
                        file.display()
                    );
                }
            }
        }
        i += 1;
    }
}

fn is_cfg_test(tree: Option<&TokenTree>) -> bool {
    matches!(tree, Some(TokenTree::Group(g))
        if g.delimiter() == proc_macro2::Delimiter::Bracket
            && g.stream().to_string().replace(' ', "") == "cfg(test)")
}

/// `"PAYHOOK_BIND"` → `PAYHOOK_BIND`: upper-case words joined by `_`, at
/// least two of them.
fn key_literal(tree: &TokenTree) -> Option<String> {
    let TokenTree::Literal(lit) = tree else {
        return None;
    };
    let text = lit.to_string();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let words: Vec<&str> = inner.split('_').collect();
    let is_key = words.len() >= 2
        && inner.starts_with(|c: char| c.is_ascii_uppercase())
        && words.iter().all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        });
    is_key.then(|| inner.to_string())
}

/// A format string with an upper-case `_WORD` or `WORD_` next to a `{…}`
/// placeholder could assemble a key.
fn builds_a_key(text: &str) -> bool {
    text.contains("}_")
        && text
            .split("}_")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        || text.contains("_{")
}

/// `docs/openapi.json` is the contract the code generates: regenerate it with
/// `payhook openapi --out docs/openapi.json` after changing the admin API.
#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let committed = read("docs/openapi.json");
    let generated = payhook::http::openapi::document_json();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run `cargo run -- openapi --out docs/openapi.json`"
    );
}

/// Every route the admin listener mounts under `/api/v1` (read from where
/// they are mounted, `src/startup.rs` and `src/http/events.rs`) is an
/// operation of the document, with its method: a route added without its
/// annotation fails here.
#[test]
fn every_admin_api_route_is_in_the_openapi_document() {
    let document: serde_json::Value =
        serde_json::from_str(&payhook::http::openapi::document_json()).unwrap();
    let startup = read("src/startup.rs");
    let scope = startup
        .split("web::scope(\"/api/v1\")")
        .nth(1)
        .and_then(|rest| rest.split(".default_service").next())
        .expect("the /api/v1 scope in src/startup.rs");
    let events = read("src/http/events.rs");
    let routes: Vec<(String, String)> = [scope, events.as_str()]
        .iter()
        .flat_map(|text| mounted_routes(text))
        .collect();
    assert!(routes.len() >= 10, "too few routes found: {routes:?}");
    let mut missing = Vec::new();
    for (path, method) in &routes {
        let full = format!("/api/v1{path}");
        if document["paths"][&full][method].is_null() {
            missing.push(format!("{} {full}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "not in the OpenAPI document: {missing:?}"
    );
}

/// `.route("/path", web::get()…)` pairs in `text`, whitespace ignored.
fn mounted_routes(text: &str) -> Vec<(String, String)> {
    let flat: String = text.split_whitespace().collect();
    flat.split(".route(\"")
        .skip(1)
        .filter_map(|part| {
            let (path, rest) = part.split_once('"')?;
            let method = rest.strip_prefix(",web::")?.split_once('(')?.0;
            Some((path.to_string(), method.to_string()))
        })
        .collect()
}
