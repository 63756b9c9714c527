//! Turns a `Report` into bytes: an lsof-like table (comfy-table), a plain
//! one-row-per-holder form for grep/awk, and JSON. Writes to `impl Write`;
//! never reaches back into `collect`.

pub mod check;
pub mod json;
pub mod netns;
pub mod openmetrics;
pub mod overview;
pub mod plain;
pub mod table;
pub mod watch;

use std::net::IpAddr;

use crate::escape;
use crate::model::report::{SocketReport, SynScope};
use crate::model::{Holder, PathStatus, Proto, TcpState, Waiter, Warning};

/// The warnings, one line each with its hint, escaped (a detail may hold
/// the OS's words). Best effort: stderr that cannot be written (a closed
/// pipe, a full disk) is not worth failing the command for.
pub fn warnings(err: &mut impl std::io::Write, warnings: &[Warning]) {
    for w in warnings {
        let mut line = format!("sockmap: warning: {}", w.message());
        if let Some(h) = w.hint() {
            line.push_str(&format!(" ({h})"));
        }
        let _ = writeln!(err, "{}", escape::terminal(&line));
    }
}

/// `127.0.0.1:8000`, `[::1]:8000`, `*:8000` for the wildcard.
pub fn addr_port(addr: IpAddr, port: u16) -> String {
    crate::model::Endpoint(addr, port).to_string()
}

/// Where a socket is: `127.0.0.1:8000` for TCP/UDP, the escaped path or
/// `@name` for unix (`(unnamed)` for a socket without a name).
pub fn local_label(s: &SocketReport) -> String {
    match (s.local_addr, s.local_port, &s.unix_name) {
        (Some(a), Some(p), _) => addr_port(a, p),
        (_, _, Some(n)) => n.to_string(),
        _ => "(unnamed)".to_string(),
    }
}

/// The state as `ss` says it: an unconnected UDP socket is `UNCONN`.
pub fn state_label(s: &SocketReport) -> String {
    match (s.proto, s.state) {
        (Proto::Udp, TcpState::Close) => "UNCONN".to_string(),
        (_, st) => st.to_string(),
    }
}

/// One holder row: the holder and what its threads are waiting in.
pub struct Row<'a> {
    pub socket: &'a SocketReport,
    pub holder: &'a Holder,
}

impl Row<'_> {
    fn waiting(&self) -> String {
        let mine: Vec<&Waiter> = self
            .socket
            .waiters
            .iter()
            .filter(|w| w.pid == self.holder.pid)
            .collect();
        if mine.is_empty() {
            return "-".into();
        }
        let mut kinds: Vec<String> = Vec::new();
        for w in &mine {
            // `epoll (exclusive)` as `epoll(exclusive)`: one --plain field.
            let k = w.how.to_string().replace(' ', "");
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        if mine.len() == 1 {
            kinds.join(",")
        } else {
            // No spaces: the cell stays one field in --plain.
            format!("{}({}_threads)", kinds.join(","), mine.len())
        }
    }
}

/// A column of the holder table: the one list that drives the table, the
/// plain output and the man page's COLUMNS section.
pub struct Column {
    pub header: &'static str,
    pub doc: &'static str,
    /// The raw cell bytes (a comm need not be UTF-8); renderers escape
    /// them (`escape::bytes` in the table, `escape::field_bytes` in --plain).
    pub cell: fn(&Row<'_>) -> Vec<u8>,
    /// The text came from another process (comm, user name).
    pub external: bool,
}

impl Column {
    /// The cell for a terminal table: text from other processes escaped.
    pub fn table_cell(&self, row: &Row<'_>) -> String {
        let raw = (self.cell)(row);
        if self.external {
            escape::bytes(&raw)
        } else {
            String::from_utf8_lossy(&raw).into_owned()
        }
    }

    /// The cell for `--plain`: always one awk word.
    pub fn plain_cell(&self, row: &Row<'_>) -> String {
        escape::field_bytes(&(self.cell)(row))
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}

pub const COLUMNS: &[Column] = &[
    Column {
        header: "COMMAND",
        doc: "process name (comm)",
        cell: |r| r.holder.comm.as_bytes().to_vec(),
        external: true,
    },
    Column {
        header: "PID",
        doc: "process id",
        cell: |r| r.holder.pid.to_string().into_bytes(),
        external: false,
    },
    Column {
        header: "PPID",
        doc: "parent process id (a forked worker points at its parent)",
        cell: |r| opt(r.holder.ppid).into_bytes(),
        external: false,
    },
    Column {
        header: "USER",
        doc: "effective user of the process",
        cell: |r| {
            r.holder
                .user
                .clone()
                .unwrap_or_else(|| opt(r.holder.uid))
                .into_bytes()
        },
        external: true,
    },
    Column {
        header: "FD",
        doc: "file descriptor number in that process",
        cell: |r| r.holder.fd.to_string().into_bytes(),
        external: false,
    },
    Column {
        header: "WAITING",
        doc: "threads blocked on this socket right now: accept, epoll, poll or select",
        cell: |r| r.waiting().into_bytes(),
        external: false,
    },
];

/// The one-line description of a socket that heads its block.
pub fn socket_line(s: &SocketReport) -> String {
    let kind = match s.proto {
        Proto::Tcp => String::new(),
        Proto::Udp => "  udp".to_string(),
        Proto::Unix => format!("  unix {}", s.sock_type),
    };
    let mut line = format!(
        "{}  {}{kind}  inode {}",
        local_label(s),
        state_label(s),
        s.inode
    );
    if let (Some(a), Some(p)) = (s.remote_addr, s.remote_port) {
        line = format!(
            "{} -> {}  {}{kind}  inode {}",
            local_label(s),
            addr_port(a, p),
            state_label(s),
            s.inode
        );
    }
    if let Some(peer) = s.peer {
        line.push_str(&format!("  peer inode {peer}"));
    }
    match s.path_status {
        Some(PathStatus::Unlinked) => line.push_str("  (path unlinked)"),
        Some(PathStatus::Replaced) => line.push_str("  (path now names another file)"),
        _ => {}
    }
    if let Some(q) = s.accept_queue {
        line.push_str(&format!("  accept queue {}/{}", q.depth, q.backlog));
        if s.backlog_clamped == Some(true) {
            line.push_str(" (backlog = somaxconn, may be clamped)");
        }
    }
    if let Some(q) = s.syn_queue {
        line.push_str(&format!("  syn queue {}", q.depth));
        if q.scope == SynScope::Group {
            line.push_str(" (whole group)");
        }
    }
    if let (Some(r), Some(w)) = (s.recv_q, s.send_q) {
        line.push_str(&format!("  recv-q {r} send-q {w}"));
    }
    if let (Proto::Udp, Some(b)) = (s.proto, s.rcvbuf) {
        line.push_str(&format!("  rcvbuf {b}"));
    }
    if let Some(d) = s.drops.filter(|d| *d > 0) {
        line.push_str(&format!("  drops {d}"));
    }
    if s.reuseport == Some(true) {
        line.push_str("  SO_REUSEPORT");
    }
    line
}

#[cfg(test)]
mod tests;
