//! The only code that talks to the kernel: sock_diag netlink (`netlink`,
//! with pure encoding/decoding in `diag`), the /proc fd scan (`fdscan`),
//! host settings and counters (`host`), waiting threads (`waiters`).
//! `collect()` runs one pass for a query and returns a `model::Snapshot`.

pub mod cgroup;
pub mod diag;
pub mod fdscan;
pub mod forward;
pub mod host;
pub mod mountinfo;
pub mod netlink;
pub mod netns;
pub mod waiters;

mod nsset;
mod pass;

pub use nsset::NsSelector;
pub use pass::{collect, collect_in, Collector};
