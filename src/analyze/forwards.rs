//! Forwarders in the report: a listener held by docker-proxy points at
//! the listener(s) it connects clients on to, and its group's verdict
//! says so — the host-side port and the container's server in one report.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::netns::Forward;
use crate::model::report::{Group, SocketReport};
use crate::model::{Endpoint, Inode, Proto};

/// Attach each forwarder's destination listeners (found in this report).
pub fn resolve(
    mut sockets: Vec<SocketReport>,
    forwards: &HashMap<Inode, Forward>,
) -> Vec<SocketReport> {
    let listeners: Vec<(Inode, u64, IpAddr, u16)> = sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp && s.accept_queue.is_some())
        .filter_map(|s| Some((s.inode, s.netns.inode, s.local_addr?, s.local_port?)))
        .collect();
    for s in &mut sockets {
        let Some(f) = forwards.get(&s.inode) else {
            continue;
        };
        let mut f = f.clone();
        let from = s.netns.inode;
        let covers = |addr: IpAddr| {
            addr == f.to_addr
                || (addr.is_unspecified()
                    && (addr.is_ipv4() == f.to_addr.is_ipv4() || addr.is_ipv6()))
        };
        f.to_inodes = listeners
            .iter()
            .filter(|(_, ns, addr, port)| {
                *port == f.to_port
                    && *ns != from
                    && match f.to_netns {
                        // The namespace owning the address is known: any
                        // listener there that covers it.
                        Some(to) => *ns == to && covers(*addr),
                        // Unknown: only a listener bound to exactly it.
                        None => *addr == f.to_addr,
                    }
            })
            .map(|(i, ..)| *i)
            .collect();
        if f.to_netns.is_none() {
            f.to_netns = f
                .to_inodes
                .first()
                .and_then(|i| listeners.iter().find(|l| l.0 == *i))
                .map(|l| l.1);
        }
        s.forward = Some(f);
    }
    sockets
}

/// "…; a forwarder (docker-proxy): each connection goes on to
/// 172.17.0.2:8000 in netns N (container 3f2a9c1e5b7d): listener inode M".
/// Only ids and numbers: names are for renderers, which escape them.
pub fn add_to_verdict(g: &mut Group, socks: &[&SocketReport], all: &[SocketReport]) {
    let Some(f) = socks.iter().find_map(|s| s.forward.as_ref()) else {
        return;
    };
    let dest = Endpoint(f.to_addr, f.to_port);
    let mut text = format!(
        "; a forwarder ({}): each connection goes on to {dest}",
        f.via
    );
    if let Some(ns) = f.to_netns {
        text.push_str(&format!(" in netns {ns}"));
        let container = all
            .iter()
            .find(|s| s.netns.inode == ns)
            .and_then(|s| s.netns.container.as_ref());
        if let Some(c) = container {
            text.push_str(&format!(" (container {})", short_id(&c.id)));
        }
    }
    match f.to_inodes.as_slice() {
        [] => text.push_str(" (no listener there in this report)"),
        [one] => text.push_str(&format!(": listener inode {one}")),
        many => text.push_str(&format!(
            ": listener inodes {}",
            many.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    g.verdict.push_str(&text);
}

/// "…; reached from netns N through docker-proxy on 127.0.0.1:32768
/// (inode M)": the other end, on a group that a forwarder connects to.
pub fn add_reached_through(g: &mut Group, all: &[SocketReport]) {
    for s in all {
        let Some(f) = &s.forward else { continue };
        if !f.to_inodes.iter().any(|i| g.inodes.contains(i)) {
            continue;
        }
        let (Some(addr), Some(port)) = (s.local_addr, s.local_port) else {
            continue;
        };
        let from = Endpoint(addr, port);
        g.verdict.push_str(&format!(
            "; reached from netns {} through {} on {from} (inode {})",
            s.netns.inode, f.via, s.inode
        ));
    }
}

/// The 12-digit short form `docker ps` prints (ids are checked hex).
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
