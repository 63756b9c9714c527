//! Runs one subcommand end to end: collect → analyze → render, and decides
//! the exit code. The library side of `main`.

mod check;
mod demo;
mod export;

mod http;
mod inspect;
mod interrupt;
mod sampler;
pub mod snapshot;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{exit, Result};
use crate::lab::{LoadConfig, ServeConfig};
use crate::model::netns::NetnsScope;
use crate::model::scan::{ScanInfo, ScanOptions};
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
    /// Replay this recorded snapshot instead of collecting (`--from`).
    pub from: Option<PathBuf>,
    /// Also write the snapshot rendered to this file (`--save`; `-` is stdout).
    pub save: Option<PathBuf>,
    pub scan: ScanOptions,
}

/// `sockmap snapshot`: one pass, recorded.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    pub query: Query,
    pub netns: NetnsScope,
    /// Where to write it (`-`: stdout).
    pub output: PathBuf,
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
    pub scan: ScanOptions,
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
    /// Evaluate this recorded snapshot instead of collecting (`--from`).
    pub from: Option<PathBuf>,
    pub scan: ScanOptions,
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
    Snapshot(SnapshotConfig),
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
        Command::Snapshot(cfg) => snapshot::run(&cfg, &mut out, &mut std::io::stderr()),
        Command::Export(cfg) => export::run(&cfg, &mut out),
        Command::Check(cfg) => check::run(&cfg, &mut out, &mut std::io::stderr()),
        Command::Generate(what) => crate::cli::generate::run(&what, &mut out),
    }
}

/// A failed write to stdout (EPIPE when the reader went away is the usual one).
pub(crate) fn stdout_err(source: std::io::Error) -> crate::error::Error {
    crate::error::Error::Write {
        what: "stdout",
        source,
    }
}

/// `--verbose`: one stderr line on how the holders were found. The
/// verifier's log of a refused BPF program is printed whenever it was
/// kept, which happens only when asked (`--verbose` or `SOCKMAP_BPF_LOG`).
pub(crate) fn tell_scan(err: &mut impl std::io::Write, opts: ScanOptions, info: Option<&ScanInfo>) {
    let Some(info) = info else {
        return;
    };
    if opts.verbose {
        let ms = |us: u64| us as f64 / 1000.0;
        let mut line = format!(
            "sockmap: holders: {}, scan {:.1} ms",
            info.method,
            ms(info.duration_us)
        );
        if let Some(load) = info.load_us {
            line.push_str(&format!(", load {:.1} ms", ms(load)));
        }
        if let Some(reason) = info.fallback_reason {
            line.push_str(&format!(" (BPF not used: {reason})"));
        }
        if let Some(detail) = &info.detail {
            line.push_str(&format!(": {detail}"));
        }
        let _ = writeln!(err, "{line}");
    }
    if let Some(log) = &info.verifier_log {
        let _ = writeln!(err, "sockmap: BPF verifier log:\n{log}");
    }
}
