//! `payhook check` on PostgreSQL's replication, against real servers: a lone
//! server is a single-node setup, said plainly as a warning; a primary with a
//! synchronous standby shows it by name, in sync; the standby itself fails,
//! since payhook writes only to the primary.

use std::process::Command;

use crate::support;

use support::cli::{payhook, run};
use support::free_port;
use support::postgres;
use support::replication::sync_pair;

/// `payhook check` on `url`; exit code and stdout. Nothing serves on
/// `PAYHOOK_BIND`, so the public listener's line fails whatever else passes.
fn check(dir: &std::path::Path, url: &str) -> (i32, String) {
    let mut cmd: Command = payhook(dir, url);
    cmd.env("PAYHOOK_BIND", format!("127.0.0.1:{}", free_port()))
        .arg("check");
    let (code, out, err) = run(&mut cmd);
    (code, format!("{out}{err}"))
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[test]
fn a_lone_server_has_no_synchronous_standby_and_says_so() {
    // The process's own cluster, never a TEST_DATABASE_URL server that may
    // have standbys of its own.
    let name = format!("check_lone_{}", std::process::id());
    let cluster = postgres::cluster();
    cluster.create_database(&name);
    // The test cluster's default is `off` (speed); a production-like commit
    // leaves the missing standby the line's only finding.
    let on = format!("ALTER DATABASE \"{name}\" SET synchronous_commit = on");
    postgres::psql(&cluster.url("postgres"), &on).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = check(dir.path(), &cluster.url(&name));
    line(&out, "✓ database: postgres (");
    assert_eq!(
        line(&out, "! replication: "),
        "! replication: primary, synchronous_commit=on, synchronous_standby_names=\"\", \
         no standby: no synchronous standby: a commit is durable on this server only \
         — fix: none if one server is what you want (a valid single-node setup); for high \
         availability add a standby and name it in synchronous_standby_names"
    );
    // A warning, not a failure: the lines that fail are the listener's alone.
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("✗ ")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].starts_with("✗ public listener: "), "{out}");
}

#[test]
fn a_synchronous_standby_is_shown_by_name_and_the_standby_itself_fails() {
    let name = "payhook_check";
    let (primary, standby) = sync_pair(name);
    let dir = tempfile::tempdir().unwrap();

    let (_, out) = check(dir.path(), &primary.url(name));
    line(&out, "✓ database: postgres (");
    let replication = line(&out, "✓ replication: primary, ");
    for words in [
        "synchronous_commit=on",
        "synchronous_standby_names=\"s1\"",
        "standby(s) s1 (streaming, sync, replay lag ",
        "a commit is durable on a synchronous standby too",
    ] {
        assert!(replication.contains(words), "{words:?} in {replication}");
    }

    let (code, out) = check(dir.path(), &standby.url(name));
    assert_eq!(code, 1, "{out}");
    assert!(
        line(&out, "✗ database: postgres (")
            .contains("reachable, but a standby: it takes no writes"),
        "{out}"
    );
    let replication = line(&out, "✗ replication: standby, ");
    for words in [
        "a standby (in recovery), not the primary",
        "— fix: point DATABASE_URL at the primary",
    ] {
        assert!(replication.contains(words), "{words:?} in {replication}");
    }
    drop(standby);
    drop(primary);
}
