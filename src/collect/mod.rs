//! The only code that talks to the kernel: sock_diag netlink (`netlink`,
//! with pure encoding/decoding in `diag` for TCP/UDP and `unixdiag` for unix
//! sockets), the /proc fd scan (`fdscan`) or a BPF iterator with the /proc
//! scan as fallback (`bpf`), the holders' process details (`process`,
//! procfs crate), host settings and counters (`host`), waiting
//! threads (`waiters`).
//! `collect()` runs one pass for a query and returns a `model::Snapshot`.

pub mod bpf;
mod comm;
pub mod diag;
pub mod fdscan;
pub mod host;
pub mod mountinfo;
pub mod netlink;
pub mod process;
pub mod unixdiag;
pub mod waiters;

mod pass;

pub use pass::{collect, collect_with, Collector};
