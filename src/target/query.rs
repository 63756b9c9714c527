//! `Query`: the targets of one command, and the questions the collector and
//! analysis ask of them (which protocols, which ports to filter in the
//! kernel, does this socket match). Pure.

use std::fmt;
use std::net::IpAddr;

use super::{NetnsRef, PortSet, Target, UnixName};
use crate::model::Proto;

/// A port filter longer than this many single ports is not worth building
/// as `kernel_ports` (a list): dump the family and filter here.
pub const MAX_KERNEL_PORTS: usize = 64;

/// What to look for, built from the targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub targets: Vec<Target>,
    /// Every TCP state, not only LISTEN (`inspect --all`). Implied by
    /// pid:/inode:/comm: targets.
    pub all_states: bool,
    /// Only these kinds (`-t`/`-u`/`-x`); empty: no narrowing.
    pub only: Vec<Proto>,
}

/// Which ports of one protocol the kernel may be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortFilter {
    /// No filter: every socket of the protocol is a candidate.
    AllPorts,
    /// Only sockets on these ports can match.
    Ports(PortSet),
    /// No socket of this protocol is wanted: skip the dump.
    Nothing,
}

impl Query {
    pub fn new(targets: Vec<Target>) -> Self {
        Query {
            targets,
            ..Query::default()
        }
    }

    pub fn with_all_states(mut self, all: bool) -> Self {
        self.all_states = all;
        self
    }

    /// Narrow to these kinds of socket (an empty list narrows nothing).
    pub fn with_only_protos(mut self, only: &[Proto]) -> Self {
        self.only = only.to_vec();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The targets that pick sockets (every one but `netns:`, which scopes).
    fn selectors(&self) -> impl Iterator<Item = &Target> + '_ {
        self.targets
            .iter()
            .filter(|t| !matches!(t, Target::Netns(_)))
    }

    fn selects_everything(&self) -> bool {
        self.selectors().next().is_none()
    }

    /// Does an inet target select sockets of `proto`? A `tcp:`/`udp:`
    /// prefix decides; without one, `-t`/`-u` decide (as with `ss -u`),
    /// and without those, TCP.
    fn inet_takes(&self, i: &super::Inet, proto: Proto) -> bool {
        match i.proto {
            Some(p) => p == proto,
            None if self.only.iter().any(|p| *p != Proto::Unix) => {
                proto != Proto::Unix && self.only.contains(&proto)
            }
            None => proto == Proto::Tcp,
        }
    }

    /// Whether sockets of `proto` can match at all.
    pub fn wants(&self, proto: Proto) -> bool {
        if !self.only.is_empty() && !self.only.contains(&proto) {
            return false;
        }
        self.selects_everything()
            || self.selectors().any(|t| match t {
                Target::Inet(i) => self.inet_takes(i, proto),
                Target::Unix(_) => proto == Proto::Unix,
                Target::Pid(_) | Target::Inode(_) | Target::Comm(_) => true,
                Target::Netns(_) => false,
            })
    }

    /// The kinds of socket wanted, in `Proto` order.
    pub fn protos(&self) -> Vec<Proto> {
        Proto::ALL.into_iter().filter(|p| self.wants(*p)).collect()
    }

    /// The ports of `proto` the kernel may filter on (ranges and lists
    /// already merged into sorted ranges).
    pub fn port_filter(&self, proto: Proto) -> PortFilter {
        if !self.wants(proto) {
            return PortFilter::Nothing;
        }
        if proto == Proto::Unix || self.selects_everything() {
            return PortFilter::AllPorts;
        }
        let mut set: Option<PortSet> = None;
        for t in self.selectors() {
            match t {
                Target::Inet(i) if self.inet_takes(i, proto) => match &i.ports {
                    Some(p) => set = Some(set.map_or_else(|| p.clone(), |s| s.union(p))),
                    None => return PortFilter::AllPorts,
                },
                Target::Pid(_) | Target::Inode(_) | Target::Comm(_) => return PortFilter::AllPorts,
                _ => {}
            }
        }
        set.map_or(PortFilter::Nothing, PortFilter::Ports)
    }

    /// The TCP ports the kernel may filter on as a list, or `None` when
    /// every TCP socket must be dumped (no port filter, or one wider than
    /// `MAX_KERNEL_PORTS` ports).
    pub fn kernel_ports(&self) -> Option<Vec<u16>> {
        match self.port_filter(Proto::Tcp) {
            PortFilter::Ports(set) if set.len() <= MAX_KERNEL_PORTS => Some(set.ports().collect()),
            _ => None,
        }
    }

    /// Whether sockets in states other than LISTEN are wanted.
    pub fn wants_all_states(&self) -> bool {
        self.all_states
            || self
                .targets
                .iter()
                .any(|t| matches!(t, Target::Pid(_) | Target::Inode(_) | Target::Comm(_)))
    }

    /// The pids named by `pid:` targets.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.targets.iter().filter_map(|t| match t {
            Target::Pid(p) => Some(*p),
            _ => None,
        })
    }

    /// The command names of `comm:` targets: their processes' sockets
    /// match, like a `pid:` target for each.
    pub fn comms(&self) -> impl Iterator<Item = &str> + '_ {
        self.targets.iter().filter_map(|t| match t {
            Target::Comm(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// The `unix:` targets.
    pub fn unix_names(&self) -> impl Iterator<Item = &UnixName> + '_ {
        self.targets.iter().filter_map(|t| match t {
            Target::Unix(u) => Some(u),
            _ => None,
        })
    }

    /// The `netns:` targets: the namespaces to look in (none: the caller's
    /// default).
    pub fn netns(&self) -> impl Iterator<Item = &NetnsRef> + '_ {
        self.targets.iter().filter_map(|t| match t {
            Target::Netns(n) => Some(n),
            _ => None,
        })
    }

    /// Does a TCP or UDP socket on `addr:port` with `inode` match an
    /// address, port or inode target (or is there no selecting target)?
    /// `pid:`/`comm:` targets match through holders, which the caller checks.
    pub fn matches_inet(&self, proto: Proto, addr: IpAddr, port: u16, inode: u64) -> bool {
        if !self.wants(proto) {
            return false;
        }
        self.selects_everything()
            || self.selectors().any(|t| match t {
                Target::Inet(i) => self.inet_takes(i, proto) && i.matches_addr_port(addr, port),
                Target::Inode(i) => *i == inode,
                _ => false,
            })
    }

    /// `matches_inet` for TCP, except that a query with no target matches
    /// nothing here (the caller lists everything itself).
    pub fn matches_local(&self, addr: IpAddr, port: u16, inode: u64) -> bool {
        !self.is_empty() && self.matches_inet(Proto::Tcp, addr, port, inode)
    }

    /// Does a unix socket bound to `raw` (its `sun_path` bytes as the
    /// kernel reports them; abstract names start with NUL) with `inode`
    /// match a `unix:` or `inode:` target (or is there no selecting target)?
    pub fn matches_unix(&self, raw: &[u8], inode: u64) -> bool {
        if !self.wants(Proto::Unix) {
            return false;
        }
        self.selects_everything()
            || self.selectors().any(|t| match t {
                Target::Unix(u) => u.matches_raw(raw),
                Target::Inode(i) => *i == inode,
                _ => false,
            })
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.targets.is_empty() {
            return f.write_str("every listening TCP socket");
        }
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}
