//! The only code that talks to the kernel: sock_diag netlink (`netlink`,
//! with pure encoding/decoding in `diag` for TCP/UDP and `unixdiag` for unix
//! sockets), one diag socket per network namespace (`netns`, kept by
//! `nsset`), container ids from cgroups (`cgroup`), forwarders
//! (`forward`), the /proc fd scan (`fdscan`) or a BPF iterator with it as
//! the fallback (`bpf`), the holders' process details
//! (`process`, procfs crate), host settings and counters (`host`), waiting
//! threads (`waiters`).
//! `collect()` runs one pass for a query and returns a `model::Snapshot`;
//! a `Collector` built `from_source` takes its sock_diag answers from a
//! recording and its /proc from any directory (`source`), for tests.

pub mod bpf;
pub mod cgroup;
mod comm;
pub mod diag;
pub mod fdscan;
pub mod forward;
pub mod host;
pub mod mountinfo;
pub mod netlink;
pub mod netns;
pub mod process;
pub mod source;
pub mod unixdiag;
pub mod waiters;

mod nsset;
mod pass;

pub use pass::{collect, collect_in, collect_with, Collector, Refreshed};
