//! `--plain`: one line per holder with the socket's columns repeated,
//! space-separated, no box drawing — for grep and awk, like lsof.

use std::io::{self, Write};

use super::{addr_port, Row, COLUMNS};
use crate::model::report::Report;

const SOCKET_HEADERS: [&str; 6] = ["LOCAL", "STATE", "INODE", "ACCEPTQ", "BACKLOG", "SYNQ"];

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = SOCKET_HEADERS.iter().map(|s| s.to_string()).collect();
    // With more than one namespace, each row says which (its nsfs inode).
    let several = super::netns::several(report);
    if several {
        header.push("NETNS".into());
    }
    header.extend(COLUMNS.iter().map(|c| c.header.to_string()));
    rows.push(header);
    for s in &report.sockets {
        let dash = || "-".to_string();
        let sock = vec![
            addr_port(s.local_addr, s.local_port),
            s.state.to_string(),
            s.inode.to_string(),
            s.accept_queue.map_or_else(dash, |q| q.depth.to_string()),
            s.accept_queue.map_or_else(dash, |q| q.backlog.to_string()),
            s.syn_queue.map_or_else(dash, |q| q.depth.to_string()),
        ];
        let mut sock = sock;
        if several {
            sock.push(s.netns.inode.to_string());
        }
        if s.holders.is_empty() {
            let mut r = sock.clone();
            r.extend(COLUMNS.iter().map(|_| dash()));
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
