//! A payhook process started by a test: killed when dropped, and a start that
//! fails says why (the process's own stderr) instead of only timing out.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    stderr: tempfile::NamedTempFile,
}

impl Service {
    /// Spawns `cmd` (stdout discarded, stderr kept) and waits until
    /// something listens on `127.0.0.1:port` (`super::listening`). A process that exits first, or a port still
    /// closed after `limit`, fails the test with what the process printed.
    pub fn start(cmd: &mut Command, port: u16, limit: Duration) -> Service {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut service = Service { child, stderr };
        let started = Instant::now();
        while !super::listening(port) {
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("service exited at start ({status}):\n{}", service.stderr());
            }
            assert!(
                started.elapsed() < limit,
                "service did not listen on {port} within {limit:?}:\n{}",
                service.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    /// What the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        let mut text = String::new();
        let _ = self.stderr.reopen().unwrap().read_to_string(&mut text);
        text
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
