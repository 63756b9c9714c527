//! The command-line surface: clap definitions and their conversion into the
//! validated configs the library takes. The only module that imports clap;
//! nothing outside it sees a clap type.

#![allow(rustdoc::broken_intra_doc_links)] // help text like "[::1]:8000" is not a link

mod assertions;
pub mod generate;
mod services;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analyze::check::Assertions;
use crate::app::{
    CheckConfig, Command, DemoConfig, ExportConfig, Format, GenerateWhat, InspectConfig,
    SnapshotConfig, WatchConfig,
};
use crate::error::{Error, Result};
use crate::lab::{LoadConfig, LoadMode, ServeConfig};
use crate::model::netns::NetnsScope;
use crate::model::scan::{ScanChoice, ScanOptions};
use crate::model::Proto;
use crate::target::{self, Query};

pub use values::{parse_duration, parse_size};

const TARGET_HELP: &str = "\
TARGET selects sockets. Ports: ':8000' or '8000' (any local address), \
':80,443' (a list), ':8000-8010' (a range), ':http' (a name from \
/etc/services). Addresses: '127.0.0.1:8000' or '[::1]:8000' (exactly that \
local address), '0.0.0.0:8000' or '[::]:8000' (one family's wildcard), \
'*:8000' (the wildcard of either family, as headers print it), '127.0.0.1' \
or '::1' (every port on that address). 'tcp:' or 'udp:' before a port or \
address picks the protocol ('udp:53', 'udp:127.0.0.1:53'); without one, \
TCP. 'unix:/run/app.sock' or 'unix:@name' (a unix socket by path or \
abstract name), 'pid:1234' (every socket that process holds), \
'comm:nginx' (every socket held by processes with that command name), \
'inode:4322' (one socket), 'netns:NAME' or 'netns:INODE' (look in that \
network namespace; alone, every listener there). Several targets add up. \
With no target, inspect shows every listening socket: TCP LISTEN, UDP \
unconnected, unix LISTEN.";

const EXIT_HELP: &str = "\
EXIT STATUS: 0 ok; 1 nothing matched the target (inspect; watch: in no \
sample) or an assertion failed (check); 2 bad usage or bad input; 3 the kernel query failed; 4 (check) \
no assertion failed but some could not be decided (part of the picture \
could not be seen).";

const DEMO_EXIT_HELP: &str = "\
EXIT STATUS: 0 the demo ran and showed both cases; 1 the load saw failures \
or the proof did not hold; 2 bad usage; 3 something it needs failed at run \
time (sockmap serve did not start, the kernel query failed); 130 \
interrupted (Ctrl-C or SIGTERM), as shells report it.";

/// Who holds a socket and what its queues are doing right now.
///
/// sockmap follows the chain fd → file → socket inode → listening sock →
/// accept queue / SYN queue: it asks the kernel (sock_diag netlink) for the
/// sockets and their queues, and scans /proc/*/fd for every process and fd
/// that holds each one.
#[derive(Debug, Parser)]
#[command(name = "sockmap", version, after_help = EXIT_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Show every process and fd holding the matching sockets, with queues.
    #[command(after_help = format!("{TARGET_HELP}\n\n{EXIT_HELP}"))]
    Inspect(InspectArgs),
    /// Sample the target's queues repeatedly (a live view, or JSON lines).
    #[command(after_help = format!("{TARGET_HELP}\n\n{EXIT_HELP}"))]
    Watch(WatchArgs),
    /// Exit 0 if every assertion about the target holds, 1 if not.
    #[command(after_help = format!("{TARGET_HELP}\n\n{EXIT_HELP}"))]
    Check(CheckArgs),
    /// Record one look at the sockets to a file, for inspect/check --from (bug reports).
    #[command(after_help = format!("{TARGET_HELP}\n\n{EXIT_HELP}"))]
    Snapshot(SnapshotArgs),
    /// Serve the sockets' queues, drops and holders as Prometheus metrics over HTTP.
    #[command(after_help = format!("{TARGET_HELP}\n\n{EXPORT_HELP}"))]
    Export(ExportArgs),
    /// The bundled fork server: listen, fork workers that accept on one socket.
    Serve(ServeArgs),
    /// The bundled load client: concurrent echo, hold or HTTP clients.
    Load(LoadArgs),
    /// Run the experiment end to end: serve + load + inspect, then reuseport.
    #[command(after_help = DEMO_EXIT_HELP)]
    Demo(DemoArgs),
    /// Write the man page or shell completions (for packagers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the JSON document (see schema/inspect.json) instead of a table.
    #[arg(long, conflicts_with = "plain")]
    pub json: bool,
    /// One row per holder, space-separated, no box drawing (for grep/awk).
    #[arg(long, short = 'H')]
    pub plain: bool,
    /// When to colour the output (NO_COLOR in the environment turns it off).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

const NETNS_HELP: &str = "\
Network namespaces to look in: 'all' (the default: every namespace any \
process is in, plus those under /run/netns; reading others than your own \
needs root, CAP_SYS_ADMIN), 'self' (only sockmap's own), NAME (an `ip \
netns` name), INODE (the nsfs inode, as `lsns -t net` prints), or \
'pid:N' (the namespace process N is in).";

#[derive(Debug, Args)]
pub struct NetnsArgs {
    #[arg(long, value_name = "self|all|NAME|INODE|pid:N", long_help = NETNS_HELP, value_parser = parse_netns)]
    /// Network namespaces to look in: all (default), self, NAME, INODE or pid:N.
    pub netns: Option<NetnsScope>,
}

/// Narrow to kinds of socket, as in `ss`.
#[derive(Debug, Args)]
pub struct KindArgs {
    /// TCP sockets (a bare port target means TCP unless -u is given).
    #[arg(long, short = 't')]
    pub tcp: bool,
    /// UDP sockets.
    #[arg(long, short = 'u')]
    pub udp: bool,
    /// Unix stream and seqpacket sockets.
    #[arg(long = "unix", short = 'x')]
    pub unix: bool,
}

impl KindArgs {
    fn protos(&self) -> Vec<Proto> {
        [
            (self.tcp, Proto::Tcp),
            (self.udp, Proto::Udp),
            (self.unix, Proto::Unix),
        ]
        .into_iter()
        .filter_map(|(on, p)| on.then_some(p))
        .collect()
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// What to inspect (see below); none means every listening socket, as an overview.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Include sockets in every state, not just listeners (and unconnected UDP).
    #[arg(long, short = 'a')]
    pub all: bool,
    #[command(flatten)]
    pub kinds: KindArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub netns: NetnsArgs,
    /// Show a recorded snapshot (sockmap snapshot -o FILE) instead of the
    /// live sockets: no kernel query, no privilege needed. '-' reads stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = FROM_CONFLICTS)]
    pub from: Option<PathBuf>,
    /// Also write the snapshot shown to FILE, to replay with --from or
    /// attach to a bug report.
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScanArg {
    /// The BPF iterator when it can be used (root, kernel BTF), else /proc.
    Auto,
    /// The BPF iterator, or exit 3 saying why it cannot be used.
    Bpf,
    /// Read /proc/*/fd of every process.
    Proc,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// How to find the processes holding each socket (SOCKMAP_NO_BPF=1 in
    /// the environment makes 'auto' mean 'proc').
    #[arg(long, value_enum, default_value = "auto", value_name = "HOW")]
    pub scan: ScanArg,
    /// Say on stderr how the holders were found; if the BPF program was
    /// refused, print the kernel verifier's log.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl ScanArgs {
    fn options(&self) -> ScanOptions {
        ScanOptions {
            choice: match self.scan {
                ScanArg::Auto => ScanChoice::Auto,
                ScanArg::Bpf => ScanChoice::Bpf,
                ScanArg::Proc => ScanChoice::Proc,
            },
            verbose: self.verbose,
        }
    }
}

/// What `--from` replaces: the recording brings its own query.
const FROM_CONFLICTS: [&str; 6] = ["targets", "all", "tcp", "udp", "unix", "netns"];

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// What to record (see below); none means every listening socket.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Include sockets in every state, not just listeners (and unconnected UDP).
    #[arg(long, short = 'a')]
    pub all: bool,
    #[command(flatten)]
    pub kinds: KindArgs,
    #[command(flatten)]
    pub netns: NetnsArgs,
    /// The file to write ('-': stdout).
    #[arg(long, short = 'o', value_name = "FILE", required = true)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch (see below); none: every listener, the ones in trouble first.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Time between samples: '500ms', '1s', '2.5s' (at least 10ms).
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Stop after this many samples (default: until Ctrl-C).
    #[arg(long, short = 'n', allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// One JSON object per sample per line (also the default when stdout is not a terminal).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub netns: NetnsArgs,
    #[command(flatten)]
    pub kinds: KindArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The socket(s) to check (see below).
    #[arg(value_name = "TARGET", required_unless_present = "from")]
    pub targets: Vec<String>,
    /// Something is listening on the target (the default assertion).
    #[arg(long)]
    pub listening: bool,
    /// Exactly N processes hold the socket(s).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub holders: Option<usize>,
    /// At least N processes hold the socket(s).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_holders: Option<usize>,
    /// Exactly one listening socket, held by more than one process (fork).
    #[arg(long)]
    pub shared: bool,
    /// More than one listening socket on the address:port (SO_REUSEPORT).
    #[arg(long)]
    pub reuseport: bool,
    /// Every accept queue holds at most N connections.
    #[arg(long, value_name = "N")]
    pub max_accept_queue: Option<u32>,
    /// Every accept queue is at most this full (depth/backlog, 0.0 to 1.0+).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    pub max_accept_ratio: Option<f64>,
    /// Every SYN queue holds at most N half-open connections.
    #[arg(long, value_name = "N")]
    pub max_syn_queue: Option<u32>,
    /// Every listener's backlog is at least N.
    #[arg(long, value_name = "N")]
    pub min_backlog: Option<u32>,
    /// This process holds the socket(s).
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,
    /// Check only sockets of this protocol (as -t/-u/-x); a bare port then means it.
    #[arg(long, value_enum, value_name = "PROTO", conflicts_with_all = ["tcp", "udp", "unix"])]
    pub proto: Option<ProtoArg>,
    /// Every UDP receive queue holds at most this many bytes: '64KiB', '1000'.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_recv_queue: Option<u64>,
    /// Every listening socket has dropped at most N packets or connections (sk_drops).
    #[arg(long, value_name = "N")]
    pub max_drops: Option<u64>,
    /// Exactly N processes have a thread waiting on the socket(s) right now
    /// (accept, epoll, poll, select): the workers that accept, where every
    /// process may hold every socket (nginx with reuseport).
    #[arg(long, value_name = "N")]
    pub acceptors: Option<usize>,
    /// Print a JSON result with each assertion's verdict, expected and actual.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub netns: NetnsArgs,
    #[command(flatten)]
    pub kinds: KindArgs,
    /// Check a recorded snapshot (sockmap snapshot -o FILE) against its
    /// own targets instead of the live sockets. '-' reads stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["targets", "tcp", "udp", "unix", "netns", "proto"])]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
    Unix,
}

impl From<ProtoArg> for Proto {
    fn from(p: ProtoArg) -> Proto {
        match p {
            ProtoArg::Tcp => Proto::Tcp,
            ProtoArg::Udp => Proto::Udp,
            ProtoArg::Unix => Proto::Unix,
        }
    }
}

const EXPORT_HELP: &str = "\
GET /metrics answers in the Prometheus text format, or OpenMetrics 1.0 when \
the Accept header asks for application/openmetrics-text. The metrics name \
processes: the default address is loopback; serving on another address is \
your choice to make.";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export (see below); none means every listening TCP socket.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Address and port to serve HTTP on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9477")]
    pub listen: SocketAddr,
    /// Cut off a client after this long without progress on one read or write.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (loopback unless you ask for another).
    #[arg(long, default_value = "127.0.0.1")]
    pub addr: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short = 'p', default_value_t = 8000)]
    pub port: u16,
    /// Processes accepting connections (the parent counts as one).
    #[arg(long, short = 'w', default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// Each worker opens its own SO_REUSEPORT socket instead of sharing one.
    #[arg(long)]
    pub reuseport: bool,
    /// The backlog passed to listen() (the kernel clamps it to somaxconn).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(0..))]
    pub backlog: i32,
    /// Never accept(): the accept queue fills up (for watching queues).
    #[arg(long)]
    pub stall: bool,
    /// Print the ready line and the final distribution as JSON lines (see
    /// schema/serve-ready.json and schema/serve-report.json).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The server to load: ADDR:PORT, e.g. 127.0.0.1:8000 or [::1]:8000.
    #[arg(long, short = 'c')]
    pub connect: SocketAddr,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub clients: u64,
    /// Send/receive rounds per connection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Bytes sent (and read back) per round: '512KiB', '1MiB', '4096'.
    #[arg(long, default_value = "512KiB", value_parser = parse_size)]
    pub size: u64,
    /// Give up on a connection after this long without progress.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as one JSON object (see schema/load-report.json).
    #[arg(long)]
    pub json: bool,
    /// What each client does: echo (send --size bytes per round and verify
    /// the echo), hold (connect and keep the connection open for --hold,
    /// e.g. to fill a server's accept queue) or http (GET / per round,
    /// one response read; a status other than 2xx/3xx counts as failed).
    #[arg(long, value_enum, default_value = "echo")]
    pub mode: LoadModeArg,
    /// How long each client holds its connection in --mode hold: '10s' (the
    /// default), '500ms', '1m'.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub hold: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadModeArg {
    Echo,
    Hold,
    Http,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Concurrent clients in each load run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub clients: u64,
    /// Rounds per client.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Bytes per round.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub size: u64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateSub,
}

#[derive(Debug, Subcommand)]
pub enum GenerateSub {
    /// Write man pages into DIR (default: man/).
    Man {
        #[arg(default_value = "man")]
        dir: std::path::PathBuf,
    },
    /// Print a completion script for SHELL to stdout.
    Completions { shell: clap_complete::Shell },
    /// Write the JSON Schema of every JSON document into DIR (default: schema/).
    Schema {
        #[arg(default_value = "schema")]
        dir: std::path::PathBuf,
    },
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("invalid ratio '{s}': expected a number such as 0.8"))?;
    if !v.is_finite() {
        return Err(format!(
            "invalid ratio '{s}': must be a finite number such as 0.8"
        ));
    }
    if v < 0.0 {
        return Err(format!("invalid ratio '{s}': must be 0 or more"));
    }
    Ok(v)
}

/// `--netns self|all|NAME|INODE|pid:N`.
fn parse_netns(s: &str) -> Result<NetnsScope, String> {
    let bad = |why: &str| format!("invalid --netns '{}': {why}", s.escape_debug());
    Ok(match s {
        "" => return Err(bad("expected self, all, NAME, INODE or pid:N")),
        "all" => NetnsScope::All,
        "self" => NetnsScope::Own,
        _ if s.starts_with("pid:") => {
            let p = &s[4..];
            match p.parse::<u32>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => NetnsScope::Pid(n),
                _ => return Err(bad("pid:N needs a process id")),
            }
        }
        _ if s.bytes().all(|b| b.is_ascii_digit()) => match s.parse::<u64>() {
            Ok(n) if n > 0 => NetnsScope::Inode(n),
            _ => return Err(bad("an nsfs inode is a positive number")),
        },
        // `ip netns` names are file names under /run/netns.
        _ if s.contains('/') || s == "." || s == ".." || s.len() > 255 => {
            return Err(bad("not a namespace name (no '/', at most 255 bytes)"))
        }
        _ => NetnsScope::Name(s.to_string()),
    })
}

fn parse_targets(raw: &[String]) -> Result<Query> {
    let services = services::EtcServices::new();
    let mut parsed = Vec::with_capacity(raw.len());
    for t in raw {
        parsed.push(target::parse_with(t, &services).map_err(|e| Error::Usage(e.to_string()))?);
    }
    Ok(Query::new(parsed))
}

/// The assertions, or a usage error when they contradict each other.
fn checked(a: Assertions) -> Result<Assertions> {
    match assertions::contradiction(&a) {
        Some(why) => Err(Error::Usage(why)),
        None => Ok(a),
    }
}

/// `--color auto` follows the usual conventions through anstream: no
/// colour without a terminal, with `NO_COLOR` set, `CLICOLOR=0` or
/// `TERM=dumb`; `CLICOLOR_FORCE` forces it.
fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi
        ),
    }
}

/// A live view may redraw in place (cursor home, clear) only on a
/// terminal that is not `TERM=dumb`; elsewhere frames follow each other.
fn can_redraw() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

impl Cli {
    /// Validate the parsed arguments into the command the library runs.
    pub fn into_command(self) -> Result<Command> {
        Ok(match self.command {
            Sub::Inspect(a) => {
                let format = if a.output.json {
                    Format::Json
                } else if a.output.plain {
                    Format::Plain
                } else {
                    Format::Table
                };
                Command::Inspect(InspectConfig {
                    netns: a.netns.netns.unwrap_or_default(),
                    query: parse_targets(&a.targets)?
                        .with_all_states(a.all)
                        .with_only_protos(&a.kinds.protos()),
                    format,
                    color: color_enabled(a.output.color),
                    from: a.from,
                    save: a.save,
                    scan: a.scan.options(),
                })
            }
            Sub::Snapshot(a) => Command::Snapshot(SnapshotConfig {
                netns: a.netns.netns.unwrap_or_default(),
                query: parse_targets(&a.targets)?
                    .with_all_states(a.all)
                    .with_only_protos(&a.kinds.protos()),
                output: a.output,
            }),
            Sub::Watch(a) => {
                if a.interval < Duration::from_millis(10) {
                    return Err(Error::Usage(format!(
                        "invalid interval '{:?}': must be at least 10ms",
                        a.interval
                    )));
                }
                Command::Watch(WatchConfig {
                    netns: a.netns.netns.unwrap_or_default(),
                    query: parse_targets(&a.targets)?.with_only_protos(&a.kinds.protos()),
                    interval: a.interval,
                    count: a.count,
                    json: a.json,
                    redraw: can_redraw(),
                    scan: a.scan.options(),
                })
            }
            Sub::Check(a) => Command::Check(CheckConfig {
                netns: a.netns.netns.unwrap_or_default(),
                // --proto narrows like -t/-u/-x, and names the protocol in the verdicts.
                query: parse_targets(&a.targets)?.with_only_protos(&match a.proto {
                    Some(p) => vec![Proto::from(p)],
                    None => a.kinds.protos(),
                }),
                json: a.json,
                from: a.from,
                scan: a.scan.options(),
                assertions: checked(Assertions {
                    listening: a.listening,
                    holders: a.holders,
                    min_holders: a.min_holders,
                    shared: a.shared,
                    reuseport: a.reuseport,
                    max_accept_queue: a.max_accept_queue,
                    max_accept_ratio: a.max_accept_ratio,
                    max_syn_queue: a.max_syn_queue,
                    min_backlog: a.min_backlog,
                    pid: a.pid,
                    proto: a.proto.map(Proto::from),
                    max_recv_queue: a.max_recv_queue,
                    max_drops: a.max_drops,
                    acceptors: a.acceptors,
                })?,
            }),
            Sub::Export(a) => {
                if a.timeout < Duration::from_millis(100) {
                    return Err(Error::Usage(format!(
                        "invalid timeout '{:?}': must be at least 100ms",
                        a.timeout
                    )));
                }
                Command::Export(ExportConfig {
                    query: parse_targets(&a.targets)?,
                    listen: a.listen,
                    timeout: a.timeout,
                })
            }
            Sub::Serve(a) => Command::Serve(ServeConfig {
                addr: a.addr,
                port: a.port,
                workers: a.workers,
                reuseport: a.reuseport,
                backlog: a.backlog,
                stall: a.stall,
                json: a.json,
            }),
            Sub::Load(a) => {
                if a.size == 0 {
                    return Err(Error::Usage(
                        "invalid size '0': must be at least 1 byte".into(),
                    ));
                }
                let mode = match (a.mode, a.hold) {
                    (LoadModeArg::Hold, hold) => {
                        LoadMode::Hold(hold.unwrap_or(Duration::from_secs(10)))
                    }
                    (_, Some(_)) => {
                        return Err(Error::Usage("--hold applies to --mode hold only".into()))
                    }
                    (LoadModeArg::Echo, None) => LoadMode::Echo,
                    (LoadModeArg::Http, None) => LoadMode::Http,
                };
                Command::Load(LoadConfig {
                    connect: a.connect,
                    clients: a.clients,
                    rounds: a.rounds,
                    size: a.size,
                    timeout: a.timeout,
                    json: a.json,
                    mode,
                })
            }
            Sub::Demo(a) => Command::Demo(DemoConfig {
                clients: a.clients,
                rounds: a.rounds,
                size: a.size,
            }),
            Sub::Generate(g) => Command::Generate(match g.what {
                GenerateSub::Man { dir } => GenerateWhat::Man(dir),
                GenerateSub::Completions { shell } => GenerateWhat::Completions(shell),
                GenerateSub::Schema { dir } => GenerateWhat::Schema(dir),
            }),
        })
    }
}

/// The clap command, for man page and completion generation.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
