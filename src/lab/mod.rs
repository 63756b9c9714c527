//! The bundled experiment: a fork server (`serve`) and a load client
//! (`load`: echo, hold or HTTP), and the JSON documents they print
//! (`message`). Uses std/libc/rustix directly; must not import collect,
//! analyze or render (it is what sockmap observes, not part of observing).

mod client;
mod http;
pub mod load;
pub mod message;
mod pattern;
pub mod serve;
mod signals;
mod worker;
mod workers;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `sockmap serve` settings (validated by cli).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Processes accepting, parent included (>= 1).
    pub workers: u32,
    pub reuseport: bool,
    pub backlog: i32,
    /// Never accept().
    pub stall: bool,
    pub json: bool,
}

/// `sockmap load` settings (validated by cli).
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub connect: SocketAddr,
    pub clients: u64,
    pub rounds: u32,
    /// Bytes per round (>= 1).
    pub size: u64,
    /// Per-connection inactivity limit.
    pub timeout: Duration,
    pub json: bool,
    pub mode: LoadMode,
}

/// What each `load` client does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Send `size` bytes per round and verify the echo.
    Echo,
    /// Send nothing; keep the connection open this long, then close (fills
    /// a server's accept queue when it does not accept fast enough).
    Hold(Duration),
    /// `GET / HTTP/1.1` per round and read one response; a status other
    /// than 2xx/3xx is a failure.
    Http,
}

impl LoadMode {
    /// The mode as the report names it (a hold's time is a field of its own).
    pub fn name(self) -> message::LoadModeName {
        match self {
            LoadMode::Echo => message::LoadModeName::Echo,
            LoadMode::Hold(_) => message::LoadModeName::Hold,
            LoadMode::Http => message::LoadModeName::Http,
        }
    }
}
