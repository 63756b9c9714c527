//! The JSON documents of the bundled experiment: `serve --json`'s ready
//! line and its closing report, and `load --json`'s report. One set of
//! types for both directions: serve and load write them, `demo` and the
//! tests read them back, and `sockmap generate schema` derives their JSON
//! Schemas (descriptions from these doc comments). Reading is strict: an
//! unknown field, a missing one or an unknown name is an error, so a
//! change to a document is a deliberate act. Plain data: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A field that is always written, `null` when it has no value: reading
/// requires it (serde alone reads a missing `Option` as `None`). The
/// schema is unchanged: schemars lists an `Option` field as required.
fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

// ---- sockmap serve --json -------------------------------------------------

/// The tag of the ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyEvent {
    Ready,
}

/// `sockmap serve --json`'s first line, printed once every worker listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeReady {
    /// Always `ready`: tells this line from the report that ends the output.
    pub event: ReadyEvent,
    /// The address listened on (`--addr`), e.g. "127.0.0.1" or "::1".
    pub addr: String,
    /// The port listened on: the one the kernel picked when `--port 0`.
    pub port: u16,
    /// How the workers share the port.
    pub mode: ServeMode,
    /// The backlog passed to listen() (the kernel clamps it to
    /// net.core.somaxconn).
    pub backlog: i32,
    /// `--stall`: no worker ever calls accept().
    pub stall: bool,
    /// Every worker: the parent first, then the children in fork order.
    pub pids: Vec<u32>,
}

/// How the workers of `sockmap serve` share its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServeMode {
    /// One listening socket, inherited over fork(): one accept queue.
    Shared,
    /// SO_REUSEPORT: each worker opens its own socket, with its own queue.
    Reuseport,
}

/// The tag of the closing report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DoneEvent {
    Done,
}

/// `sockmap serve --json`'s last line, printed after SIGINT/SIGTERM once
/// every worker is stopped and reaped: how the connections were spread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeReport {
    /// Always `done`.
    pub event: DoneEvent,
    /// Connections accepted, summed over the workers whose count is known.
    pub total: u64,
    /// Every worker, in the order of the ready line's `pids`.
    pub workers: Vec<WorkerCount>,
}

/// One worker's share of the accepted connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerCount {
    pub pid: u32,
    /// Connections this worker accepted; null when it died before it could
    /// report its count.
    #[serde(deserialize_with = "nullable")]
    pub accepted: Option<u64>,
}

// ---- sockmap load --json --------------------------------------------------

/// `sockmap load --json`'s report, printed once every client is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadReport {
    /// The version of this document: 1.
    pub schema: u32,
    /// The server loaded (`--connect`), as address:port.
    pub connect: String,
    /// What each client did.
    pub mode: LoadModeName,
    /// `hold`: seconds each connection was to be held; else null.
    #[serde(deserialize_with = "nullable")]
    pub hold_seconds: Option<f64>,
    /// Clients started, all at once.
    pub clients: u64,
    /// Rounds per client (1 in `hold` mode: there is nothing to repeat).
    pub rounds: u32,
    /// Bytes per round.
    pub size: u64,
    /// Echo: bytes echoed back and verified (clients × rounds × size when
    /// nothing failed). Hold and http: bytes received.
    pub bytes: u64,
    /// Bytes sent, over every client.
    pub bytes_sent: u64,
    /// Clients that failed, whatever the reason.
    pub failed: u64,
    /// Failed clients by the reason they failed.
    pub failures: Failures,
    /// The first failure of each kind that happened, as text.
    pub first_errors: Vec<FirstError>,
    /// Wall time from the first connect to the last client done.
    pub seconds: f64,
    /// `bytes` per second, in MiB.
    pub throughput_mib_s: f64,
    /// From connect() until the client's I/O thread saw the handshake
    /// done (SYN retransmits to a full queue show up here).
    pub connect_ms: Percentiles,
    /// Per round, from the first byte sent to the last byte back. A
    /// client's first round includes its wait in the server's accept
    /// queue, so p99 shows how long the queue made clients wait.
    pub round_trip_ms: Percentiles,
    /// I/O threads used.
    pub threads: usize,
}

/// What each `load` client did once connected (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadModeName {
    /// Send `size` bytes per round and verify the echo.
    Echo,
    /// Send nothing; keep the connection open for `hold_seconds`.
    Hold,
    /// `GET / HTTP/1.1` per round, one response read per round.
    Http,
}

/// Failed clients by kind; they add up to `failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failures {
    /// connect() failed (refused, unreachable, out of ports or fds...).
    pub connect: u64,
    /// The server closed the connection too early: before every byte came
    /// back (echo), before the hold was over (hold), in or before a
    /// response (http).
    pub eof: u64,
    /// The connection was reset (ECONNRESET, EPIPE, ECONNABORTED).
    pub reset: u64,
    /// No progress for the whole `--timeout`.
    pub timeout: u64,
    /// `echo`: a byte came back different from the one sent.
    pub mismatch: u64,
    /// Any other socket error.
    pub other: u64,
    /// `http`: responses with a status other than 2xx/3xx.
    pub status: u64,
    /// `http`: replies that are not well-formed HTTP/1.x responses.
    pub protocol: u64,
}

/// The first failure of one kind, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstError {
    pub kind: FailKind,
    /// What happened, with where the client was: "client 7: the server
    /// closed the connection (round 2 of 10, ...)".
    pub message: String,
}

/// Why a client failed; each kind is counted separately (`failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailKind {
    /// connect() failed (refused, unreachable, out of ports or fds...).
    Connect,
    /// The server closed the connection too early: before every byte came
    /// back (echo), before the hold was over (hold), in or before a
    /// response (http).
    Eof,
    /// The connection was reset (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// No progress for the whole `--timeout`.
    Timeout,
    /// `echo`: a byte came back different from the one sent.
    Mismatch,
    /// Any other socket error.
    Other,
    /// `http`: a response whose status is not 2xx or 3xx.
    Status,
    /// `http`: what came back is not a well-formed HTTP/1.x response.
    Protocol,
}

/// How many kinds of failure there are.
pub const FAIL_KINDS: usize = 8;

impl FailKind {
    /// Every kind, in the order of [`Failures`]' fields; `kind as usize`
    /// indexes it.
    pub const ALL: [FailKind; FAIL_KINDS] = [
        FailKind::Connect,
        FailKind::Eof,
        FailKind::Reset,
        FailKind::Timeout,
        FailKind::Mismatch,
        FailKind::Other,
        FailKind::Status,
        FailKind::Protocol,
    ];

    /// The name the JSON uses, for the text report.
    pub fn name(self) -> &'static str {
        match self {
            FailKind::Connect => "connect",
            FailKind::Eof => "eof",
            FailKind::Reset => "reset",
            FailKind::Timeout => "timeout",
            FailKind::Mismatch => "mismatch",
            FailKind::Other => "other",
            FailKind::Status => "status",
            FailKind::Protocol => "protocol",
        }
    }
}

impl Failures {
    /// The count of one kind.
    pub fn of(&self, kind: FailKind) -> u64 {
        match kind {
            FailKind::Connect => self.connect,
            FailKind::Eof => self.eof,
            FailKind::Reset => self.reset,
            FailKind::Timeout => self.timeout,
            FailKind::Mismatch => self.mismatch,
            FailKind::Other => self.other,
            FailKind::Status => self.status,
            FailKind::Protocol => self.protocol,
        }
    }

    /// From counts indexed like [`FailKind::ALL`].
    pub fn from_counts(counts: &[u64; FAIL_KINDS]) -> Failures {
        let count = |k: FailKind| counts[k as usize];
        Failures {
            connect: count(FailKind::Connect),
            eof: count(FailKind::Eof),
            reset: count(FailKind::Reset),
            timeout: count(FailKind::Timeout),
            mismatch: count(FailKind::Mismatch),
            other: count(FailKind::Other),
            status: count(FailKind::Status),
            protocol: count(FailKind::Protocol),
        }
    }
}

/// Milliseconds, by nearest rank; null when there was no sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    #[serde(deserialize_with = "nullable")]
    pub p50: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p99: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_kind_names_are_the_json_names() {
        for k in FailKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
        // ALL is in declaration order, so `kind as usize` indexes it.
        for (i, k) in FailKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn failures_by_kind_round_trip() {
        let mut counts = [0; FAIL_KINDS];
        for (i, n) in counts.iter_mut().enumerate() {
            *n = 10 + i as u64;
        }
        let f = Failures::from_counts(&counts);
        assert_eq!(f.protocol, 17);
        assert_eq!(f.connect, 10);
        for k in FailKind::ALL {
            assert_eq!(f.of(k), counts[k as usize]);
        }
    }

    #[test]
    fn reading_is_strict() {
        let ok = r#"{"event":"done","total":1,"workers":[{"pid":5,"accepted":null}]}"#;
        let r: ServeReport = serde_json::from_str(ok).unwrap();
        assert_eq!(r.workers[0].accepted, None);
        for bad in [
            // `accepted` is always written, null when unknown.
            r#"{"event":"done","total":1,"workers":[{"pid":5}]}"#,
            r#"{"event":"done","total":1,"workers":[],"extra":1}"#,
            r#"{"event":"ready","total":1,"workers":[]}"#,
        ] {
            assert!(serde_json::from_str::<ServeReport>(bad).is_err(), "{bad}");
        }
        let ready = r#"{"event":"ready","addr":"::1","port":1,"mode":"forked","backlog":1,"stall":false,"pids":[]}"#;
        assert!(serde_json::from_str::<ServeReady>(ready).is_err());
    }
}
