//! The crate's layers, checked on its source. A module may
//! use its own layer or a lower one, never a higher one, and no modules use
//! each other in a circle, at any level: not `alerts` and `metrics`, not
//! `paysera::verify` and `paysera::legacy`.
//!
//! Every `crate::`, `super::`, `self::` and `$crate::` path counts, in `use`
//! lines, in code and inside macro calls; a name re-exported by a module's
//! `mod.rs` counts as the child that defines it. A `mod.rs` is its children's
//! facade: edges between a module and its own children are not cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Bottom to top. Every top-level module of `src/` must be listed.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "the domain and the protocol core",
        &["domain", "paysera", "checkout", "gateways"],
    ),
    (
        "storage, and the gateway's side built on the core",
        &["store", "sim"],
    ),
    ("operations", &["metrics", "alerts", "telemetry", "notify"]),
    (
        "the pipeline: parse, verify, decide, store, answer",
        &["pipeline"],
    ),
    ("the HTTP edge", &["http", "console"]),
    (
        "start-up and the command line",
        &[
            "config", "startup", "cli", "demo", "keyfile", "simulate", "operator", "check",
        ],
    ),
];

/// What the protocol core and the domain never use: they stay pure (no I/O,
/// no clock, no randomness), and only the gateway's side (`sim`) signs.
const CORE: &[&str] = &["domain", "paysera", "checkout", "gateways"];
const NOT_IN_CORE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::time::SystemTime",
    "std::time::Instant",
    "tokio",
    "diesel",
    "actix_web",
    "reqwest",
    "lettre",
    "prometheus",
    "tracing",
    "chrono",
    "rand",
    "RsaPrivateKey",
];

type ModPath = Vec<String>;

/// One `crate::…`-style path, made absolute, where it was written.
struct Reference {
    from: ModPath,
    path: ModPath,
    file: String,
    line: usize,
}

#[derive(Default)]
struct Crate {
    modules: BTreeSet<ModPath>,
    /// Per module: a name brought in by `use`, and the absolute path it stands for.
    imports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    references: Vec<Reference>,
    /// `use a::b` not starting at `crate`/`super`/`self`: (module, path, name).
    relative: Vec<(ModPath, ModPath, Option<String>)>,
    /// Every `a::b::c` path (any start) per file and line, for `NOT_IN_CORE`.
    paths: Vec<(ModPath, String, usize, String)>,
}

fn module_of(file: &Path) -> Option<ModPath> {
    let parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [root] if root == "lib" => Some(vec![]),
        [root] if root == "main" => None,
        [.., last] if last == "mod" => Some(parts[..parts.len() - 1].to_vec()),
        _ => Some(parts),
    }
}

impl Crate {
    /// `files`: paths relative to `src/`, with their text.
    fn read(files: &[(PathBuf, String)]) -> Crate {
        let mut krate = Crate::default();
        krate.modules.insert(vec![]);
        for (file, text) in files {
            let Some(module) = module_of(file) else {
                continue;
            };
            let tokens = TokenStream::from_str(text)
                .unwrap_or_else(|e| panic!("{}: does not lex: {e:?}", file.display()));
            krate.modules.insert(module.clone());
            krate.scan(tokens, &module, &file.display().to_string());
        }
        // `use child::Name` (as a mod.rs re-exports) is local when `child` is.
        for (module, path, alias) in std::mem::take(&mut krate.relative) {
            let local = [module.clone(), path.clone()].concat();
            if krate.modules.contains(&local[..module.len() + 1]) {
                if let Some(alias) = alias {
                    krate
                        .imports
                        .entry(module)
                        .or_default()
                        .insert(alias, local);
                }
            }
        }
        krate
    }

    fn scan(&mut self, tokens: TokenStream, module: &ModPath, file: &str) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Ident(id) if id == "mod" => {
                    if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                        (tokens.get(i + 1), tokens.get(i + 2))
                    {
                        if body.delimiter() == Delimiter::Brace {
                            let mut inner = module.clone();
                            inner.push(name.to_string());
                            self.modules.insert(inner.clone());
                            self.scan(body.stream(), &inner, file);
                            i += 3;
                            continue;
                        }
                    }
                }
                TokenTree::Ident(id) if id == "use" => {
                    let end = tokens[i..]
                        .iter()
                        .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ';'))
                        .map_or(tokens.len(), |n| i + n);
                    let line = id.span().start().line;
                    let mut leaves = Vec::new();
                    use_tree(&tokens[i + 1..end], vec![], &mut leaves);
                    for (path, alias) in leaves {
                        self.note_path(module, file, line, &path);
                        let absolute = match path.first().map(String::as_str) {
                            Some("crate" | "super" | "self") => absolute(module, &path),
                            // `child::Name` (a local module) or an extern crate:
                            // told apart in `read`, once every module is known.
                            Some(_) => {
                                self.relative
                                    .push((module.clone(), path.clone(), alias.clone()));
                                continue;
                            }
                            None => None,
                        };
                        let Some(absolute) = absolute else { continue };
                        self.references.push(Reference {
                            from: module.clone(),
                            path: absolute.clone(),
                            file: file.to_string(),
                            line,
                        });
                        if let Some(alias) = alias {
                            self.imports
                                .entry(module.clone())
                                .or_default()
                                .insert(alias, absolute);
                        }
                    }
                    i = end + 1;
                    continue;
                }
                TokenTree::Ident(id) => {
                    let (path, next) = read_path(&tokens, i);
                    if path.len() > 1 {
                        let line = id.span().start().line;
                        self.note_path(module, file, line, &path);
                        if matches!(path[0].as_str(), "crate" | "super" | "self") {
                            if let Some(absolute) = absolute(module, &path) {
                                self.references.push(Reference {
                                    from: module.clone(),
                                    path: absolute,
                                    file: file.to_string(),
                                    line,
                                });
                            }
                        }
                        i = next;
                        continue;
                    }
                }
                TokenTree::Group(group) => self.scan(group.stream(), module, file),
                _ => {}
            }
            i += 1;
        }
    }

    fn note_path(&mut self, module: &ModPath, file: &str, line: usize, path: &[String]) {
        self.paths
            .push((module.clone(), file.to_string(), line, path.join("::")));
    }

    /// The module a path lands in, following re-exports to where a name is defined.
    fn resolve(&self, path: &ModPath) -> ModPath {
        let mut path = path.clone();
        for _ in 0..32 {
            let module = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| self.modules.contains(prefix))
                .unwrap_or_default();
            let rest = &path[module.len()..];
            match rest
                .first()
                .and_then(|name| self.imports.get(&module)?.get(name))
            {
                Some(target) if target != &path[..module.len() + 1] => {
                    path = [target.clone(), rest[1..].to_vec()].concat();
                }
                _ => return module,
            }
        }
        panic!("re-exports in a circle at {path:?}");
    }

    /// Every resolved use between two different modules: (from, to, where).
    fn edges(&self) -> Vec<(ModPath, ModPath, String)> {
        self.references
            .iter()
            .map(|r| {
                (
                    r.from.clone(),
                    self.resolve(&r.path),
                    format!("{}:{}", r.file, r.line),
                )
            })
            .filter(|(from, to, _)| from != to)
            .collect()
    }
}

/// `crate::a::b` / `super::x` / `self::y` made absolute; `None` for `super` above the root.
fn absolute(module: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut at = module.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().map(String::as_str) == Some("super") {
        at.pop()?;
        rest = &rest[1..];
    }
    at.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(at)
}

fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    matches!(
        (tokens.get(i), tokens.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

/// The identifiers of `a::b::c` starting at `i` (`$crate` counts as `crate`),
/// and the index after it.
fn read_path(tokens: &[TokenTree], mut i: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    if let TokenTree::Ident(id) = &tokens[i] {
        // After `::` (as in `<T as Trait>::f` or `::std`), not a path of ours.
        if i >= 2 && is_path_sep(tokens, i - 2) {
            return (path, i + 1);
        }
        path.push(id.to_string());
        i += 1;
    }
    while is_path_sep(tokens, i) {
        match tokens.get(i + 2) {
            Some(TokenTree::Ident(id)) => {
                path.push(id.to_string());
                i += 3;
            }
            _ => break,
        }
    }
    (path, i)
}

/// The leaves of a `use` tree: each full path, and the name it binds
/// (`None` for a glob).
fn use_tree(
    tokens: &[TokenTree],
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    let mut i = 0;
    // A leading `::` (an extern crate path) changes nothing here.
    if is_path_sep(tokens, 0) {
        i = 2;
    }
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(id) => {
                path.push(id.to_string());
                i += 1;
                if is_path_sep(tokens, i) {
                    i += 2;
                    continue;
                }
                let name = match (tokens.get(i), tokens.get(i + 1)) {
                    (Some(TokenTree::Ident(kw)), Some(TokenTree::Ident(alias))) if kw == "as" => {
                        alias.to_string()
                    }
                    _ if path.last().map(String::as_str) == Some("self") => {
                        path.pop();
                        path.last().cloned().unwrap_or_default()
                    }
                    _ => path.last().cloned().unwrap_or_default(),
                };
                out.push((path, Some(name)));
                return;
            }
            TokenTree::Punct(p) if p.as_char() == '*' => {
                out.push((path, None));
                return;
            }
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = group.stream().into_iter().collect();
                for item in inner.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','))
                {
                    if !item.is_empty() {
                        use_tree(item, path.clone(), out);
                    }
                }
                return;
            }
            _ => i += 1,
        }
    }
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&top))
}

/// Every broken rule, one line each.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let krate = Crate::read(files);
    let edges = krate.edges();
    let mut found = BTreeSet::new();

    for module in &krate.modules {
        if let [top] = module.as_slice() {
            if layer_of(top).is_none() {
                found.insert(format!(
                    "src/{top}: module {top} has no layer (add it to LAYERS in tests/layers.rs)"
                ));
            }
        }
    }
    for (from, to, at) in &edges {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue;
        };
        if let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) {
            if lb > la {
                found.insert(format!(
                    "src/{at}: {} (layer {}, {}) uses {} (layer {}, {}), a layer above it",
                    from.join("::"),
                    la + 1,
                    LAYERS[la].0,
                    to.join("::"),
                    lb + 1,
                    LAYERS[lb].0,
                ));
            }
        }
    }
    // Cycles among the children of every module (the crate root included).
    for parent in &krate.modules {
        let child = |m: &ModPath| -> Option<String> {
            (m.len() > parent.len() && m.starts_with(parent)).then(|| m[parent.len()].clone())
        };
        let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (from, to, at) in &edges {
            if let (Some(a), Some(b)) = (child(from), child(to)) {
                if a != b {
                    graph.entry(a).or_default().entry(b).or_insert(at.clone());
                }
            }
        }
        for cycle in cycles(&graph) {
            let name = |m: &String| {
                let mut full = parent.clone();
                full.push(m.clone());
                full.join("::")
            };
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    format!(
                        "{} -> {} (src/{})",
                        name(&w[0]),
                        name(&w[1]),
                        graph[&w[0]][&w[1]]
                    )
                })
                .collect();
            found.insert(format!("cycle: {}", steps.join(", ")));
        }
    }
    found.into_iter().collect()
}

/// One cycle per strongly connected group, as a closed walk `a, b, …, a`.
fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    let reaches = |from: &String, to: &String| -> Option<Vec<String>> {
        // Breadth-first, so the cycle shown is a shortest one.
        let mut seen = BTreeMap::from([(from.clone(), from.clone())]);
        let mut queue = std::collections::VecDeque::from([from.clone()]);
        while let Some(at) = queue.pop_front() {
            for next in graph.get(&at).into_iter().flat_map(|m| m.keys()) {
                if next == to {
                    let mut walk = vec![to.clone(), at.clone()];
                    let mut back = at.clone();
                    while &back != from {
                        back = seen[&back].clone();
                        walk.push(back.clone());
                    }
                    walk.reverse();
                    return Some(walk);
                }
                if !seen.contains_key(next) {
                    seen.insert(next.clone(), at.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        None
    };
    let mut shown: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for node in graph.keys() {
        if shown.contains(node) {
            continue;
        }
        if let Some(walk) = reaches(node, node) {
            shown.extend(walk.iter().cloned());
            out.push(walk);
        }
    }
    out
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

fn crate_sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    files.sort();
    assert!(files.len() > 20, "only {} files under src/", files.len());
    files
}

#[test]
fn no_module_uses_a_layer_above_it_or_sits_in_a_cycle() {
    let found = violations(&crate_sources());
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

#[test]
fn the_protocol_core_and_the_domain_stay_pure() {
    let krate = Crate::read(&crate_sources());
    let mut found = Vec::new();
    for (module, file, line, path) in &krate.paths {
        if !module
            .first()
            .is_some_and(|top| CORE.contains(&top.as_str()))
        {
            continue;
        }
        for banned in NOT_IN_CORE {
            let hit = path == banned
                || path.starts_with(&format!("{banned}::"))
                || path.split("::").any(|segment| segment == *banned);
            if hit {
                found.push(format!("src/{file}:{line}: {path} ({banned})"));
            }
        }
    }
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
    // The scan sees the core's paths at all (it would pass on nothing).
    assert!(krate
        .paths
        .iter()
        .any(|(m, _, _, p)| m.first().is_some_and(|t| t == "paysera") && p == "rsa::PublicKey"));
}

/// The check itself: a made-up crate with each kind of mistake.
#[test]
fn the_check_finds_upward_uses_cycles_and_unplaced_modules() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let files = vec![
        file("lib.rs", "pub mod domain; pub mod http; pub mod paysera; pub mod alerts; pub mod metrics; pub mod gizmo;"),
        file("main.rs", "use payhook::config::Settings; fn main() {}"),
        // Upward, hidden in a macro call.
        file("domain/mod.rs", "fn f() { tracing::info!(\"{}\", crate::http::answer()); }"),
        file("http/mod.rs", "pub fn answer() {}\n#[cfg(test)]\nmod tests { use super::answer; }"),
        // A cycle between siblings, one side through the parent's re-export.
        file("paysera/mod.rs", "mod verify; mod legacy; pub use verify::Verifier;"),
        file("paysera/verify.rs", "pub struct Verifier; fn v() { super::legacy::check(); }"),
        file("paysera/legacy.rs", "use super::{Verifier as V};\npub fn check() {}"),
        // A cycle between top-level modules, inside the same layer.
        file("alerts/mod.rs", "mod send; pub use send::Kind;"),
        file("alerts/send.rs", "pub enum Kind {}\nuse crate::metrics::{self, Metrics};"),
        file("metrics.rs", "pub struct Metrics; use crate::alerts::{Kind};"),
        file("gizmo.rs", "use crate::domain;"),
    ];
    let found = violations(&files);
    let expect = [
        "src/domain/mod.rs:1: domain (layer 1, the domain and the protocol core) uses http (layer 5, the HTTP edge), a layer above it",
        "cycle: paysera::legacy -> paysera::verify (src/paysera/legacy.rs:1), paysera::verify -> paysera::legacy (src/paysera/verify.rs:1)",
        "cycle: alerts -> metrics (src/alerts/send.rs:2), metrics -> alerts (src/metrics.rs:1)",
        "src/gizmo: module gizmo has no layer (add it to LAYERS in tests/layers.rs)",
    ];
    for line in expect {
        assert!(
            found.iter().any(|f| f == line),
            "missing {line:?} in\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expect.len(), "\n{}", found.join("\n"));
}

/// The decision functions of the domain: only the pipeline calls them.
const DECISIONS: &[&str] = &["decide_callback", "decide_webhook", "decide_fresh"];

/// Every identifier of a file's tokens (macro bodies included), with its line.
fn idents(text: &str) -> Vec<(String, usize)> {
    fn walk(tokens: TokenStream, out: &mut Vec<(String, usize)>) {
        for token in tokens {
            match token {
                TokenTree::Ident(id) => out.push((id.to_string(), id.span().start().line)),
                TokenTree::Group(g) => walk(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(TokenStream::from_str(text).expect("lexes"), &mut out);
    out
}

/// `file:line: name` for every identifier of `banned` in the files under `under/`.
fn uses_under(files: &[(PathBuf, String)], under: &str, banned: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in files {
        if !file.starts_with(under) {
            continue;
        }
        for (name, line) in idents(text) {
            if banned.contains(&name.as_str()) {
                found.push(format!("src/{}:{line}: {name}", file.display()));
            }
        }
    }
    found
}

/// The store performs the writes the pipeline asks for: it never decides.
#[test]
fn the_store_calls_no_decision() {
    let found = uses_under(&crate_sources(), "store", DECISIONS);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

/// The HTTP handlers are adapters: the pipeline verifies and records.
#[test]
fn http_neither_verifies_nor_records() {
    let banned = [
        "verify",
        "record",
        "record_rejected",
        "decide_callback",
        "decide_webhook",
    ];
    let found = uses_under(&crate_sources(), "http", &banned);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

/// The command line reaches the pipeline directly, not through HTTP.
#[test]
fn the_command_line_imports_no_http() {
    let krate = Crate::read(&crate_sources());
    let cli = ["cli", "operator", "check"];
    let found: Vec<String> = krate
        .edges()
        .into_iter()
        .filter(|(from, to, _)| {
            from.first().is_some_and(|m| cli.contains(&m.as_str()))
                && to.first().is_some_and(|m| m == "http")
        })
        .map(|(from, to, at)| format!("{at}: {} uses {}", from.join("::"), to.join("::")))
        .collect();
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

/// Where database work stops waiting is a value the work is handed (the
/// store handle's deadline), never state of the thread it happens to run on.
const THREAD_STATE: &[&str] = &["thread_local", "LocalKey"];

#[test]
fn the_store_keeps_no_thread_local_state() {
    let found = uses_under(&crate_sources(), "store", THREAD_STATE);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

/// The rules above can fail: each on a made-up file breaking it.
#[test]
fn the_rules_above_find_what_breaks_them() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let files = vec![
        file(
            "store/callbacks.rs",
            "fn f() { let d = decide_callback(&c, seen, rules); }",
        ),
        file(
            "http/callback.rs",
            "fn f() { state.verifier.verify(&p); store.record(a); }",
        ),
    ];
    assert_eq!(
        uses_under(&files, "store", DECISIONS),
        ["src/store/callbacks.rs:1: decide_callback"]
    );
    let local = [file(
        "store/mod.rs",
        "thread_local! { static D: Cell<u8> = Cell::new(0); }",
    )];
    assert_eq!(
        uses_under(&local, "store", THREAD_STATE),
        ["src/store/mod.rs:1: thread_local"]
    );
    assert_eq!(
        uses_under(&files, "http", &["verify", "record"]),
        [
            "src/http/callback.rs:1: verify",
            "src/http/callback.rs:1: record"
        ]
    );
    let krate = Crate::read(&[
        file("lib.rs", "pub mod http; pub mod operator;"),
        file("http/mod.rs", "pub struct AppState;"),
        file("operator.rs", "use crate::http::AppState;"),
    ]);
    assert!(krate
        .edges()
        .iter()
        .any(|(from, to, _)| from == &["operator"] && to.first().is_some_and(|m| m == "http")));
}
