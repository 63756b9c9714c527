//! sockmap: who holds a socket and what its queues are doing right now.
//!
//! Data flows one way: `collect` (the only code that talks to the kernel)
//! → `model` (plain data) → `analyze` (join + classify) → `render` (bytes).
//! `cli` turns arguments into validated configs; `app` runs a subcommand
//! end to end; `lab` is the bundled experiment (fork server, load client).

#![deny(clippy::unwrap_used)]

pub mod analyze;
pub mod app;
pub mod cli;
pub mod collect;
pub mod error;
pub mod escape;
pub mod lab;
pub mod model;
pub mod render;
pub mod target;
