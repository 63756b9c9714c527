//! The overview `inspect` prints with no target: one row per listening
//! socket of every kind (TCP LISTEN, UDP unconnected, unix LISTEN), like
//! `ss -tulnxp` but with the queue against its limit, the kind of sharing
//! and the holders folded by command; a verdict line only under a socket
//! that is shared or part of a group. Plain columns (no box drawing), so
//! it stays readable at any width; never reaches back into `collect`.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{local_label, state_label};
use crate::escape;
use crate::model::report::{Group, GroupKind, Report, SocketReport};
use crate::model::{PathStatus, Proto};

/// Pids shown per command before `+N`.
const PIDS_SHOWN: usize = 3;

const HEADERS: [&str; 7] = [
    "PROTO",
    "LOCAL",
    "ACCEPT/RECV-Q",
    "BACKLOG/RCVBUF",
    "DROPS",
    "KIND",
    "HOLDERS",
];

/// `nginx[812,813,814] +2 php-fpm[900]`: distinct pids folded by command,
/// in the order first seen; `-` when no holder was found.
pub fn holders_cell(s: &SocketReport) -> String {
    let mut by_comm: Vec<(String, Vec<u32>)> = Vec::new();
    for h in &s.holders {
        let comm = escape::terminal(&h.comm).into_owned();
        match by_comm.iter_mut().find(|(c, _)| *c == comm) {
            Some((_, pids)) if !pids.contains(&h.pid) => pids.push(h.pid),
            Some(_) => {}
            None => by_comm.push((comm, vec![h.pid])),
        }
    }
    if by_comm.is_empty() {
        return "-".into();
    }
    by_comm
        .iter()
        .map(|(comm, pids)| {
            let shown: Vec<String> = pids.iter().take(PIDS_SHOWN).map(u32::to_string).collect();
            let mut cell = format!("{comm}[{}]", shown.join(","));
            if pids.len() > PIDS_SHOWN {
                cell.push_str(&format!(" +{}", pids.len() - PIDS_SHOWN));
            }
            cell
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn row(s: &SocketReport, group: Option<&Group>) -> [String; 7] {
    let proto = match s.proto {
        Proto::Unix => format!("unix/{}", s.sock_type),
        p => p.to_string(),
    };
    let mut local = local_label(s);
    if !s.is_listener() {
        local.push_str(&format!(" ({})", state_label(s)));
    }
    let (queue, limit) = match (s.accept_queue, s.proto) {
        (Some(q), _) => (q.depth.to_string(), q.backlog.to_string()),
        (None, Proto::Udp) => (dash(s.recv_q), dash(s.rcvbuf)),
        (None, _) => (dash(s.recv_q), "-".into()),
    };
    let kind = group.map_or("-", |g| match g.kind {
        GroupKind::Single => "single",
        GroupKind::Shared => "shared",
        GroupKind::Reuseport => "reuseport",
    });
    [
        proto,
        local,
        queue,
        limit,
        dash(s.drops),
        kind.to_string(),
        holders_cell(s),
    ]
}

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut group_of: HashMap<_, &Group> = HashMap::new();
    let mut last_of_group = HashMap::new();
    for g in &report.groups {
        for i in &g.inodes {
            group_of.insert(*i, g);
        }
        if let Some(last) = g.inodes.last() {
            last_of_group.insert(*last, g);
        }
    }
    let rows: Vec<[String; 7]> = report
        .sockets
        .iter()
        .map(|s| row(s, group_of.get(&s.inode).copied()))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string()
    };
    writeln!(out, "{}", line(&HEADERS.map(String::from)))?;
    for (s, r) in report.sockets.iter().zip(&rows) {
        writeln!(out, "{}", line(r))?;
        if let Some(g) = last_of_group.get(&s.inode) {
            // A single socket's verdict only when something is wrong.
            let full = s.accept_queue.is_some_and(|q| q.depth > q.backlog);
            let lost = matches!(
                s.path_status,
                Some(PathStatus::Unlinked | PathStatus::Replaced)
            );
            if g.kind != GroupKind::Single || full || lost {
                writeln!(out, "  → {}", g.verdict)?;
            }
        }
    }
    Ok(())
}
