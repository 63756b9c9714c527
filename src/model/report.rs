//! The report: the JSON contract (`schema`, see schema/inspect.json) and what the
//! table and plain renderers print. Dedicated serde types; a field change
//! here is a schema change.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Serialize;

use super::netns::{Forward, Netns};
use super::{
    Family, Holder, HostInfo, Inode, PathStatus, Proto, SockType, TcpState, UnixName, Vfs, Waiter,
    Warning,
};

/// 2: `warnings[]` became objects (`kind`, `count`, `message`, ...).
pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Report {
    pub schema: u32,
    /// What was asked, e.g. ":8000" or "every listening socket".
    pub query: String,
    pub host: HostInfo,
    pub sockets: Vec<SocketReport>,
    pub groups: Vec<Group>,
    pub warnings: Vec<Warning>,
    /// The network namespaces this report looked into, ours first.
    pub namespaces: Vec<Netns>,
    /// How the holders were found (absent when not known, e.g. replayed
    /// from an older recording).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<super::scan::ScanReport>,
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
    pub proto: Proto,
    /// stream (TCP, unix), dgram (UDP, unix) or seqpacket (unix).
    pub sock_type: SockType,
    pub family: Family,
    pub state: TcpState,
    /// TCP and UDP only (null for unix sockets).
    pub local_addr: Option<IpAddr>,
    pub local_port: Option<u16>,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: Option<u16>,
    /// Unix sockets: the bound path, or `@name` for an abstract name;
    /// null for an unnamed socket (and for TCP/UDP). Invalid UTF-8 is
    /// replaced; text output shows the exact bytes, escaped.
    pub path: Option<String>,
    /// The exact name, for text renderers (they escape it).
    #[serde(skip)]
    pub unix_name: Option<UnixName>,
    /// Unix sockets bound to a path: whether the path still leads to this
    /// socket (`bound`), is gone (`unlinked`), names another file
    /// (`replaced`), or could not be checked (`unknown`).
    pub path_status: Option<PathStatus>,
    /// Unix sockets bound to a path: the socket file's inode and device.
    pub vfs: Option<Vfs>,
    /// Connected unix sockets: the peer socket's inode.
    pub peer: Option<Inode>,
    /// The socket's owner (null when the kernel did not report it).
    pub uid: Option<u32>,
    /// LISTEN sockets (TCP and unix) only.
    pub accept_queue: Option<AcceptQueue>,
    /// LISTEN sockets only, when measured.
    pub syn_queue: Option<SynQueue>,
    /// Non-LISTEN sockets only. TCP: bytes not yet read / not yet
    /// acknowledged. UDP: memory held by datagrams waiting to be read /
    /// being sent, in bytes (skb truesize, what `ss` shows as Recv-Q and
    /// Send-Q). Unix: bytes waiting to be read / sent not yet read.
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
    /// `sk_drops`: for a TCP listener mostly connections dropped on a full
    /// queue; for UDP, datagrams dropped (receive buffer full, bad
    /// checksum, filter).
    pub drops: Option<u32>,
    /// `sk_rcvbuf` (SO_RCVBUF as the kernel holds it, doubled): the limit
    /// of a UDP socket's receive queue.
    pub rcvbuf: Option<u32>,
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

impl SocketReport {
    /// Takes new work: TCP/unix LISTEN, or UDP unconnected (CLOSE) on a port.
    pub fn is_listener(&self) -> bool {
        match self.proto {
            Proto::Tcp | Proto::Unix => self.state == TcpState::Listen,
            Proto::Udp => self.state == TcpState::Close && self.local_port.is_some_and(|p| p != 0),
        }
    }
}

/// The listening sockets on one local (protocol, address, port), or one
/// unix listener, and what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Group {
    /// The nsfs inode of the namespace: groups never span namespaces.
    pub netns: u64,
    pub proto: Proto,
    /// TCP and UDP; null for unix.
    pub local_addr: Option<IpAddr>,
    pub local_port: Option<u16>,
    /// Unix: the listener's path or `@name` (null for TCP and UDP).
    pub path: Option<String>,
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
