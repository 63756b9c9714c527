//! The set of network namespaces a collector looks at, kept across
//! passes (`watch` reuses the diag sockets): which to open for the
//! `--netns` scope, opening new ones, closing vanished ones, their labels,
//! and the warning when some cannot be read. Talks to the kernel only
//! through `netns` and `cgroup`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::cgroup;
use super::netns::{self, NsHandle, NsKey, OpenError};
use super::source::Source;
use crate::error::{Error, NetlinkCause, NetlinkError, Result};
use crate::model::netns::{Netns, NetnsInfo, NetnsScope};
use crate::model::{Warning, WarningKind};
use crate::target::NetnsRef;

pub struct NsSet {
    pub scope: NetnsScope,
    /// The namespace we run in; `None` if /proc/self/ns/net is unreadable
    /// (then only the diag socket we were born with is used).
    pub own: Option<NsKey>,
    /// Open diag sockets, ours first by `order`.
    pub handles: BTreeMap<NsKey, NsHandle>,
    /// Labels of the open namespaces, by nsfs inode.
    pub info: BTreeMap<u64, NetnsInfo>,
    /// Each process's namespace, from the last full scan.
    pub pid_netns: HashMap<u32, NsKey>,
    /// Every namespace seen in the last sync (opened or not).
    pub seen: BTreeMap<NsKey, netns::Namespace>,
    /// The namespaces the scope asks for (ours is kept open even when
    /// not asked for: its socket was made before the scope was known).
    pub wanted: Vec<NsKey>,
    /// Open each namespace's /proc/net/netstat too (for `watch`).
    pub counters: bool,
    /// Where every namespace's answers come from.
    pub source: Source,
}

impl NsSet {
    pub fn new(proc_root: &Path, scope: NetnsScope, source: Source) -> Result<Self> {
        let own = netns::own(proc_root).ok();
        let key = own.unwrap_or(NsKey { dev: 0, ino: 0 });
        let mut handles = BTreeMap::new();
        handles.insert(key, NsHandle::here(proc_root, key, &source)?);
        Ok(NsSet {
            scope,
            own,
            handles,
            info: BTreeMap::new(),
            pid_netns: HashMap::new(),
            seen: BTreeMap::new(),
            wanted: vec![key],
            counters: false,
            source,
        })
    }

    pub fn own_ino(&self) -> u64 {
        self.own.map_or(0, |k| k.ino)
    }

    /// The open namespaces in scope, in report order: ours first.
    pub fn keys_in_order(&self) -> Vec<NsKey> {
        let mut keys: Vec<NsKey> = self
            .handles
            .keys()
            .copied()
            .filter(|k| self.wanted.contains(k))
            .collect();
        keys.sort_by_key(|k| (Some(*k) != self.own, *k));
        keys
    }

    /// Bring the open set in line with the scope, given every process's
    /// namespace from a full scan. `netns:` targets, when any, name the
    /// namespaces to look in instead of the scope. Returns the warnings.
    pub fn sync(
        &mut self,
        proc_root: &Path,
        pid_netns: HashMap<u32, NsKey>,
        netns_denied: usize,
        targets: &[&NetnsRef],
    ) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        self.pid_netns = pid_netns;
        let Some(own) = self.own else {
            return Ok(warnings);
        };
        let named = netns::named(self.source.netns_dirs(), own.dev);
        let mut all = netns::enumerate(&self.pid_netns, &named);
        all.entry(own).or_default();

        let mut wanted: Vec<NsKey> = Vec::new();
        for t in targets {
            let k = find(&all, t)?;
            if !wanted.contains(&k) {
                wanted.push(k);
            }
        }
        if wanted.is_empty() {
            wanted = match &self.scope {
                NetnsScope::All => all.keys().copied().collect(),
                NetnsScope::Own => vec![own],
                NetnsScope::Name(n) => vec![find(&all, &NetnsRef::Name(n.clone()))?],
                NetnsScope::Inode(i) => vec![find(&all, &NetnsRef::Inode(*i))?],
                NetnsScope::Pid(p) => vec![*self.pid_netns.get(p).ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid --netns 'pid:{p}': no such process, or its namespace cannot be read (needs root)"
                    ))
                })?],
            };
        }

        let to_open: Vec<(NsKey, Vec<std::path::PathBuf>)> = wanted
            .iter()
            .filter(|k| !self.handles.contains_key(k))
            .filter_map(|k| Some((*k, netns::entry_paths(proc_root, all.get(k)?))))
            .collect();
        let mut refused = 0usize;
        for (key, opened) in netns::open_all(proc_root, to_open, self.counters, &self.source) {
            match opened {
                Ok(h) => {
                    self.handles.insert(key, h);
                }
                Err(OpenError::NotPermitted) => refused += 1,
                Err(OpenError::Gone) => {}
                // A replay asked for a namespace it has no recording of.
                Err(OpenError::NotRecorded) => {
                    return Err(Error::Netlink(NetlinkError {
                        request: "a diag socket in this namespace".into(),
                        cause: NetlinkCause::NotRecorded { netns: key.ino },
                    }))
                }
                Err(OpenError::Diag(e)) => warnings.push(
                    Warning::new(WarningKind::NetnsDumpFailed, 1).detail(format!(
                        "netns {}: no sock_diag socket inside it: {e}",
                        key.ino
                    )),
                ),
            }
        }
        // Close what is no longer wanted or gone (ours always stays).
        self.handles
            .retain(|k, _| *k == own || (wanted.contains(k) && all.contains_key(k)));

        self.info = self
            .handles
            .iter()
            .filter(|(k, _)| wanted.contains(k))
            .map(|(k, h)| {
                let ns = all.get(k);
                let label = Netns {
                    inode: k.ino,
                    name: ns.and_then(|n| n.name.clone()),
                    // The lowest pid: a container's init (a pod's pause
                    // process); the others share its cgroup.
                    container: ns
                        .and_then(|n| n.pids.first())
                        .and_then(|p| cgroup::read_container(proc_root, *p)),
                };
                (
                    k.ino,
                    NetnsInfo {
                        label,
                        somaxconn: h.somaxconn,
                    },
                )
            })
            .collect();

        if self.scope == NetnsScope::All && (refused > 0 || netns_denied > 0) {
            warnings.push(not_inspected(refused, netns_denied));
        }
        self.seen = all;
        self.wanted = wanted;
        Ok(warnings)
    }
}

/// The namespace a `--netns NAME|INODE` or `netns:` target names.
fn find(all: &BTreeMap<NsKey, netns::Namespace>, sel: &NetnsRef) -> Result<NsKey> {
    let hit = all.iter().find(|(k, ns)| match sel {
        NetnsRef::Name(n) => ns.name.as_deref() == Some(n.as_str()),
        NetnsRef::Inode(i) => k.ino == *i,
    });
    hit.map(|(k, _)| *k).ok_or_else(|| {
        Error::Usage(match sel {
            NetnsRef::Name(n) => format!(
                "no network namespace named '{}' (see `ip netns list`)",
                crate::escape::terminal(n)
            ),
            NetnsRef::Inode(i) => format!(
                "no network namespace with inode {i} (see `lsns -t net`; other users' need root)"
            ),
        })
    })
}

/// The one warning for namespaces we could not enter: how many, and
/// how many processes' namespaces we could not even read.
fn not_inspected(refused: usize, unreadable: usize) -> Warning {
    let w = Warning::new(WarningKind::NetnsNotInspected, refused as u64);
    if unreadable == 0 {
        return w;
    }
    w.detail(format!(
        "the namespace of {unreadable} process{} could not be read",
        if unreadable == 1 { "" } else { "es" }
    ))
}
