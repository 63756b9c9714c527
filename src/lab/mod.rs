//! The bundled experiment: a fork server (`serve`) and an echo load client
//! (`load`). Uses std/libc/rustix directly; must not import collect,
//! analyze or render (it is what sockmap observes, not part of observing).

mod client;
pub mod load;
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
}
