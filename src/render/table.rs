//! The lsof-like table: one block per socket (a heading line, holders as
//! rows), and after each listener group its verdict.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, ContentArrangement, Table};

use super::{socket_line, Row, COLUMNS};
use crate::model::report::{Report, SocketReport};

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

pub fn write(out: &mut impl Write, report: &Report, color: bool) -> io::Result<()> {
    // A verdict follows the last socket of its group.
    let mut last_of_group = std::collections::HashMap::new();
    for g in &report.groups {
        if let Some(last) = g.inodes.last() {
            last_of_group.insert(*last, g);
        }
    }
    // Namespaces are named only when more than one is involved.
    let several = super::netns::several(report);
    let mut last_ns = None;
    for (i, s) in report.sockets.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if several && last_ns != Some(s.netns.inode) {
            last_ns = Some(s.netns.inode);
            let heading = format!("── {} ──", super::netns::label(&s.netns));
            if color {
                writeln!(out, "{BOLD}{heading}{RESET}")?;
            } else {
                writeln!(out, "{heading}")?;
            }
        }
        if color {
            writeln!(out, "{BOLD}{}{RESET}", socket_line(s))?;
        } else {
            writeln!(out, "{}", socket_line(s))?;
        }
        if s.holders.is_empty() {
            writeln!(out, "  (no holder found)")?;
        } else {
            writeln!(out, "{}", holder_table(s, color))?;
        }
        for h in s.holders.iter().filter(|h| h.netns.is_some()) {
            if let Some(theirs) = h.netns {
                writeln!(
                    out,
                    "  (pid {} is itself in netns {theirs}, not the socket's netns {})",
                    h.pid, s.netns.inode
                )?;
            }
        }
        if let Some(g) = last_of_group.get(&s.inode) {
            writeln!(out, "→ {}", g.verdict)?;
        }
    }
    Ok(())
}

fn holder_table(s: &SocketReport, color: bool) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(COLUMNS.iter().map(|c| {
        let cell = Cell::new(c.header);
        if color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for h in &s.holders {
        let row = Row {
            socket: s,
            holder: h,
        };
        t.add_row(COLUMNS.iter().map(|c| c.table_cell(&row)));
    }
    t
}
