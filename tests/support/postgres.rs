//! Throw-away PostgreSQL for integration tests.
//!
//! Every test binary gets at most one private cluster, started lazily by the
//! first test that asks for a database and shared by all tests of that process
//! (cargo runs them on parallel threads; nextest runs one process per test, so
//! there each test gets its own cluster). Tests isolate themselves by taking a
//! brand-new database from [`fresh_database`] instead of sharing one.
//!
//! Migrating costs more than creating a database, so each server gets one
//! migrated template, built by the first test that asks for a database, and
//! every [`fresh_database`] is a copy of it (`CREATE DATABASE … TEMPLATE`).
//! The service's start-up still runs its migrations and finds none pending;
//! the tests of migrating itself take an [`empty_database`].
//!
//! If `TEST_DATABASE_URL` is set, databases are created on that server instead
//! and no cluster is started (unless a test calls [`cluster`] explicitly).
//!
//! Nothing here skips silently: a missing binary or a failed `initdb` panics
//! with the tool's output and the server log, so a red CI run explains itself.

use std::env;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use diesel::{Connection, PgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Environment variable naming an existing server to create test databases on.
pub const EXTERNAL_URL_VAR: &str = "TEST_DATABASE_URL";

/// The superuser `initdb` creates; also the OS account used when we are root.
const SUPERUSER: &str = "postgres";

/// Seconds `pg_ctl -w` waits for the server before giving up.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// The service's PostgreSQL migrations, the same folder its binary embeds.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Returns the URL of a brand-new database that no other test uses, with
/// every migration applied (a copy of the server's migrated template).
///
/// Created on `TEST_DATABASE_URL`'s server when that is set, otherwise on this
/// process's private cluster (started on first use).
pub fn fresh_database() -> String {
    match external_url() {
        Some(base) => {
            let template = external_template(&base);
            create_on(&base, &unique_database_name(), Some(template))
        }
        None => {
            let cluster = cluster();
            let name = unique_database_name();
            cluster.create_database(&name);
            cluster.url(&name)
        }
    }
}

/// Returns the URL of a brand-new database without any table, for the tests
/// of migrating itself; otherwise like [`fresh_database`].
pub fn empty_database() -> String {
    let name = unique_database_name();
    match external_url() {
        Some(base) => create_on(&base, &name, None),
        None => {
            let cluster = cluster();
            cluster.create_empty_database(&name);
            cluster.url(&name)
        }
    }
}

/// The migrated template on `TEST_DATABASE_URL`'s server, built once per
/// process (other processes may share the server, with other migrations).
fn external_template(base: &str) -> &'static str {
    static TEMPLATE: OnceLock<Result<String, String>> = OnceLock::new();
    let built = TEMPLATE.get_or_init(|| {
        let name = format!("tpl_{}", unique_database_name());
        let url = create_on(base, &name, None);
        freeze_template(base, &url, &name)?;
        Ok(name)
    });
    match built {
        Ok(name) => name,
        Err(msg) => panic!("cannot build the migrated template database: {msg}"),
    }
}

/// Creates database `name` on the server of `admin_url` (a copy of `template`
/// if given) and returns its URL.
fn create_on(admin_url: &str, name: &str, template: Option<&str>) -> String {
    let sql = match template {
        Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    if let Err(err) = psql(admin_url, &sql) {
        panic!("cannot create test database {name}: {err}");
    }
    url_with_database(admin_url, name)
}

/// Migrates the database at `url` (named `name`) and makes it a template
/// nobody connects to any more: `CREATE DATABASE … TEMPLATE` fails while a
/// session is connected to its source.
fn freeze_template(admin_url: &str, url: &str, name: &str) -> Result<(), String> {
    let started = Instant::now();
    {
        let mut conn = PgConnection::establish(url).map_err(|err| format!("{name}: {err}"))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|err| format!("migrating {name}: {err}"))?;
    }
    psql(
        admin_url,
        &format!("ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    )?;
    eprintln!(
        "test template database {name} migrated in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// TCP address of the server [`fresh_database`] creates databases on; feed it
/// to a chaos proxy as the upstream.
pub fn server_addr() -> SocketAddr {
    match external_url() {
        Some(url) => resolve_url_addr(&url)
            .unwrap_or_else(|err| panic!("cannot resolve {EXTERNAL_URL_VAR}: {err}")),
        None => cluster().addr(),
    }
}

/// The process-wide private cluster, started on first call.
///
/// Always a local cluster, even when `TEST_DATABASE_URL` is set, because only a
/// cluster we own can be stopped and started again.
pub fn cluster() -> &'static Cluster {
    // The outcome is cached, failure included: otherwise every test of the
    // binary would retry a doomed multi-second initdb and repeat the same panic.
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(Cluster::boot) {
        Ok(cluster) => cluster,
        Err(msg) => panic!("test PostgreSQL cluster unavailable:\n{msg}"),
    }
}

/// A cluster of the caller's own, for a test that restarts the server: the
/// shared [`cluster`] cannot be restarted without failing the other tests of
/// the binary. Stopped and removed when dropped.
pub fn private_cluster() -> Cluster {
    private_cluster_with(&[])
}

/// [`private_cluster`] whose server runs with `settings` (`-c name=value`) on
/// top of the defaults.
pub fn private_cluster_with(settings: &[(&str, &str)]) -> Cluster {
    Cluster::boot_with(settings)
        .unwrap_or_else(|msg| panic!("private PostgreSQL cluster unavailable:\n{msg}"))
}

/// Runs `sql` with `psql` against `url` and returns stdout, tuples only and
/// unaligned (so `select 1` yields `"1"`); `Err` carries psql's stderr.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let psql = psql_binary()?;
    let output = Command::new(psql)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        // A dead or black-holed server must fail a test, not hang it.
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", psql.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Returns `url` pointing at database `name` instead (host, credentials and
/// query parameters kept).
pub fn url_with_database(url: &str, name: &str) -> String {
    let parts = UrlParts::parse(url).unwrap_or_else(|| panic!("not a postgres:// URL: {url:?}"));
    format!("{}{}/{name}{}", parts.prefix, parts.hostport, parts.query)
}

/// Returns `url` with host and port replaced by `addr`, e.g. to route a test's
/// connection through a chaos proxy.
pub fn url_via(url: &str, addr: SocketAddr) -> String {
    let parts = UrlParts::parse(url).unwrap_or_else(|| panic!("not a postgres:// URL: {url:?}"));
    format!("{}{addr}{}{}", parts.prefix, parts.path, parts.query)
}

/// A private PostgreSQL cluster in a temporary directory, living as long as
/// the test process.
///
/// [`Cluster::stop`] and [`Cluster::start`] exist for outage tests, but they
/// take the server away from *every* test of the binary. Prefer a chaos proxy
/// between the code under test and the server; if a test really must stop the
/// cluster, give it a test binary of its own.
pub struct Cluster {
    port: u16,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    bins: Binaries,
    /// `runuser` when we are root, because initdb and pg_ctl refuse to run as root.
    runuser: Option<PathBuf>,
    /// Serialises stop/start so concurrent calls cannot interleave pg_ctl runs.
    lifecycle: Mutex<()>,
    /// The migrated template [`Cluster::create_database`] copies, built once.
    template: OnceLock<Result<String, String>>,
    /// `-c name=value` options after the defaults (the later one wins).
    settings: String,
    /// Held for its lifetime only: statics are never dropped, so the directory
    /// is removed by the watchdog, not by `TempDir`'s destructor.
    _dir: tempfile::TempDir,
    _watchdog: Child,
}

impl Cluster {
    /// TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Loopback address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log, worth attaching to a failure message.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// URL of database `name` on this cluster as the trusted superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` with every statement it runs written to the
    /// server log (`log_statement = 'all'`, for this database only), and
    /// returns its URL.
    pub fn create_logged_database(&self, name: &str) -> String {
        self.create_database(name);
        let sql = format!("ALTER DATABASE \"{name}\" SET log_statement = 'all'");
        if let Err(err) = psql(&self.url("postgres"), &sql) {
            panic!("cannot log the statements of {name}: {err}");
        }
        self.url(name)
    }

    /// Creates database `name` whose every statement's plan, with the rows
    /// each step read and threw away, is written to the server log
    /// (`auto_explain`, for this database only), and where a sequential scan
    /// is taken only when no index can serve; returns its URL.
    pub fn create_explained_database(&self, name: &str) -> String {
        self.create_database(name);
        for setting in [
            "session_preload_libraries = 'auto_explain'",
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_analyze = on",
            "auto_explain.log_timing = off",
            "auto_explain.log_nested_statements = on",
            "enable_seqscan = off",
        ] {
            let sql = format!("ALTER DATABASE \"{name}\" SET {setting}");
            if let Err(err) = psql(&self.url("postgres"), &sql) {
                panic!("cannot explain the plans of {name}: {err}");
            }
        }
        self.url(name)
    }

    /// Creates database `name` (must be a plain identifier) with every
    /// migration applied, a copy of this cluster's migrated template (built
    /// on first use), panicking on failure.
    pub fn create_database(&self, name: &str) {
        let template = self.template.get_or_init(|| {
            let template = format!("tpl_{}", unique_database_name());
            self.create_empty_database(&template);
            freeze_template(&self.url("postgres"), &self.url(&template), &template)?;
            Ok(template)
        });
        let template = match template {
            Ok(template) => template,
            Err(msg) => panic!(
                "cannot build the migrated template database: {msg}\n{}",
                self.log_tail()
            ),
        };
        create_on(&self.url("postgres"), name, Some(template));
    }

    /// Creates database `name` (must be a plain identifier) without any
    /// table, panicking on failure.
    pub fn create_empty_database(&self, name: &str) {
        create_on(&self.url("postgres"), name, None);
    }

    /// Stops the server (fast shutdown, waits until it is down); affects every
    /// test in this binary.
    pub fn stop(&self) {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "stop"]);
        if let Err(err) = run(&mut cmd) {
            panic!("pg_ctl stop failed: {err}\n{}", self.log_tail());
        }
    }

    /// Starts the server again on the same port and data directory, waiting
    /// until it accepts connections.
    pub fn start(&self) {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = self.pg_ctl_start() {
            panic!("pg_ctl start failed: {err}\n{}", self.log_tail());
        }
    }

    fn boot() -> Result<Cluster, String> {
        Cluster::boot_with(&[])
    }

    /// A new cluster whose server runs with `settings` on top of the defaults.
    fn boot_with(settings: &[(&str, &str)]) -> Result<Cluster, String> {
        let started = Instant::now();
        let cluster = Cluster::prepare(settings)?;
        let mut initdb = cluster.as_postgres(&cluster.bins.initdb);
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&cluster.data_dir);
        run(&mut initdb).map_err(|err| format!("initdb failed: {err}"))?;
        cluster.start_on_a_free_port(started)
    }

    /// A streaming standby of this cluster, named `name` (its
    /// `application_name`, what `synchronous_standby_names` lists), started
    /// from a base backup and running with `settings`.
    pub fn standby(&self, name: &str, settings: &[(&str, &str)]) -> Cluster {
        let build = || -> Result<Cluster, String> {
            let started = Instant::now();
            let standby = Cluster::prepare(settings)?;
            let mut backup = standby.as_postgres(&self.bins.dir.join("pg_basebackup"));
            backup
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", SUPERUSER, "-X", "stream", "-R", "--no-sync", "-D"])
                .arg(&standby.data_dir);
            run(&mut backup).map_err(|err| format!("pg_basebackup failed: {err}"))?;
            // -R wrote standby.signal and a primary_conninfo; this later line
            // adds the name the primary knows the standby by.
            let conninfo = format!(
                "\nprimary_conninfo = 'host=127.0.0.1 port={} user={SUPERUSER} application_name={name}'\n",
                self.port
            );
            let auto = standby.data_dir.join("postgresql.auto.conf");
            let mut file = fs::OpenOptions::new()
                .append(true)
                .open(&auto)
                .map_err(|err| format!("cannot open {}: {err}", auto.display()))?;
            std::io::Write::write_all(&mut file, conninfo.as_bytes())
                .map_err(|err| format!("cannot write {}: {err}", auto.display()))?;
            standby.start_on_a_free_port(started)
        };
        build().unwrap_or_else(|msg| panic!("standby {name} unavailable:\n{msg}"))
    }

    /// Brings this former primary, stopped or killed, back as a standby of
    /// `source` (which was promoted in its place), named `name`: `pg_rewind`
    /// discards what this one wrote that `source` never received and copies
    /// what changed since they parted, then the server starts streaming from
    /// `source`. Both need `full_page_writes` and `wal_log_hints` on.
    pub fn rewind_as_standby_of(&self, source: &Cluster, name: &str) {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        let conninfo = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} application_name={name}",
            source.port
        );
        self.forget_killed_postmaster();
        // Until its first checkpoint a promoted server's control file still
        // names the old timeline, and pg_rewind would find nothing to rewind.
        psql(&source.url("postgres"), "CHECKPOINT")
            .unwrap_or_else(|err| panic!("CHECKPOINT on the new primary: {err}"));
        // pg_rewind first finishes the killed server's crash recovery in
        // single-user mode, which reads the files, not our -c options: the
        // hint bits setting it then records must still be on, and the
        // checkpoint that ends it must keep the WAL since the two parted,
        // which pg_rewind reads next.
        self.append_auto_conf("wal_log_hints = on");
        self.append_auto_conf("wal_keep_size = '1GB'");
        let mut rewind = self.as_postgres(&self.bins.dir.join("pg_rewind"));
        rewind
            .arg("--target-pgdata")
            .arg(&self.data_dir)
            .arg(format!("--source-server={conninfo} dbname=postgres"))
            // standby.signal and a primary_conninfo pointing at the source.
            .args(["--write-recovery-conf", "--no-sync"]);
        if let Err(err) = run(&mut rewind) {
            panic!("pg_rewind failed: {err}\n{}", self.log_tail());
        }
        // The name the source knows this standby by, whatever -R wrote.
        self.append_auto_conf(&format!("primary_conninfo = '{conninfo}'"));
        if let Err(err) = self.pg_ctl_start() {
            panic!(
                "the rewound server did not start: {err}\n{}",
                self.log_tail()
            );
        }
    }

    /// Adds `line` to `postgresql.auto.conf` (a later line wins).
    fn append_auto_conf(&self, line: &str) {
        let auto = self.data_dir.join("postgresql.auto.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&auto)
            .unwrap_or_else(|err| panic!("cannot open {}: {err}", auto.display()));
        std::io::Write::write_all(&mut file, format!("\n{line}\n").as_bytes())
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", auto.display()));
    }

    /// A killed server leaves its `postmaster.pid` and its socket's lock
    /// behind, naming its pid; while the dead postmaster is a zombie (not
    /// reaped yet) that pid looks alive and the next server refuses to start.
    /// Waits for it to be dead, then removes both.
    fn forget_killed_postmaster(&self) {
        let lock = self.data_dir.join("postmaster.pid");
        let Some(pid) = fs::read_to_string(&lock)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        else {
            return;
        };
        let gone = || match fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !gone() {
            assert!(Instant::now() < deadline, "postmaster {pid} still runs");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = fs::remove_file(&lock);
        // And the lock of its Unix socket, which names the same pid.
        let socket = self.socket_dir.join(format!(".s.PGSQL.{}", self.port));
        let _ = fs::remove_file(format!("{}.lock", socket.display()));
        let _ = fs::remove_file(&socket);
    }

    /// Promotes this standby to a primary, waiting until it takes writes.
    pub fn promote(&self) {
        let mut cmd = self.pg_ctl();
        cmd.args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "promote"]);
        if let Err(err) = run(&mut cmd) {
            panic!("pg_ctl promote failed: {err}\n{}", self.log_tail());
        }
    }

    /// Kills every process of this cluster at once (SIGKILL), as when its
    /// machine dies: no shutdown checkpoint, no goodbye to clients.
    pub fn kill(&self) {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        self.signal(libc::SIGKILL);
        // Gone once the port no longer answers.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_ok() {
            assert!(Instant::now() < deadline, "the killed server still answers");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Freezes every process of this cluster (SIGSTOP): a server that stops
    /// answering without closing anything, until [`Cluster::resume`].
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a [`Cluster::freeze`]d cluster run on (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills this standby's WAL receiver (SIGKILL, even while frozen): what
    /// the primary had sent and it had not written yet is gone with its socket.
    pub fn kill_wal_receiver(&self) {
        let receivers: Vec<u32> = self
            .processes()
            .into_iter()
            .filter(|(_, title)| title.contains("walreceiver"))
            .map(|(pid, _)| pid)
            .collect();
        assert!(
            !receivers.is_empty(),
            "no WAL receiver in {}",
            self.data_dir.display()
        );
        for pid in receivers {
            send(pid, libc::SIGKILL);
        }
    }

    /// Sends `signal` to the postmaster and each of its children; one that
    /// is gone by then (a child the postmaster just reaped) is no error.
    fn signal(&self, signal: libc::c_int) {
        for (pid, _) in self.processes() {
            send(pid, signal);
        }
    }

    /// The postmaster and each of its children, with their process titles.
    fn processes(&self) -> Vec<(u32, String)> {
        let pidfile = self.data_dir.join("postmaster.pid");
        let postmaster: u32 = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no running server in {}", self.data_dir.display()));
        let title = |pid: u32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                .unwrap_or_default()
        };
        let mut found = vec![(postmaster, title(postmaster))];
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // The parent pid is the second field after the parenthesised name.
            let parent = fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let after_name = &stat[stat.rfind(')')? + 1..];
                    after_name.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
            if parent == Some(postmaster) {
                found.push((pid, title(pid)));
            }
        }
        found
    }

    /// The directory, watchdog and settings of a cluster not created yet.
    fn prepare(settings: &[(&str, &str)]) -> Result<Cluster, String> {
        let bins = Binaries::locate()?;
        let as_root = running_as_root()?;
        let runuser = if as_root {
            Some(find_in_path("runuser").ok_or(
                "running as root, which initdb refuses, and `runuser` (util-linux) \
                 is not on PATH to switch to the postgres user",
            )?)
        } else {
            None
        };

        // /tmp rather than $TMPDIR: as root the directory is handed to the
        // postgres user, who must be able to traverse its parent, and the Unix
        // socket inside must stay under the ~107-byte sun_path limit.
        let parent = if Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("payhook-pg-")
            .tempdir_in(&parent)
            .map_err(|err| format!("cannot create temp dir in {}: {err}", parent.display()))?;
        if as_root {
            let mut chown = Command::new("chown");
            chown.arg(SUPERUSER).arg(dir.path());
            run(&mut chown).map_err(|err| {
                format!("cannot hand {} to {SUPERUSER}: {err}", dir.path().display())
            })?;
        }

        let data_dir = dir.path().join("data");
        let cluster = Cluster {
            port: 0,
            socket_dir: dir.path().to_path_buf(),
            log_file: dir.path().join("postgres.log"),
            // Spawned before initdb so that whatever gets created, even by a
            // start that later fails, is torn down when the process exits.
            _watchdog: spawn_watchdog(dir.path(), &data_dir, &bins, runuser.as_deref())?,
            data_dir,
            bins,
            runuser,
            lifecycle: Mutex::new(()),
            template: OnceLock::new(),
            settings: settings
                .iter()
                .map(|(name, value)| format!(" -c {name}={value}"))
                .collect(),
            _dir: dir,
        };
        Ok(cluster)
    }

    fn start_on_a_free_port(mut self, started: Instant) -> Result<Cluster, String> {
        let cluster = &mut self;
        // The free port is only free until someone else binds it; retry with a
        // new one if we lost that race instead of failing the whole binary.
        let mut attempts = 0;
        loop {
            attempts += 1;
            cluster.port = super::free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => break,
                Err(err) => {
                    let log = cluster.log_tail();
                    if attempts < 3 && log.contains("could not bind") {
                        continue;
                    }
                    return Err(format!("pg_ctl start failed: {err}\n{log}"));
                }
            }
        }
        eprintln!(
            "test PostgreSQL {} on 127.0.0.1:{} ready in {:.1?} (data {})",
            cluster.bins.dir.display(),
            cluster.port,
            started.elapsed(),
            cluster.data_dir.display()
        );
        Ok(self)
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // pg_ctl hands -o to /bin/sh; the socket dir is quoted although
        // tempfile's names contain no shell metacharacters.
        let options = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300{}",
            self.port,
            self.socket_dir.display(),
            self.settings
        );
        let mut cmd = self.pg_ctl();
        cmd.arg("-l").arg(&self.log_file).args([
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECS,
            "-o",
            &options,
            "start",
        ]);
        run(&mut cmd).map(drop)
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.as_postgres(&self.bins.pg_ctl);
        cmd.arg("-D").arg(&self.data_dir);
        cmd
    }

    /// A command for a server tool, run as the postgres user when we are root.
    fn as_postgres(&self, program: &Path) -> Command {
        let mut cmd = match &self.runuser {
            Some(runuser) => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", SUPERUSER, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        // The postgres user may not be allowed into the test's working
        // directory, and tools that chdir back to it would then fail.
        cmd.current_dir(&self.socket_dir);
        cmd
    }

    /// The end of the server log, labelled, for failure messages.
    fn log_tail(&self) -> String {
        const MAX: usize = 8000;
        match fs::read(&self.log_file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let mut start = text.len().saturating_sub(MAX);
                while !text.is_char_boundary(start) {
                    start += 1;
                }
                format!("--- {} ---\n{}", self.log_file.display(), &text[start..])
            }
            Err(err) => format!("(no server log at {}: {err})", self.log_file.display()),
        }
    }
}

impl Drop for Cluster {
    // Only private clusters are dropped (the shared one is a static).
    fn drop(&mut self) {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "immediate", "-w", "stop"]);
        let _ = run(&mut cmd);
        let _ = self._watchdog.kill();
        let _ = self._watchdog.wait();
    }
}

/// Server binaries of one PostgreSQL installation: pg_ctl starts the
/// `postgres` next to itself, so initdb must come from the same directory.
struct Binaries {
    dir: PathBuf,
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl Binaries {
    fn locate() -> Result<Binaries, String> {
        let pg_ctl = find_executable("pg_ctl")?;
        // Follow symlinks such as /usr/local/bin/pg_ctl -> .../15/bin/pg_ctl.
        let real = fs::canonicalize(&pg_ctl)
            .map_err(|err| format!("cannot resolve {}: {err}", pg_ctl.display()))?;
        let dir = real
            .parent()
            .ok_or_else(|| format!("{} has no parent directory", real.display()))?
            .to_path_buf();
        let initdb = dir.join("initdb");
        if !is_executable(&initdb) {
            return Err(format!(
                "found {} but no initdb beside it in {}",
                pg_ctl.display(),
                dir.display()
            ));
        }
        Ok(Binaries {
            dir,
            initdb,
            pg_ctl: real,
        })
    }
}

/// Finds a PostgreSQL program: `PATH` first, then the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps server tools off PATH).
fn find_executable(name: &str) -> Result<PathBuf, String> {
    find_in_path(name)
        .or_else(|| newest_versioned(name))
        .ok_or_else(|| {
            format!(
                "PostgreSQL program `{name}` not found on PATH nor in /usr/lib/postgresql/*/bin; \
                 install PostgreSQL (e.g. apt-get install postgresql) or set {EXTERNAL_URL_VAR}"
            )
        })
}

/// `name` from the newest `/usr/lib/postgresql/<version>/bin` that has it.
fn newest_versioned(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| is_executable(path))
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path)
}

/// The psql client, located once.
///
/// Debian's /usr/bin/psql is `pg_wrapper`, a Perl script that costs several
/// times psql's own start-up; every fresh database pays it, so it is skipped
/// for the newest real psql, which is the one the wrapper would pick anyway.
fn psql_binary() -> Result<&'static Path, String> {
    static PSQL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PSQL.get_or_init(|| {
        let psql = find_executable("psql")?;
        let is_wrapper = fs::canonicalize(&psql)
            .is_ok_and(|real| real.file_name().is_some_and(|name| name == "pg_wrapper"));
        if is_wrapper {
            if let Some(real) = newest_versioned("psql") {
                return Ok(real);
            }
        }
        Ok(psql)
    });
    found.as_deref().map_err(Clone::clone)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn running_as_root() -> Result<bool, String> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|err| format!("cannot run `id -u` to learn whether we are root: {err}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Starts a shell that outlives us just long enough to stop the server and
/// delete the directory once this process is gone.
///
/// Statics are never dropped, so no destructor of ours runs at exit; polling
/// the pid also covers a process killed by a signal. The watchdog gets its own
/// process group so that Ctrl-C on `cargo test` does not kill it before it has
/// cleaned up, and null stdio so that nothing reading the test's output waits
/// for it.
fn spawn_watchdog(
    dir: &Path,
    data_dir: &Path,
    bins: &Binaries,
    runuser: Option<&Path>,
) -> Result<Child, String> {
    const SCRIPT: &str = r#"pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir""#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg("payhook-pg-watchdog")
        .arg(process::id().to_string())
        .arg(dir);
    if let Some(runuser) = runuser {
        cmd.arg(runuser).args(["-u", SUPERUSER, "--"]);
    }
    cmd.arg(&bins.pg_ctl)
        .arg("-D")
        .arg(data_dir)
        .args(["-m", "immediate", "stop"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    cmd.spawn()
        .map_err(|err| format!("cannot start the cluster's cleanup watchdog (sh): {err}"))
}

/// Sends `signal` to process `pid`; one already gone is no error.
fn send(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "kill {pid}: {err}");
    }
}

/// Runs `cmd` to completion; a non-zero exit becomes an error with its output.
fn run(cmd: &mut Command) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {shown}: {err}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{shown} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim_end(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))
    }
}

fn external_url() -> Option<String> {
    env::var(EXTERNAL_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Unique across threads (counter), processes (pid) and, for a shared
/// external server, runs that reuse a pid (random suffix).
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "t_{}_{}_{:08x}",
        process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

fn resolve_url_addr(url: &str) -> Result<SocketAddr, String> {
    let parts = UrlParts::parse(url).ok_or_else(|| format!("not a postgres:// URL: {url:?}"))?;
    let host = parts.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!(
            "{url:?} names no TCP host (unix sockets cannot be proxied)"
        ));
    }
    let port = match parts.port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|err| format!("bad port in {url:?}: {err}"))?,
        None => 5432,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {host}:{port}: {err}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port} resolves to no address"))
}

/// Just enough of a `postgres://[user[:pw]@]host[:port][/db][?query]` URL to
/// swap its database or address; multi-host URLs are not supported.
struct UrlParts<'a> {
    /// Scheme, `://` and user info including `@`.
    prefix: &'a str,
    /// `host[:port]` as written.
    hostport: &'a str,
    /// Host, IPv6 literals keeping their brackets.
    host: &'a str,
    port: Option<&'a str>,
    /// `/db` or empty.
    path: &'a str,
    /// `?…` or empty.
    query: &'a str,
}

impl<'a> UrlParts<'a> {
    fn parse(url: &'a str) -> Option<UrlParts<'a>> {
        let scheme_end = url.find("://")? + 3;
        let scheme = &url[..scheme_end];
        if scheme != "postgres://" && scheme != "postgresql://" {
            return None;
        }
        let rest = &url[scheme_end..];
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_len);
        let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
        // Passwords may contain '@' only percent-encoded, so the last '@' ends
        // the user info.
        let hostport_start = authority.rfind('@').map_or(0, |at| at + 1);
        let prefix = &url[..scheme_end + hostport_start];
        let hostport = &authority[hostport_start..];
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']')?;
            let port = hostport[close + 1..].strip_prefix(':');
            (&hostport[..=close], port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        Some(UrlParts {
            prefix,
            hostport,
            host,
            port,
            path,
            query,
        })
    }
}
