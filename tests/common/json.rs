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
//! and the text they could not read. The types of each document are in
//! json/inspect.rs, json/outcome.rs (check) and json/watch.rs; what they
//! share is here.
#![allow(dead_code)]

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

mod inspect;
mod outcome;
mod watch;

pub use inspect::*;
pub use outcome::*;
pub use watch::*;

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

// ---------------------------------------------------------------- shared

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
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
    NetnsNotInspected,
    NetnsDumpFailed,
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
