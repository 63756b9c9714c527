//! Runs one subcommand end to end: collect → analyze → render, and decides
//! the exit code. The library side of `main`.

mod check;
mod demo;
mod export;
pub mod generate;
mod http;
mod inspect;
mod interrupt;
mod sampler;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{exit, Result};
use crate::lab::{LoadConfig, ServeConfig};
use crate::model::netns::NetnsScope;
use crate::target::Query;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Plain,
    Json,
}

#[derive(Debug, Clone)]
pub struct InspectConfig {
    pub query: Query,
    /// Which network namespaces to look in (`--netns`).
    pub netns: NetnsScope,
    pub format: Format,
    pub color: bool,
}

#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub query: Query,
    pub netns: NetnsScope,
    pub interval: Duration,
    pub count: Option<u64>,
    pub json: bool,
    /// Redraw the live view in place (a capable terminal).
    pub redraw: bool,
}

#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub query: Query,
    /// Where to serve HTTP (loopback unless the user asks otherwise).
    pub listen: std::net::SocketAddr,
    /// Per-connection read and write timeout.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    pub query: Query,
    pub netns: NetnsScope,
    pub assertions: crate::analyze::check::Assertions,
    pub json: bool,
}

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub clients: u64,
    pub rounds: u32,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub enum GenerateWhat {
    Man(PathBuf),
    Completions(clap_complete::Shell),
    Schema(PathBuf),
}

#[derive(Debug, Clone)]
pub enum Command {
    Inspect(InspectConfig),
    Watch(WatchConfig),
    Check(CheckConfig),
    Export(ExportConfig),
    Serve(ServeConfig),
    Load(LoadConfig),
    Demo(DemoConfig),
    Generate(GenerateWhat),
}

/// Run a command, writing to stdout; returns the exit code.
pub fn run(cmd: Command) -> Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        Command::Serve(cfg) => crate::lab::serve::run(&cfg, &mut out).map(|()| exit::OK),
        Command::Load(cfg) => {
            crate::lab::load::run(&cfg, &mut out)
                .map(|ok| if ok { exit::OK } else { exit::NOT_FOUND })
        }
        Command::Inspect(cfg) => inspect::run(&cfg, &mut out, &mut std::io::stderr()),
        Command::Watch(cfg) => watch::run(&cfg, &mut out),
        Command::Demo(cfg) => demo::run(&cfg, &mut out),
        Command::Export(cfg) => export::run(&cfg, &mut out),
        Command::Check(cfg) => check::run(&cfg, &mut out, &mut std::io::stderr()),
        Command::Generate(what) => generate::run(&what, &mut out),
    }
}

/// A failed write to stdout (EPIPE when the reader went away is the usual one).
pub(crate) fn stdout_err(source: std::io::Error) -> crate::error::Error {
    crate::error::Error::Write {
        what: "stdout",
        source,
    }
}
