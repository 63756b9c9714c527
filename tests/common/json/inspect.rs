//! The `inspect --json` report, as the tests read it (see json.rs for
//! how fields are read).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;

use super::{AcceptQueue, Proto, RawText, SynQueue, TcpState, Warning};

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
    /// The network namespaces the report looked into, sockmap's own first.
    pub namespaces: Vec<Netns>,
    /// How the holders were found; left out when no holder scan ran.
    #[serde(default, deserialize_with = "super::omitted_or")]
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
    #[serde(deserialize_with = "super::nullable")]
    pub somaxconn: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub tcp_max_syn_backlog: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
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
    #[serde(deserialize_with = "super::nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "super::nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "super::nullable")]
    pub remote_addr: Option<IpAddr>,
    #[serde(deserialize_with = "super::nullable")]
    pub remote_port: Option<u16>,
    #[serde(deserialize_with = "super::nullable")]
    pub path: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub path_status: Option<PathStatus>,
    #[serde(deserialize_with = "super::nullable")]
    pub vfs: Option<Vfs>,
    #[serde(deserialize_with = "super::nullable")]
    pub peer: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub uid: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub accept_queue: Option<AcceptQueue>,
    #[serde(deserialize_with = "super::nullable")]
    pub syn_queue: Option<SynQueue>,
    #[serde(deserialize_with = "super::nullable")]
    pub recv_q: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub send_q: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub drops: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub rcvbuf: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub reuseport: Option<bool>,
    #[serde(deserialize_with = "super::nullable")]
    pub backlog_clamped: Option<bool>,
    pub holders: Vec<Holder>,
    pub waiters: Vec<Waiter>,
    /// The namespace the socket lives in.
    pub netns: Netns,
    /// Left out unless a forwarder (docker-proxy) holds the socket.
    #[serde(default, deserialize_with = "super::omitted_or")]
    pub forward: Option<Forward>,
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

/// One (process, fd) holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    pub pid: u32,
    #[serde(deserialize_with = "super::nullable")]
    pub ppid: Option<u32>,
    pub comm: RawText,
    #[serde(deserialize_with = "super::nullable")]
    pub uid: Option<u32>,
    #[serde(deserialize_with = "super::nullable")]
    pub user: Option<String>,
    pub fd: u32,
    /// The holder's own namespace (nsfs inode), left out unless it
    /// differs from its socket's.
    #[serde(default, deserialize_with = "super::omitted_or")]
    pub netns: Option<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub state: Option<ProcessState>,
    #[serde(deserialize_with = "super::nullable")]
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
    /// The nsfs inode of the group's namespace.
    pub netns: u64,
    pub proto: Proto,
    #[serde(deserialize_with = "super::nullable")]
    pub local_addr: Option<IpAddr>,
    #[serde(deserialize_with = "super::nullable")]
    pub local_port: Option<u16>,
    #[serde(deserialize_with = "super::nullable")]
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

/// A network namespace (`netns`, `namespaces[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Netns {
    /// The nsfs inode (`lsns -t net`).
    pub inode: u64,
    /// Its `/run/netns/NAME` name.
    #[serde(deserialize_with = "super::nullable")]
    pub name: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub container: Option<Container>,
}

/// The container a namespace belongs to, from its processes' cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub runtime: Runtime,
    pub id: String,
    #[serde(deserialize_with = "super::nullable")]
    pub name: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Containerd,
    #[serde(rename = "cri-o")]
    Crio,
    Podman,
    Kubernetes,
}

/// Where a forwarder (docker-proxy) sends the clients of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub via: String,
    pub to_addr: IpAddr,
    pub to_port: u16,
    pub to_inodes: Vec<u64>,
    #[serde(deserialize_with = "super::nullable")]
    pub to_netns: Option<u64>,
}

/// How the holders were found (`scan`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub method: ScanMethod,
    pub duration_ms: f64,
    #[serde(default, deserialize_with = "super::omitted_or")]
    pub load_ms: Option<f64>,
    #[serde(default, deserialize_with = "super::omitted_or")]
    pub fallback_reason: Option<FallbackReason>,
    #[serde(default, deserialize_with = "super::omitted_or")]
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
