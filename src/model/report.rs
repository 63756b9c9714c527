//! The report: the JSON contract (`schema: 1`, DESIGN.md §1) and what the
//! table and plain renderers print. Dedicated serde types; a field change
//! here is a schema change.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Serialize;

use super::netns::{Forward, Netns};
use super::{Family, Holder, HostInfo, Inode, TcpState, Waiter, Warning};

/// 2: `warnings[]` became objects (`kind`, `count`, `message`, ...).
pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Report {
    pub schema: u32,
    /// What was asked, e.g. ":8000" or "every listening TCP socket".
    pub query: String,
    pub host: HostInfo,
    pub sockets: Vec<SocketReport>,
    pub groups: Vec<Group>,
    pub warnings: Vec<Warning>,
    /// The network namespaces this report looked into, ours first.
    pub namespaces: Vec<Netns>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AcceptQueue {
    /// Connections waiting to be accepted (`sk_ack_backlog`).
    pub depth: u32,
    /// The listen() backlog after the somaxconn clamp (`sk_max_ack_backlog`).
    pub backlog: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SynQueue {
    /// Request sockets (SYN_RECV) whose local address/port this listener covers.
    pub depth: u32,
    /// `socket`: counted for this listener alone; `group`: for the whole
    /// SO_REUSEPORT group on this address:port (request sockets carry no
    /// reference to their listener, so the count cannot be split). Either
    /// way, connections answered with syncookies are not counted.
    pub scope: SynScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SynScope {
    Socket,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SocketReport {
    pub inode: Inode,
    pub cookie: u64,
    pub proto: &'static str,
    pub family: Family,
    pub state: TcpState,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: Option<u16>,
    pub uid: u32,
    /// LISTEN sockets only.
    pub accept_queue: Option<AcceptQueue>,
    /// LISTEN sockets only, when measured.
    pub syn_queue: Option<SynQueue>,
    /// Bytes not yet read / not yet acknowledged (non-LISTEN sockets only).
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
    /// `sk_drops`: for a listener mostly connections dropped on a full queue.
    pub drops: Option<u32>,
    /// SO_REUSEPORT: read from the socket when possible, else inferred for
    /// groups of two or more listeners, else null.
    pub reuseport: Option<bool>,
    /// The backlog equals net.core.somaxconn: listen() may have asked for more.
    pub backlog_clamped: Option<bool>,
    pub holders: Vec<Holder>,
    pub waiters: Vec<Waiter>,
    /// The network namespace the socket lives in.
    pub netns: Netns,
    /// Set when the socket is held by a forwarder (docker-proxy): where
    /// it connects each client on to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// One socket, at most one holding process.
    Single,
    /// One socket held by several processes (fork): one accept queue.
    Shared,
    /// Several listening sockets on one address:port (SO_REUSEPORT).
    Reuseport,
}

/// The listening sockets on one local address:port, and what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Group {
    /// The nsfs inode of the namespace: groups never span namespaces.
    pub netns: u64,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub kind: GroupKind,
    pub inodes: Vec<Inode>,
    /// Distinct processes holding any of the group's sockets.
    pub holders: usize,
    /// False when some processes could not be read: `holders` is then a
    /// lower bound.
    pub holders_complete: bool,
    /// The one plain sentence the table ends with.
    pub verdict: String,
}
