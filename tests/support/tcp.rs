//! What the kernel knows of the service's end of a loopback TCP connection
//! (`/proc/net/tcp`): whether the service has read what a test sent, and
//! whether it has closed its side. Conditions to poll instead of sleeping.

use std::collections::HashMap;
use std::net::SocketAddr;

const ESTABLISHED: u8 = 0x01;
const CLOSE_WAIT: u8 = 0x08;

/// One reading of the IPv4 TCP table: for each connection (local end, remote
/// end), its state and the bytes its owner has not read yet.
pub struct Table(HashMap<(String, String), (u8, usize)>);

impl Table {
    pub fn read() -> Table {
        let text = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        Table(
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
                    let (_, unread) = fields.get(4)?.split_once(':')?;
                    let unread = usize::from_str_radix(unread, 16).ok()?;
                    Some((
                        (fields[1].to_string(), fields[2].to_string()),
                        (state, unread),
                    ))
                })
                .collect(),
        )
    }

    /// The service's end of the connection from `client` to `server`: its
    /// state and unread bytes; `None` once the socket is gone.
    fn server_end(&self, client: SocketAddr, server: SocketAddr) -> Option<(u8, usize)> {
        self.0.get(&(hex_addr(server), hex_addr(client))).copied()
    }

    /// Whether the service has read every byte the client sent so far (an
    /// accepted connection nobody read from yet, or one still in the listen
    /// backlog, has some unread).
    pub fn read_everything(&self, client: SocketAddr, server: SocketAddr) -> bool {
        self.server_end(client, server)
            .is_some_and(|(state, unread)| state == ESTABLISHED && unread == 0)
    }

    /// Whether the service has closed its end of a connection the client
    /// closed (nothing left in close-wait, the state between the two).
    pub fn closed_by_server(&self, client: SocketAddr, server: SocketAddr) -> bool {
        self.server_end(client, server)
            .is_none_or(|(state, _)| state != CLOSE_WAIT)
    }
}

/// [`Table::read_everything`] on a fresh reading.
pub fn read_everything(client: SocketAddr, server: SocketAddr) -> bool {
    Table::read().read_everything(client, server)
}

/// `127.0.0.1:8080` as `/proc/net/tcp` writes it, `0100007F:1F90` here: the
/// address as the machine's own 32-bit integer, the port big-endian.
fn hex_addr(addr: SocketAddr) -> String {
    let SocketAddr::V4(addr) = addr else {
        panic!("IPv4 only: {addr}");
    };
    let ip = u32::from_ne_bytes(addr.ip().octets());
    format!("{ip:08X}:{:04X}", addr.port())
}
