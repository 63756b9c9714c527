//! Both ends of a forward in one report. A host port held by docker-proxy
//! brings in the container listener it connects to; a container listener
//! brings in the docker-proxy listener(s) that forward to it. Costs
//! nothing unless a forwarder or a listener in another namespace is in
//! the report.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{dump_ns, Collector};
use crate::collect::diag::AttrProblems;
use crate::collect::forward;
use crate::error::Result;
use crate::model::netns::{Forward, NetnsMap};
use crate::model::{Holder, Inode, Proto, Socket};
use crate::target::{Query, Target};

/// Per-pass lookups, cached: a pid's comm, a namespace's local addresses.
#[derive(Default)]
pub(super) struct Lookups {
    comm: HashMap<u32, Option<String>>,
    addrs: HashMap<u64, Vec<IpAddr>>,
}

impl Collector {
    fn comm(&self, look: &mut Lookups, pid: u32) -> Option<String> {
        look.comm
            .entry(pid)
            .or_insert_with(|| {
                std::fs::read_to_string(self.proc_root.join(format!("{pid}/comm")))
                    .ok()
                    .map(|c| c.trim_end_matches('\n').to_string())
            })
            .clone()
    }

    /// Where the forwarder among `pids` (if any) sends its clients.
    fn forward_of(&self, look: &mut Lookups, pids: &[u32]) -> Option<(String, IpAddr, u16)> {
        pids.iter().find_map(|&p| {
            (self.comm(look, p)? == "docker-proxy")
                .then(|| forward::read_cmdline(&self.proc_root, p))
                .flatten()
        })
    }

    /// The open namespace other than `from` that owns `addr`.
    fn owner_ns(&self, look: &mut Lookups, addr: IpAddr, from: u64) -> Option<u64> {
        let candidates: Vec<u64> = self
            .ns
            .keys_in_order()
            .iter()
            .map(|k| k.ino)
            .filter(|ns| *ns != from)
            .collect();
        candidates.into_iter().find(|ns| {
            look.addrs
                .entry(*ns)
                .or_insert_with(|| {
                    let pid = self
                        .ns
                        .seen
                        .iter()
                        .find(|(k, _)| k.ino == *ns)
                        .and_then(|(_, n)| n.pids.first().copied());
                    pid.map(|p| forward::local_addrs(&self.proc_root, p))
                        .unwrap_or_default()
                })
                .contains(&addr)
        })
    }

    /// Listeners on `port` in namespace `ns` (nsfs inode), from its dump.
    /// A failed dump finds none (the forward is then not shown), except
    /// that a request a recorded source cannot answer is an error.
    fn listeners_in(&mut self, ns: u64, port: Option<u16>) -> Result<Vec<Socket>> {
        let Some(key) = self.ns.handles.keys().copied().find(|k| k.ino == ns) else {
            return Ok(Vec::new());
        };
        // TCP only: forwarders here forward TCP.
        let query = Query::new(port.map(|p| Target::port(None, p)).into_iter().collect())
            .with_only_protos(&[Proto::Tcp]);
        let Some(handle) = self.ns.handles.get_mut(&key) else {
            return Ok(Vec::new());
        };
        let mut ignored = Vec::new();
        let mut attrs = AttrProblems::default();
        match dump_ns(handle, &query, &HashSet::new(), &mut ignored, &mut attrs) {
            Ok(found) => Ok(found),
            Err(e) if e.is_not_recorded() => Err(e),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Add to `sockets` the other end of every forward that starts or ends
    /// at one of them.
    pub(super) fn add_forward_ends(
        &mut self,
        sockets: &mut Vec<Socket>,
        netns: &mut NetnsMap,
        found: &HashMap<Inode, Vec<(u32, u32)>>,
        look: &mut Lookups,
    ) -> Result<()> {
        let pids_of = |i: Inode| -> Vec<u32> {
            found
                .get(&i)
                .map(|v| v.iter().map(|(p, _)| *p).collect())
                .unwrap_or_default()
        };
        let mut have: HashSet<Inode> = sockets.iter().map(|s| s.inode).collect();
        let mut added: Vec<(Socket, u64)> = Vec::new();

        // Forwarder → destination.
        let listeners: Vec<Socket> = sockets
            .iter()
            .filter(|s| s.is_tcp_listener())
            .cloned()
            .collect();
        for s in &listeners {
            let Some((_, to_addr, to_port)) = self.forward_of(look, &pids_of(s.inode)) else {
                continue;
            };
            let Some(to) = self.owner_ns(look, to_addr, netns.socket(s.inode)) else {
                continue;
            };
            for l in self.listeners_in(to, Some(to_port))? {
                let covers = l.local_addr == to_addr || l.local_addr.is_unspecified();
                if covers && l.is_tcp_listener() && have.insert(l.inode) {
                    added.push((l, to));
                }
            }
        }

        // Destination (a listener in another namespace) → forwarders on our side.
        let own = netns.own;
        let foreign: Vec<(u64, u16, IpAddr)> = listeners
            .iter()
            .filter(|s| netns.socket(s.inode) != own)
            .map(|s| (netns.socket(s.inode), s.local_port, s.local_addr))
            .collect();
        if !foreign.is_empty() {
            for l in self.listeners_in(own, None)? {
                if have.contains(&l.inode) || !l.is_tcp_listener() {
                    continue;
                }
                let Some((_, to_addr, to_port)) = self.forward_of(look, &pids_of(l.inode)) else {
                    continue;
                };
                let hit = foreign.iter().any(|(ns, port, addr)| {
                    *port == to_port
                        && (*addr == to_addr || addr.is_unspecified())
                        && self.owner_ns(look, to_addr, own) == Some(*ns)
                });
                if hit && have.insert(l.inode) {
                    added.push((l, own));
                }
            }
        }

        for (s, ns) in added {
            if ns != own {
                netns.of_socket.insert(s.inode, ns);
            }
            sockets.push(s);
        }
        Ok(())
    }

    /// Listeners held by a known forwarder (docker-proxy), with the
    /// namespace that owns the address it forwards to.
    pub(super) fn forwards(
        &self,
        sockets: &[Socket],
        holders: &HashMap<Inode, Vec<Holder>>,
        netns: &NetnsMap,
        look: &mut Lookups,
    ) -> HashMap<Inode, Forward> {
        let mut out = HashMap::new();
        for s in sockets.iter().filter(|s| s.is_tcp_listener()) {
            let Some(list) = holders.get(&s.inode) else {
                continue;
            };
            if !list.iter().any(|h| h.comm == "docker-proxy") {
                continue;
            }
            let pids: Vec<u32> = list.iter().map(|h| h.pid).collect();
            let Some((via, to_addr, to_port)) = self.forward_of(look, &pids) else {
                continue;
            };
            let to_netns = self.owner_ns(look, to_addr, netns.socket(s.inode));
            out.insert(
                s.inode,
                Forward {
                    via,
                    to_addr,
                    to_port,
                    to_inodes: Vec::new(),
                    to_netns,
                },
            );
        }
        out
    }
}
