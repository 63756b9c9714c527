//! The tests' own reader of sockmap's JSON documents: the `inspect --json`
//! report, the `check --json` outcome and the `watch --json` sample line.
//!
//! Written by hand from the documented contract (schema/*.json and the doc
//! comments of the model types), never by importing sockmap's types: a
//! field sockmap adds, renames or drops by accident fails every test that
//! reads the document, so a contract change has to be made here too, on
//! purpose. How each field is read:
//!
//! - every struct is `deny_unknown_fields`: an unexpected field fails;
//! - a field sockmap always writes, possibly as `null`, is read with
//!   [`nullable`]: its absence fails (serde alone would read a missing
//!   `Option` as `None`);
//! - a field sockmap leaves out when it has no value is read with
//!   [`omitted_or`]: absent is `None`, an explicit `null` fails;
//! - closed sets of words are enums: an unknown word fails;
//! - text from other processes ([`RawText`]) is a string when it is valid
//!   UTF-8 and only then; otherwise an array of its bytes.
//!
//! [`report`], [`check`] and [`sample`] parse, and panic with the error
//! and the text they could not read.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A field that is always present, `null` when it has no value.
fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// A field that is left out when it has no value, never `null`
/// (use with `#[serde(default)]`).
fn omitted_or<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Parse `text` as a `T`; panic with the error and the text.
#[track_caller]
pub fn parse<T: DeserializeOwned>(what: &str, text: &[u8]) -> T {
    serde_json::from_slice(text).unwrap_or_else(|e| {
        panic!(
            "{what}: not the documented JSON ({e}):\n{}",
            String::from_utf8_lossy(text)
        )
    })
}

/// An `inspect --json` report.
#[track_caller]
pub fn report(text: &[u8]) -> Report {
    parse("inspect --json", text)
}

/// A `check --json` outcome.
#[track_caller]
pub fn check(text: &[u8]) -> CheckOutcome {
    parse("check --json", text)
}

/// One `watch --json` line.
#[track_caller]
pub fn sample(line: &str) -> Sample {
    parse("a watch --json line", line.as_bytes())
}

// ---------------------------------------------------------------- inspect

/// `sockmap inspect --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: u32,
    pub query: String,
    pub host: HostInfo,
    pub sockets: Vec<Socket>,
    pub groups: Vec<Group>,
    pub warnings: Vec<Warning>,
    /// How the holders were found; left out when no holder scan ran.
    #[serde(default, deserialize_with = "omitted_or")]
    pub scan: Option<Scan>,
}

impl Report {
    /// The socket with this inode (panics, showing the report, if none).
    #[track_caller]
    pub fn socket(&self, inode: u64) -> &Socket {
        self.sockets
            .iter()
            .find(|s| s.inode == inode)
            .unwrap_or_else(|| panic!("inode {inode} not in {self:#?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInfo {
    #[serde(deserialize_with = "nullable")]
    pub somaxconn: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub tcp_max_syn_backlog: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub syncookies: Option<u32>,
}

/// One socket of the report (`sockets[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Socket {
    pub inode: u64,
    pub cookie: u64,
    pub proto: Proto,
    pub sock_type: SockType,
    pub family: Family,
    pub state: TcpState,
    #[serde(deserialize_with = "nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub remote_addr: Option<IpAddr>,
    #[serde(deserialize_with = "nullable")]
    pub remote_port: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub path: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub path_status: Option<PathStatus>,
    #[serde(deserialize_with = "nullable")]
    pub vfs: Option<Vfs>,
    #[serde(deserialize_with = "nullable")]
    pub peer: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub uid: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub accept_queue: Option<AcceptQueue>,
    #[serde(deserialize_with = "nullable")]
    pub syn_queue: Option<SynQueue>,
    #[serde(deserialize_with = "nullable")]
    pub recv_q: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub send_q: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub drops: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub rcvbuf: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub reuseport: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub backlog_clamped: Option<bool>,
    pub holders: Vec<Holder>,
    pub waiters: Vec<Waiter>,
}

impl Socket {
    /// The distinct pids holding it.
    pub fn holder_pids(&self) -> BTreeSet<u32> {
        self.holders.iter().map(|h| h.pid).collect()
    }

    /// The holder with this pid (panics, showing the socket, if none).
    #[track_caller]
    pub fn holder(&self, pid: u32) -> &Holder {
        self.holders
            .iter()
            .find(|h| h.pid == pid)
            .unwrap_or_else(|| panic!("pid {pid} is not a holder of {self:#?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptQueue {
    pub depth: u32,
    pub backlog: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynQueue {
    pub depth: u32,
    pub scope: SynScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynScope {
    Socket,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vfs {
    pub ino: u64,
    pub dev: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathStatus {
    Bound,
    Unlinked,
    Replaced,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
    Unknown,
}

/// A TCP state as `ss` names it (SYN_RECV covers the kernel's
/// NEW_SYN_RECV), or `UNKNOWN(n)` with the kernel's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Unknown(u8),
}

impl TryFrom<String> for TcpState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        use TcpState::*;
        Ok(match s.as_str() {
            "ESTABLISHED" => Established,
            "SYN_SENT" => SynSent,
            "SYN_RECV" => SynRecv,
            "FIN_WAIT1" => FinWait1,
            "FIN_WAIT2" => FinWait2,
            "TIME_WAIT" => TimeWait,
            "CLOSE" => Close,
            "CLOSE_WAIT" => CloseWait,
            "LAST_ACK" => LastAck,
            "LISTEN" => Listen,
            "CLOSING" => Closing,
            other => other
                .strip_prefix("UNKNOWN(")
                .and_then(|n| n.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
                .map(Unknown)
                .ok_or_else(|| format!("unknown TCP state {other:?}"))?,
        })
    }
}

/// One (process, fd) holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    pub pid: u32,
    #[serde(deserialize_with = "nullable")]
    pub ppid: Option<u32>,
    pub comm: RawText,
    #[serde(deserialize_with = "nullable")]
    pub uid: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub user: Option<String>,
    pub fd: u32,
    #[serde(deserialize_with = "nullable")]
    pub state: Option<ProcessState>,
    #[serde(deserialize_with = "nullable")]
    pub cmdline: Option<Vec<RawText>>,
}

/// A process state from /proc/PID/stat, by name, or the kernel's letter
/// for a state without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ProcessState {
    Running,
    Sleeping,
    DiskSleep,
    Stopped,
    Traced,
    Zombie,
    Dead,
    Idle,
    Other(char),
}

impl TryFrom<String> for ProcessState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        use ProcessState::*;
        Ok(match s.as_str() {
            "running" => Running,
            "sleeping" => Sleeping,
            "disk-sleep" => DiskSleep,
            "stopped" => Stopped,
            "traced" => Traced,
            "zombie" => Zombie,
            "dead" => Dead,
            "idle" => Idle,
            other => {
                let mut chars = other.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Other(c),
                    _ => return Err(format!("unknown process state {other:?}")),
                }
            }
        })
    }
}

/// A thread blocked waiting for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiter {
    pub pid: u32,
    pub tid: u32,
    pub how: WaitHow,
    pub fd: u32,
    pub exclusive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitHow {
    Accept,
    Epoll,
    Poll,
    Select,
}

/// The listening sockets on one (proto, address, port) or unix path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub proto: Proto,
    #[serde(deserialize_with = "nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub path: Option<String>,
    pub kind: GroupKind,
    pub inodes: Vec<u64>,
    pub holders: u64,
    pub holders_complete: bool,
    pub verdict: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    Single,
    Shared,
    Reuseport,
}

/// How the holders were found (`scan`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub method: ScanMethod,
    pub duration_ms: f64,
    #[serde(default, deserialize_with = "omitted_or")]
    pub load_ms: Option<f64>,
    #[serde(default, deserialize_with = "omitted_or")]
    pub fallback_reason: Option<FallbackReason>,
    #[serde(default, deserialize_with = "omitted_or")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScanMethod {
    BpfTask,
    BpfTaskFile,
    Proc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackReason {
    Disabled,
    NotPermitted,
    NoBtf,
    PidNamespace,
    LoadFailed,
    ScanFailed,
}

// ------------------------------------------------------------ warnings

/// Something that could not be seen (report, check and sample alike).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    pub kind: WarningKind,
    pub count: u64,
    #[serde(default, deserialize_with = "omitted_or")]
    pub pid: Option<u32>,
    #[serde(default, deserialize_with = "omitted_or")]
    pub detail: Option<String>,
    pub message: String,
    #[serde(default, deserialize_with = "omitted_or")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    ProcessesUnreadable,
    ProcessesPartlyReadable,
    ProcHidden,
    NoSuchProcess,
    PidNotVisible,
    OtherNetns,
    Ipv6Unavailable,
    SynQueueUnmeasured,
    UdpUnavailable,
    UnixUnavailable,
    WaitersUnreadable,
}

// ---------------------------------------------------------------- check

/// `sockmap check --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutcome {
    pub schema: u32,
    pub ok: bool,
    pub status: Status,
    pub target: String,
    pub assertions: Vec<Assertion>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub name: String,
    pub ok: bool,
    pub status: Status,
    pub expected: String,
    pub actual: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Fail,
}

// ---------------------------------------------------------------- watch

/// One `sockmap watch --json` line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub schema: u32,
    #[serde(rename = "type")]
    pub kind: SampleType,
    pub seq: u64,
    pub time: f64,
    pub elapsed_ms: u64,
    pub sockets: Vec<SampleSocket>,
    pub counters: ListenCounters,
    pub udp_counters: UdpCounters,
    pub warnings: Vec<Warning>,
}

/// The line's `type`: a sample is the only kind of line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleType {
    Sample,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSocket {
    pub inode: u64,
    pub proto: Proto,
    pub state: TcpState,
    #[serde(deserialize_with = "nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub path: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub accept_queue: Option<AcceptQueue>,
    #[serde(deserialize_with = "nullable")]
    pub syn_queue: Option<SynQueue>,
    #[serde(deserialize_with = "nullable")]
    pub recv_q: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub rcvbuf: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub drops: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub drops_delta: Option<u32>,
    pub holders: u64,
    pub commands: Vec<RawText>,
    pub waiters: u64,
}

/// TcpExt listen counters, change since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenCounters {
    #[serde(deserialize_with = "nullable")]
    pub listen_overflows: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub listen_drops: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub req_q_full_drop: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub req_q_full_do_cookies: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub syncookies_sent: Option<u64>,
}

/// Host UDP receive counters, change since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpCounters {
    #[serde(deserialize_with = "nullable")]
    pub in_errors: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub rcvbuf_errors: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub in6_errors: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub rcvbuf6_errors: Option<u64>,
}

// ------------------------------------------------------------- raw text

/// Text from another process (comm, cmdline arguments), exact: a JSON
/// string when its bytes are valid UTF-8, else an array of byte values.
/// An array whose bytes are valid UTF-8 breaks that rule and fails.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTextShape")]
pub enum RawText {
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTextShape {
    Text(String),
    Bytes(Vec<u8>),
}

impl TryFrom<RawTextShape> for RawText {
    type Error = String;

    fn try_from(shape: RawTextShape) -> Result<Self, String> {
        match shape {
            RawTextShape::Text(s) => Ok(RawText::Text(s)),
            RawTextShape::Bytes(b) if std::str::from_utf8(&b).is_ok() => Err(format!(
                "{b:?} is valid UTF-8: the contract writes it as a string"
            )),
            RawTextShape::Bytes(b) => Ok(RawText::Bytes(b)),
        }
    }
}

impl RawText {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RawText::Text(s) => s.as_bytes(),
            RawText::Bytes(b) => b,
        }
    }

    /// The text, when it was a JSON string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RawText::Text(s) => Some(s),
            RawText::Bytes(_) => None,
        }
    }
}

impl PartialEq<&str> for RawText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl fmt::Debug for RawText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawText::Text(s) => fmt::Debug::fmt(s, f),
            RawText::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
        }
    }
}
