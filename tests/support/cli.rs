//! The real `payhook` binary, configured as the service is (environment only,
//! nothing inherited but `PATH`), for the command-line tests.

use std::path::Path;
use std::process::{Command, Output};

use super::gateway::{PASSWORD, PROJECT};
use super::vectors::vectors_dir;

/// `payhook` in `dir` on `database_url`, for project 123 with the shared test key.
pub fn payhook(dir: &Path, database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PAYSERA_PROJECT_ID", PROJECT.to_string())
        .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
        .env(
            "PAYSERA_PUBLIC_KEY_FILE",
            vectors_dir().join("current/public.pem"),
        )
        .env("PAYHOOK_ADMIN_TOKEN", "test-admin-token-0123456789")
        .env("PAYHOOK_DATA_DIR", dir)
        .env("DATABASE_URL", database_url)
        .current_dir(dir);
    cmd
}

/// Exit code, stdout, stderr.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().expect("exited"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
