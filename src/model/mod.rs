//! Plain data: what `collect` saw (`Snapshot`) and what the user is shown
//! (`report::Report`, the JSON contract). No I/O, no formatting beyond
//! `Display` of enums.

pub mod netns;
pub mod report;
pub mod warning;
pub mod watch;

pub use warning::{Warning, WarningKind};

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Serialize, Serializer};

/// A socket inode: `socket:[INODE]` in /proc/PID/fd, `idiag_inode` in sock_diag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Inode(pub u64);

impl fmt::Display for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    NewSynRecv,
    Unknown(u8),
}

impl TcpState {
    pub fn from_kernel(n: u8) -> Self {
        use TcpState::*;
        match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            n => Unknown(n),
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TcpState::*;
        let s = match self {
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv | NewSynRecv => "SYN_RECV",
            FinWait1 => "FIN_WAIT1",
            FinWait2 => "FIN_WAIT2",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            Closing => "CLOSING",
            Unknown(n) => return write!(f, "UNKNOWN({n})"),
        };
        f.write_str(s)
    }
}

/// In JSON a state is its name; a state this build does not know is
/// `UNKNOWN(n)` with the kernel's number.
impl JsonSchema for TcpState {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TcpState".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The TCP state as ss names it (SYN_RECV covers NEW_SYN_RECV); UNKNOWN(n) for a state this build does not know.",
            "type": "string",
            "pattern": "^(ESTABLISHED|SYN_SENT|SYN_RECV|FIN_WAIT1|FIN_WAIT2|TIME_WAIT|CLOSE|CLOSE_WAIT|LAST_ACK|LISTEN|CLOSING|UNKNOWN\\([0-9]+\\))$"
        })
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One TCP socket as sock_diag reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub inode: Inode,
    pub cookie: u64,
    pub family: Family,
    pub state: TcpState,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// Bound device (SO_BINDTODEVICE), 0 for none.
    pub ifindex: u32,
    pub uid: u32,
    /// LISTEN: accept-queue depth (`sk_ack_backlog`); else bytes unread.
    pub rqueue: u32,
    /// LISTEN: backlog (`sk_max_ack_backlog`); else bytes unsent.
    pub wqueue: u32,
    /// `sk_drops` (SK_MEMINFO_DROPS), when the kernel sent it.
    pub drops: Option<u32>,
}

impl Socket {
    pub fn is_listener(&self) -> bool {
        self.state == TcpState::Listen
    }
}

/// A request socket (SYN_RECV, not yet a full socket): the SYN queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSock {
    /// The nsfs inode of the namespace whose dump returned it (0: own).
    pub netns: u64,
    pub family: Family,
    pub local_addr: IpAddr,
    pub local_port: u16,
}

/// One (process, fd) that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Holder {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub comm: String,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub fd: u32,
    /// The holder's own network namespace (nsfs inode), only when it
    /// differs from its socket's (the socket was created, then the
    /// process moved, or the fd was passed across).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
}

/// How a thread waits for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitHow {
    Accept,
    Epoll,
    Poll,
    Select,
}

impl fmt::Display for WaitHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitHow::Accept => "accept",
            WaitHow::Epoll => "epoll",
            WaitHow::Poll => "poll",
            WaitHow::Select => "select",
        })
    }
}

/// A thread blocked right now waiting for a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Waiter {
    pub pid: u32,
    pub tid: u32,
    pub how: WaitHow,
    /// The fd the thread waits on: the socket's fd (accept/poll/select) or the epoll fd.
    pub fd: u32,
}

/// Host-wide settings that shape every listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HostInfo {
    pub somaxconn: Option<u32>,
    pub tcp_max_syn_backlog: Option<u32>,
    pub syncookies: Option<u32>,
}

/// Everything one collection pass saw. `analyze` turns it into a `Report`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The sockets that match the query (already filtered).
    pub sockets: Vec<Socket>,
    /// Every (pid, fd) holding each inode — many per inode is the point.
    pub holders: HashMap<Inode, Vec<Holder>>,
    /// Request sockets on the listeners' ports (`None`: SYN queue not measured).
    pub request_socks: Option<Vec<RequestSock>>,
    pub waiters: HashMap<Inode, Vec<Waiter>>,
    /// SO_REUSEPORT read passively (never by touching the socket), where
    /// a source could; `analyze` infers it for groups otherwise.
    pub reuseport: HashMap<Inode, bool>,
    pub host: HostInfo,
    /// What could not be seen.
    pub warnings: Vec<Warning>,
    /// Which namespace each socket and holder is in, and their labels.
    pub netns: netns::NetnsMap,
    /// Listeners held by a forwarder (docker-proxy): where it sends clients.
    pub forwards: HashMap<Inode, netns::Forward>,
}

/// Host-wide listen-queue counters (TcpExt in /proc/net/netstat). `None`
/// when this kernel does not have the counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ListenCounters {
    /// Connections that found the accept queue full (ListenOverflows).
    pub listen_overflows: Option<u64>,
    /// Every drop at a listener, overflows included (ListenDrops).
    pub listen_drops: Option<u64>,
    /// SYNs dropped because the SYN queue was full, no syncookies (TCPReqQFullDrop).
    pub req_q_full_drop: Option<u64>,
    /// SYN queue full, answered with a syncookie (TCPReqQFullDoCookies).
    pub req_q_full_do_cookies: Option<u64>,
    pub syncookies_sent: Option<u64>,
}

impl ListenCounters {
    /// `self - earlier`, per counter (a counter that went backwards, e.g.
    /// after a namespace change, gives 0).
    pub fn delta(&self, earlier: &ListenCounters) -> ListenCounters {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        ListenCounters {
            listen_overflows: d(self.listen_overflows, earlier.listen_overflows),
            listen_drops: d(self.listen_drops, earlier.listen_drops),
            req_q_full_drop: d(self.req_q_full_drop, earlier.req_q_full_drop),
            req_q_full_do_cookies: d(self.req_q_full_do_cookies, earlier.req_q_full_do_cookies),
            syncookies_sent: d(self.syncookies_sent, earlier.syncookies_sent),
        }
    }
}
