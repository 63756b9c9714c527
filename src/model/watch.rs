//! One `watch` sample: the queue figures of the watched sockets at one
//! instant and the host counters' change since the previous sample. One
//! JSON line per sample (`schema` as the report's, `type: "sample"`).

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Serialize;

use super::report::{AcceptQueue, SynQueue};
use super::{Inode, ListenCounters, Proto, RawText, TcpState, UdpCounters, UnixName, Warning};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Sample {
    pub schema: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// 1, 2, 3, ...
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// Milliseconds since the first sample.
    pub elapsed_ms: u64,
    pub sockets: Vec<SampleSocket>,
    /// Change of the TcpExt listen counters since the previous sample
    /// (all zero in the first sample).
    pub counters: ListenCounters,
    /// Change of the host's UDP receive counters since the previous sample
    /// (all zero in the first sample).
    pub udp_counters: UdpCounters,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SampleSocket {
    pub inode: Inode,
    /// The nsfs inode of the network namespace the socket lives in.
    pub netns: u64,
    pub proto: Proto,
    pub state: TcpState,
    /// TCP and UDP; null for unix.
    pub local_addr: Option<IpAddr>,
    pub local_port: Option<u16>,
    /// Unix: the path or `@name`.
    pub path: Option<String>,
    #[serde(skip)]
    pub unix_name: Option<UnixName>,
    pub accept_queue: Option<AcceptQueue>,
    pub syn_queue: Option<SynQueue>,
    /// UDP (and other non-listeners): bytes in the receive queue.
    pub recv_q: Option<u32>,
    /// UDP: the receive buffer limit in bytes.
    pub rcvbuf: Option<u32>,
    /// `sk_drops` so far (cumulative, from the socket).
    pub drops: Option<u32>,
    /// Change of `drops` since the previous sample (null in the first
    /// sample and for a socket that was not in the previous one).
    pub drops_delta: Option<u32>,
    /// Distinct processes holding the socket (as of the last /proc scan).
    pub holders: usize,
    /// The holding processes' names (comm), distinct, sorted.
    pub commands: Vec<RawText>,
    /// Threads blocked on it right now.
    pub waiters: usize,
}
