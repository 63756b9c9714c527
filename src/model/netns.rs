//! Network namespaces as the report names them: the nsfs inode, the
//! `ip netns` name, the container that owns it; which namespaces a run
//! looks at (`NetnsScope`); and where a forwarder sends its connections.
//! Plain data: no I/O, no formatting.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Inode;

/// The label of one network namespace (JSON `netns`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Netns {
    /// The nsfs inode of `/proc/PID/ns/net` (what `lsns -t net` prints).
    pub inode: u64,
    /// The name of a `/run/netns/NAME` bind mount of it (`ip netns`).
    pub name: Option<String>,
    /// The container whose processes are in it, from their cgroup.
    pub container: Option<Container>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Container {
    pub runtime: Runtime,
    /// The full container id (64 hex digits for docker/containerd/CRI-O).
    pub id: String,
    /// The container's name, when cheaply known (docker's config.v2.json).
    pub name: Option<String>,
    /// The Kubernetes pod UID, when the cgroup path names one.
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Containerd,
    #[serde(rename = "cri-o")]
    Crio,
    Podman,
    /// A kubepods cgroup whose runtime the path does not say.
    Kubernetes,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
        })
    }
}

/// Which network namespaces a run looks at (`--netns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetnsScope {
    /// Every namespace we may read; our own alone (with a warning) when
    /// the others need privileges we lack. The default.
    #[default]
    All,
    /// Only the namespace sockmap runs in.
    Own,
    /// The `/run/netns/NAME` namespace.
    Name(String),
    /// The namespace with this nsfs inode.
    Inode(u64),
    /// The namespace process PID is in.
    Pid(u32),
}

impl fmt::Display for NetnsScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsScope::All => f.write_str("all"),
            NetnsScope::Own => f.write_str("self"),
            NetnsScope::Name(n) => write!(f, "{n}"),
            NetnsScope::Inode(i) => write!(f, "{i}"),
            NetnsScope::Pid(p) => write!(f, "pid:{p}"),
        }
    }
}

/// One namespace a pass looked into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsInfo {
    pub label: Netns,
    /// Its own `net.core.somaxconn` (per namespace since Linux 4.x).
    pub somaxconn: Option<u32>,
}

/// Where the namespaces of a snapshot's sockets and holders are. Empty
/// (the default) means one namespace, unnamed: the single-namespace view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsMap {
    /// The nsfs inode of the namespace sockmap runs in (0: unknown).
    pub own: u64,
    /// Each namespace that was dumped, by nsfs inode.
    pub namespaces: BTreeMap<u64, NetnsInfo>,
    /// The namespace each socket was found in (socket inodes are unique
    /// system-wide). A socket missing here is in `own`.
    pub of_socket: HashMap<Inode, u64>,
    /// Each holder process's own namespace.
    pub of_pid: HashMap<u32, u64>,
}

impl NetnsMap {
    pub fn socket(&self, inode: Inode) -> u64 {
        self.of_socket.get(&inode).copied().unwrap_or(self.own)
    }

    pub fn label(&self, ns: u64) -> Netns {
        self.namespaces
            .get(&ns)
            .map(|i| i.label.clone())
            .unwrap_or(Netns {
                inode: ns,
                ..Netns::default()
            })
    }
}

/// A process that accepts on one address and connects each client to
/// another (docker-proxy), read from its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Forward {
    /// The forwarder's program (`docker-proxy`).
    pub via: String,
    pub to_addr: IpAddr,
    pub to_port: u16,
    /// The listening socket(s) at the destination, if this report found them.
    pub to_inodes: Vec<Inode>,
    /// The destination's namespace, when one of its listeners was found.
    pub to_netns: Option<u64>,
}
