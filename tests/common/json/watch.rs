//! One `watch --json` line, as the tests read it (see json.rs for how
//! fields are read).

use std::net::IpAddr;

use serde::Deserialize;

use super::{AcceptQueue, Proto, RawText, SynQueue, TcpState, Warning};

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
    /// The nsfs inode of the socket's namespace.
    pub netns: u64,
    pub proto: Proto,
    pub state: TcpState,
    #[serde(deserialize_with = "super::nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "super::nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "super::nullable")]
    pub path: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub accept_queue: Option<AcceptQueue>,
    #[serde(deserialize_with = "super::nullable")]
    pub syn_queue: Option<SynQueue>,
    #[serde(deserialize_with = "super::nullable")]
    pub recv_q: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub rcvbuf: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub drops: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub drops_delta: Option<u32>,
    pub holders: u64,
    pub commands: Vec<RawText>,
    pub waiters: u64,
}

/// TcpExt listen counters, change since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenCounters {
    #[serde(deserialize_with = "super::nullable")]
    pub listen_overflows: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub listen_drops: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub req_q_full_drop: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub req_q_full_do_cookies: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub syncookies_sent: Option<u64>,
}

/// Host UDP receive counters, change since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpCounters {
    #[serde(deserialize_with = "super::nullable")]
    pub in_errors: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub rcvbuf_errors: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub in6_errors: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub rcvbuf6_errors: Option<u64>,
}
