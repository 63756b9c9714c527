//! Plain data: what `collect` saw (`Snapshot`) and what the user is shown
//! (`report::Report`, the JSON contract). No I/O, no formatting beyond
//! `Display` of enums.

pub mod check;
mod de;
pub mod netns;
pub mod recording;
pub mod report;
pub mod scan;
pub mod text;
pub mod warning;
pub mod watch;

pub use text::RawText;
pub use warning::{Warning, WarningKind};

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// An address and port as sockmap prints them everywhere (headers,
/// verdicts, check lines, targets): `127.0.0.1:8000`, `[::1]:8000`, and the
/// wildcards as `*:8000` (IPv4) and `[::]:8000` (IPv6), both of which are
/// also accepted as targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub IpAddr, pub u16);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Endpoint(addr, port) = *self;
        match addr {
            IpAddr::V4(a) if a.is_unspecified() => write!(f, "*:{port}"),
            IpAddr::V4(a) => write!(f, "{a}:{port}"),
            IpAddr::V6(a) => write!(f, "[{a}]:{port}"),
        }
    }
}

/// A socket inode: `socket:[INODE]` in /proc/PID/fd, `idiag_inode` in sock_diag.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Inode(pub u64);

impl fmt::Display for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

/// The transport a socket speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

impl Proto {
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Unix];
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Unix => "unix",
        })
    }
}

/// The socket type (`SOCK_STREAM`, ...): TCP is a stream, UDP datagrams;
/// a unix socket can be any of the three.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
    Unknown,
}

impl fmt::Display for SockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SockType::Stream => "stream",
            SockType::Dgram => "dgram",
            SockType::Seqpacket => "seqpacket",
            SockType::Unknown => "unknown",
        })
    }
}

/// A unix socket's address (`UNIX_DIAG_NAME`), as raw bytes: paths are
/// not necessarily UTF-8 and abstract names may hold any byte (in a
/// recording: `{"path": [bytes]}` or `{"abstract": [bytes]}`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UnixName {
    /// A filesystem path (`/run/php/fpm.sock`).
    Path(Vec<u8>),
    /// An abstract name (leading NUL in `sun_path`), without that NUL;
    /// shown as `@name`.
    Abstract(Vec<u8>),
}

impl UnixName {
    /// The name as people write it: the path, or `@` + the abstract name.
    /// Raw bytes: escape before a terminal sees them.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            UnixName::Path(p) => p.clone(),
            UnixName::Abstract(a) => {
                let mut v = Vec::with_capacity(a.len() + 1);
                v.push(b'@');
                v.extend_from_slice(a);
                v
            }
        }
    }

    /// The name as the kernel reports it in `sun_path`: the path, or a NUL
    /// and the abstract name.
    pub fn sun_path(&self) -> Vec<u8> {
        match self {
            UnixName::Path(p) => p.clone(),
            UnixName::Abstract(a) => {
                let mut v = Vec::with_capacity(a.len() + 1);
                v.push(0);
                v.extend_from_slice(a);
                v
            }
        }
    }

    /// The name as a string, invalid UTF-8 replaced (for JSON).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }
}

/// Shown escaped (`escape::bytes`): control bytes, bidi overrides and
/// invalid UTF-8 made visible, so a name another process chose cannot
/// drive the terminal.
impl fmt::Display for UnixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::escape::bytes(&self.to_bytes()))
    }
}

/// The file a unix socket was bound to (`UNIX_DIAG_VFS`): the inode and
/// device of the socket file as `stat(2)` reports them (`dev` in the
/// userspace `st_dev` encoding).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct Vfs {
    pub ino: u64,
    pub dev: u64,
}

/// Whether a unix listener's path still leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathStatus {
    /// `stat(path)` gives the socket's own inode and device.
    Bound,
    /// Nothing at the path any more: new clients get ENOENT.
    Unlinked,
    /// The path now names another file (a restarted server bound a new
    /// socket there): clients reach that one, not this socket.
    Replaced,
    /// The path could not be checked (permission, other mount namespace).
    Unknown,
}

/// What unix_diag adds for a unix socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnixInfo {
    pub sock_type: SockType,
    /// None: an unnamed socket (socketpair, or an unbound client).
    pub name: Option<UnixName>,
    /// The bound file, for path sockets that still have one.
    pub vfs: Option<Vfs>,
    /// The peer socket's inode (connected sockets), if asked for.
    pub peer: Option<Inode>,
    /// Listeners: the inodes of the client sockets waiting to be accepted
    /// (`UNIX_DIAG_ICONS`), when asked for.
    pub pending: Option<Vec<Inode>>,
    /// Filled in by the collector after a `stat` of the path.
    pub path_status: Option<PathStatus>,
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

/// One socket as sock_diag reported it: TCP or UDP (inet_diag) or unix
/// (unix_diag). Unix sockets use the TCP state numbers (LISTEN,
/// ESTABLISHED, CLOSE); UDP reports CLOSE for an unconnected socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Socket {
    pub inode: Inode,
    pub cookie: u64,
    pub proto: Proto,
    pub family: Family,
    pub state: TcpState,
    /// The inet endpoints; unspecified address and port 0 for unix sockets
    /// (their address is in `unix`).
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// Bound device (SO_BINDTODEVICE), 0 for none.
    pub ifindex: u32,
    /// The socket's owner; None when the kernel did not say (unix_diag
    /// before Linux 5.3).
    pub uid: Option<u32>,
    /// LISTEN (TCP and unix): accept-queue depth; UDP: receive-queue
    /// memory in bytes (what `ss` shows as Recv-Q); else bytes unread.
    pub rqueue: u32,
    /// LISTEN: backlog (`sk_max_ack_backlog`); else bytes unsent.
    pub wqueue: u32,
    /// `sk_drops` (SK_MEMINFO_DROPS), when the kernel sent it.
    pub drops: Option<u32>,
    /// `sk_rcvbuf` (SK_MEMINFO_RCVBUF), when the kernel sent it.
    pub rcvbuf: Option<u32>,
    /// Unix sockets only.
    pub unix: Option<UnixInfo>,
}

impl Socket {
    /// A socket that takes new work: a TCP or unix LISTEN socket, or an
    /// unconnected UDP socket (state CLOSE) bound to a port.
    pub fn is_listener(&self) -> bool {
        match self.proto {
            Proto::Tcp | Proto::Unix => self.state == TcpState::Listen,
            Proto::Udp => self.state == TcpState::Close && self.local_port != 0,
        }
    }

    /// A TCP LISTEN socket: the only kind with a SYN queue.
    pub fn is_tcp_listener(&self) -> bool {
        self.proto == Proto::Tcp && self.state == TcpState::Listen
    }
}

/// A request socket (SYN_RECV, not yet a full socket): the SYN queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequestSock {
    /// The nsfs inode of the namespace whose dump returned it (0: own).
    pub netns: u64,
    pub family: Family,
    pub local_addr: IpAddr,
    pub local_port: u16,
}

/// One (process, fd) that holds a socket. A process that exited between
/// the fd scan and the detail read is not a holder (collect drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Holder {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// The process name (`comm`), exact; empty when /proc/PID/stat could
    /// not be read (`state` is then null).
    pub comm: RawText,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub fd: u32,
    /// The holder's own network namespace (nsfs inode), only when it
    /// differs from its socket's (the socket was created, then the
    /// process moved, or the fd was passed across).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
    /// Process state when the details were read (`null`: unreadable).
    pub state: Option<ProcessState>,
    /// The command line, one element per argument, exact (`null`:
    /// unreadable; empty for kernel threads).
    pub cmdline: Option<Vec<RawText>>,
}

/// A process's (or thread's) scheduling state, the letter in
/// /proc/PID/stat. JSON: `running`, `sleeping`, `disk-sleep`, `stopped`,
/// `traced`, `zombie`, `dead`, `idle`, or the kernel's letter when it is
/// none of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessState {
    /// R
    Running,
    /// S: interruptible sleep, e.g. blocked in accept() or epoll_wait().
    Sleeping,
    /// D
    DiskSleep,
    /// T: stopped by a signal (SIGSTOP, SIGTSTP); nothing wakes it for a connection.
    Stopped,
    /// t: stopped by a debugger.
    Traced,
    /// Z
    Zombie,
    /// X
    Dead,
    /// I
    Idle,
    Other(char),
}

impl ProcessState {
    pub fn from_letter(c: char) -> Self {
        use ProcessState::*;
        match c {
            'R' => Running,
            'S' => Sleeping,
            'D' => DiskSleep,
            'T' => Stopped,
            't' => Traced,
            'Z' => Zombie,
            'X' | 'x' => Dead,
            'I' => Idle,
            c => Other(c),
        }
    }

    /// Stopped by a signal or a debugger: a waiter in this state will not
    /// take a connection until it is continued.
    pub fn is_stopped(self) -> bool {
        matches!(self, ProcessState::Stopped | ProcessState::Traced)
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProcessState::*;
        f.write_str(match self {
            Running => "running",
            Sleeping => "sleeping",
            DiskSleep => "disk-sleep",
            Stopped => "stopped",
            Traced => "traced",
            Zombie => "zombie",
            Dead => "dead",
            Idle => "idle",
            Other(c) => return write!(f, "{c}"),
        })
    }
}

impl Serialize for ProcessState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ProcessState {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProcessState".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Process state from /proc/PID/stat: running, sleeping, disk-sleep, stopped (a signal), traced (a debugger), zombie, dead, idle; any other state is the kernel's one-letter code.",
            "type": "string",
            "examples": ["sleeping", "stopped"]
        })
    }
}

/// How a thread waits for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitHow {
    /// Blocked in accept(): an exclusive waiter, the kernel wakes one per connection.
    Accept,
    /// In epoll_wait() on a set holding the socket. `exclusive`: the
    /// socket was added with EPOLLEXCLUSIVE, so one such waiter wakes per
    /// event; without it every epoll waiter on the socket wakes.
    Epoll {
        exclusive: bool,
    },
    Poll,
    Select,
}

impl WaitHow {
    /// The JSON `how`: `accept`, `epoll`, `poll`, `select`.
    pub fn name(self) -> &'static str {
        match self {
            WaitHow::Accept => "accept",
            WaitHow::Epoll { .. } => "epoll",
            WaitHow::Poll => "poll",
            WaitHow::Select => "select",
        }
    }

    /// Whether the kernel wakes only one such waiter per connection:
    /// accept() always, epoll with EPOLLEXCLUSIVE; poll/select never.
    pub fn exclusive(self) -> bool {
        match self {
            WaitHow::Accept => true,
            WaitHow::Epoll { exclusive } => exclusive,
            WaitHow::Poll | WaitHow::Select => false,
        }
    }
}

impl fmt::Display for WaitHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitHow::Epoll { exclusive: true } => f.write_str("epoll (exclusive)"),
            how => f.write_str(how.name()),
        }
    }
}

/// A thread blocked right now waiting for a socket. Only sleeping threads
/// count: a stopped or traced one takes no connection until continued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WaiterJson", from = "WaiterJson")]
pub struct Waiter {
    pub pid: u32,
    pub tid: u32,
    pub how: WaitHow,
    /// The fd the thread waits on: the socket's fd (accept/poll/select) or the epoll fd.
    pub fd: u32,
}

impl JsonSchema for Waiter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Waiter".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        WaiterJson::json_schema(generator)
    }
}

/// A thread blocked right now waiting for a socket (only sleeping threads:
/// a stopped or traced one is no waiter).
#[derive(Serialize, Deserialize, JsonSchema)]
struct WaiterJson {
    pid: u32,
    tid: u32,
    /// How it waits: blocked in accept(), in epoll_wait() on a set holding
    /// the socket, or in poll()/select() on it.
    how: HowJson,
    /// The fd the thread waits on: the socket's fd (accept/poll/select) or the epoll fd.
    fd: u32,
    /// The kernel wakes only one such waiter per connection: accept()
    /// always; epoll only when the socket was added with EPOLLEXCLUSIVE
    /// (else every epoll waiter wakes); poll and select never.
    exclusive: bool,
}

/// How a thread waits for a socket.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "WaitHow")]
enum HowJson {
    Accept,
    Epoll,
    Poll,
    Select,
}

impl From<Waiter> for WaiterJson {
    fn from(w: Waiter) -> Self {
        WaiterJson {
            pid: w.pid,
            tid: w.tid,
            how: match w.how {
                WaitHow::Accept => HowJson::Accept,
                WaitHow::Epoll { .. } => HowJson::Epoll,
                WaitHow::Poll => HowJson::Poll,
                WaitHow::Select => HowJson::Select,
            },
            fd: w.fd,
            exclusive: w.how.exclusive(),
        }
    }
}

/// Host-wide settings that shape every listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    pub somaxconn: Option<u32>,
    pub tcp_max_syn_backlog: Option<u32>,
    pub syncookies: Option<u32>,
}

/// Everything one collection pass saw. `analyze` turns it into a `Report`.
/// Serializable both ways: a recording (`recording::Recording`) replays
/// it in place of the live kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// The SYN queue of TCP listeners read from the listener itself
    /// (`icsk_accept_queue.qlen`, by the BPF holder scan): exact per
    /// socket, where counting `request_socks` can only give a group's.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub syn_queue: HashMap<Inode, u32>,
    pub host: HostInfo,
    /// What could not be seen.
    pub warnings: Vec<Warning>,
    /// Which namespace each socket and holder is in, and their labels.
    pub netns: netns::NetnsMap,
    /// Listeners held by a forwarder (docker-proxy): where it sends clients.
    pub forwards: HashMap<Inode, netns::Forward>,
    /// How the holders were found (`None`: not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<scan::ScanInfo>,
}

/// Host-wide listen-queue counters (TcpExt in /proc/net/netstat). `None`
/// when this kernel does not have the counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// Host-wide UDP receive counters (`Udp:` in /proc/net/snmp, `Udp6*` in
/// /proc/net/snmp6). `None` when this kernel does not have the counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UdpCounters {
    /// Datagrams that could not be delivered, every reason (Udp InErrors).
    pub in_errors: Option<u64>,
    /// Of those, dropped because a socket's receive buffer was full
    /// (Udp RcvbufErrors).
    pub rcvbuf_errors: Option<u64>,
    /// The same two for IPv6 (Udp6InErrors, Udp6RcvbufErrors).
    pub in6_errors: Option<u64>,
    pub rcvbuf6_errors: Option<u64>,
}

impl UdpCounters {
    /// `self - earlier`, per counter (a counter that went backwards gives 0).
    pub fn delta(&self, earlier: &UdpCounters) -> UdpCounters {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        UdpCounters {
            in_errors: d(self.in_errors, earlier.in_errors),
            rcvbuf_errors: d(self.rcvbuf_errors, earlier.rcvbuf_errors),
            in6_errors: d(self.in6_errors, earlier.in6_errors),
            rcvbuf6_errors: d(self.rcvbuf6_errors, earlier.rcvbuf6_errors),
        }
    }
}
