//! Network namespaces: which exist (the holder scan's per-process
//! `ns/net` stat, plus `ip netns` bind mounts under /run/netns and
//! /var/run/netns), what to call them (name, container), and one
//! sock_diag socket inside each.
//!
//! A sock_diag dump sees only the namespace its netlink socket was created
//! in. A socket created by a thread that has `setns(fd, CLONE_NEWNET)` into
//! another namespace stays bound to that namespace for its whole life, and
//! `setns` moves only the calling thread: so one short-lived thread moves
//! into each namespace in turn, opens a diag socket there (and the
//! namespace's /proc/net/netstat and sysctls), and hands them back. The
//! main thread never changes namespace. Needs CAP_SYS_ADMIN (root). A
//! recorded source (`source`) enters nothing: each namespace answers
//! from its recording.
//!
//! Must not: enter any other kind of namespace, or keep a thread inside one.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use rustix::fs::{fstat, open, stat, Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

pub use super::fdscan::NsKey;
use super::host;
use super::netlink::DiagSocket;
use super::source::{Source, SourceWire};
use crate::model::ListenCounters;

/// Where `ip netns add NAME` bind-mounts its namespaces (/var/run is
/// usually a link to /run; both are read, a name is kept once).
pub const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// The namespace sockmap runs in (its main thread's).
pub fn own(proc_root: &Path) -> std::io::Result<NsKey> {
    let st = stat(proc_root.join("self/ns/net"))?;
    Ok(NsKey {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// A named namespace: a bind mount of an nsfs file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub key: NsKey,
    pub path: PathBuf,
}

/// The `ip netns` namespaces in `dirs`. An entry counts only if it is an
/// nsfs file (same device as `own`'s): a leftover empty file from a
/// deleted namespace is skipped.
pub fn named(dirs: &[&str], nsfs_dev: u64) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(st) = stat(&path) else { continue };
            if st.st_dev != nsfs_dev {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if out.iter().any(|n| n.name == name) {
                continue;
            }
            out.push(Named {
                name,
                key: NsKey {
                    dev: st.st_dev,
                    ino: st.st_ino,
                },
                path,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One namespace and the ways to enter it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// The first `ip netns` name bound to it.
    pub name: Option<String>,
    /// Its /run/netns bind mount, if named.
    pub mount: Option<PathBuf>,
    /// Processes inside it (sorted).
    pub pids: Vec<u32>,
}

/// Every namespace seen: those of the scanned processes and the named
/// ones (a named namespace may have no process in it).
pub fn enumerate(pid_netns: &HashMap<u32, NsKey>, named: &[Named]) -> BTreeMap<NsKey, Namespace> {
    let mut out: BTreeMap<NsKey, Namespace> = BTreeMap::new();
    for (pid, key) in pid_netns {
        out.entry(*key).or_default().pids.push(*pid);
    }
    for ns in out.values_mut() {
        ns.pids.sort_unstable();
    }
    for n in named {
        let ns = out.entry(n.key).or_default();
        if ns.name.is_none() {
            ns.name = Some(n.name.clone());
            ns.mount = Some(n.path.clone());
        }
    }
    out
}

/// The files through which a namespace can be entered, best first: its
/// bind mount, then a few of its processes' `ns/net` (a process may exit
/// before we open it).
pub fn entry_paths(proc_root: &Path, ns: &Namespace) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ns.mount.iter().cloned().collect();
    v.extend(
        ns.pids
            .iter()
            .take(4)
            .map(|p| proc_root.join(format!("{p}/ns/net"))),
    );
    v
}

/// A diag socket (and counters file) bound to one namespace. Dropping it
/// closes them.
pub struct NsHandle {
    pub key: NsKey,
    pub diag: DiagSocket<SourceWire>,
    /// That namespace's /proc/net/netstat, opened from inside it (an open
    /// proc/net file stays tied to its namespace); re-read from the start.
    netstat: Option<File>,
    /// Its `net.core.somaxconn`, read from inside it (per namespace).
    pub somaxconn: Option<u32>,
}

impl NsHandle {
    /// The namespace we run in.
    pub fn here(proc_root: &Path, key: NsKey, source: &Source) -> crate::error::Result<Self> {
        Ok(NsHandle {
            key,
            diag: DiagSocket::over(source.open(key, true)?),
            netstat: File::open(proc_root.join("net/netstat")).ok(),
            somaxconn: host::read_somaxconn(proc_root),
        })
    }

    /// The namespace's TcpExt listen counters, now.
    pub fn counters(&mut self) -> Option<ListenCounters> {
        let f = self.netstat.as_mut()?;
        f.rewind().ok()?;
        let mut text = String::new();
        f.read_to_string(&mut text).ok()?;
        Some(host::counters_from(&host::parse_netstat(&text)))
    }
}

/// Why a namespace could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// setns or opening its file was refused: needs root (CAP_SYS_ADMIN).
    NotPermitted,
    /// Every process in it exited (and it has no bind mount).
    Gone,
    /// The kernel refused the diag socket inside it.
    Diag(String),
    /// A recorded source holds nothing for this namespace.
    NotRecorded,
}

/// Open a diag socket in each namespace, from one thread that moves into
/// each in turn and then ends (taking its namespace with it). A recorded
/// source opens its recording of each instead, entering nothing.
pub fn open_all(
    proc_root: &Path,
    wanted: Vec<(NsKey, Vec<PathBuf>)>,
    counters: bool,
    source: &Source,
) -> Vec<(NsKey, Result<NsHandle, OpenError>)> {
    if wanted.is_empty() {
        return Vec::new();
    }
    if source.is_recorded() {
        return wanted
            .into_iter()
            .map(|(key, _)| {
                let handle = source.open(key, false).map(|wire| NsHandle {
                    key,
                    diag: DiagSocket::over(wire),
                    netstat: None,
                    somaxconn: None,
                });
                (key, handle.map_err(|_| OpenError::NotRecorded))
            })
            .collect();
    }
    let proc_root = proc_root.to_path_buf();
    let source = source.clone();
    let worker = std::thread::Builder::new()
        .name("sockmap-netns".into())
        .spawn(move || {
            wanted
                .into_iter()
                .map(|(key, paths)| {
                    let opened = open_inside(&proc_root, key, &paths, counters, &source);
                    (key, opened)
                })
                .collect::<Vec<_>>()
        });
    match worker.map(|h| h.join()) {
        Ok(Ok(v)) => v,
        // The thread could not start or panicked: nothing was opened.
        _ => Vec::new(),
    }
}

/// On the namespace thread: enter `key` through the first of `paths` that
/// still leads to it, and open what we keep there.
fn open_inside(
    proc_root: &Path,
    key: NsKey,
    paths: &[PathBuf],
    counters: bool,
    source: &Source,
) -> Result<NsHandle, OpenError> {
    let mut refused = false;
    for path in paths {
        let fd = match open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ACCESS) | Err(Errno::PERM) => {
                refused = true;
                continue;
            }
            Err(_) => continue, // the process exited
        };
        // A pid may have been reused by a process in another namespace.
        match fstat(&fd) {
            Ok(st) if st.st_dev == key.dev && st.st_ino == key.ino => {}
            _ => continue,
        }
        match move_into_link_name_space(
            rustix::fd::AsFd::as_fd(&fd),
            Some(LinkNameSpaceType::Network),
        ) {
            Ok(()) => {}
            Err(Errno::PERM) | Err(Errno::ACCESS) => return Err(OpenError::NotPermitted),
            Err(_) => continue,
        }
        let wire = source
            .open(key, false)
            .map_err(|e| OpenError::Diag(e.to_string()))?;
        let diag = DiagSocket::over(wire);
        // `thread-self`: /proc/self/net would be the main thread's namespace.
        let netstat = counters
            .then(|| File::open(proc_root.join("thread-self/net/netstat")).ok())
            .flatten();
        return Ok(NsHandle {
            key,
            diag,
            netstat,
            somaxconn: host::read_somaxconn(proc_root),
        });
    }
    Err(if refused {
        OpenError::NotPermitted
    } else {
        OpenError::Gone
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> NsKey {
        NsKey { dev: 4, ino }
    }

    #[test]
    fn enumerate_merges_processes_and_names() {
        let pids: HashMap<u32, NsKey> = [(10, key(1)), (3, key(1)), (7, key(2))].into();
        let named = vec![
            Named {
                name: "blue".into(),
                key: key(2),
                path: "/run/netns/blue".into(),
            },
            Named {
                name: "empty".into(),
                key: key(9),
                path: "/run/netns/empty".into(),
            },
        ];
        let all = enumerate(&pids, &named);
        assert_eq!(all.len(), 3);
        assert_eq!(all[&key(1)].pids, vec![3, 10]);
        assert_eq!(all[&key(1)].name, None);
        assert_eq!(all[&key(2)].name.as_deref(), Some("blue"));
        assert_eq!(all[&key(9)].pids, Vec::<u32>::new());
        let paths = entry_paths(Path::new("/proc"), &all[&key(2)]);
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/run/netns/blue"),
                PathBuf::from("/proc/7/ns/net")
            ]
        );
    }

    #[test]
    fn own_namespace_is_ours() {
        let k = own(Path::new("/proc")).unwrap();
        let st = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((k.dev, k.ino), (st.dev(), st.ino()));
    }
}
