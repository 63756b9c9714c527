//! `--plain`: one line per holder with the socket's columns repeated,
//! space-separated, no box drawing — for grep and awk, like lsof.

use std::io::{self, Write};

use super::{local_label, state_label, Row, COLUMNS};
use crate::model::report::Report;
use crate::model::Proto;

const SOCKET_HEADERS: [&str; 6] = ["LOCAL", "STATE", "INODE", "ACCEPTQ", "BACKLOG", "SYNQ"];
/// After the holder columns, so the older columns keep their awk numbers.
const TAIL_HEADERS: [&str; 4] = ["PROTO", "RECVQ", "RCVBUF", "DROPS"];

/// An already escaped label as one awk word: whitespace (a unix path may
/// hold any) made visible too.
fn one_word(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        match c {
            ' ' => out.push_str("\\x20"),
            c if c.is_whitespace() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = SOCKET_HEADERS.iter().map(|s| s.to_string()).collect();
    header.extend(COLUMNS.iter().map(|c| c.header.to_string()));
    header.extend(TAIL_HEADERS.iter().map(|s| s.to_string()));
    // With more than one namespace, each row ends with which (its nsfs inode).
    let several = super::netns::several(report);
    if several {
        header.push("NETNS".into());
    }
    rows.push(header);
    for s in &report.sockets {
        let dash = || "-".to_string();
        let sock = vec![
            one_word(&local_label(s)),
            state_label(s),
            s.inode.to_string(),
            s.accept_queue.map_or_else(dash, |q| q.depth.to_string()),
            s.accept_queue.map_or_else(dash, |q| q.backlog.to_string()),
            s.syn_queue.map_or_else(dash, |q| q.depth.to_string()),
        ];
        let proto = match s.proto {
            Proto::Unix => format!("unix/{}", s.sock_type),
            p => p.to_string(),
        };
        let mut tail = vec![
            proto,
            s.recv_q.map_or_else(dash, |v| v.to_string()),
            s.rcvbuf.map_or_else(dash, |v| v.to_string()),
            s.drops.map_or_else(dash, |v| v.to_string()),
        ];
        if several {
            tail.push(s.netns.inode.to_string());
        }
        if s.holders.is_empty() {
            let mut r = sock.clone();
            r.extend(COLUMNS.iter().map(|_| dash()));
            r.extend(tail.iter().cloned());
            rows.push(r);
        }
        for h in &s.holders {
            let row = Row {
                socket: s,
                holder: h,
            };
            let mut r = sock.clone();
            // Escaped so that each cell is one awk word, whatever a
            // process named itself.
            r.extend(COLUMNS.iter().map(|c| c.plain_cell(&row)));
            r.extend(tail.iter().cloned());
            rows.push(r);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$} ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
