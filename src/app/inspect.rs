//! `sockmap inspect`: one pass, one report, rendered.

use std::io::Write;

use super::{Format, InspectConfig};
use crate::error::{exit, Result};
use crate::{analyze, collect, render};

pub fn run(cfg: &InspectConfig, out: &mut impl Write, err: &mut impl Write) -> Result<i32> {
    let snap = collect::collect_in(&cfg.query, cfg.netns.clone())?;
    let report = analyze::report(&cfg.query, &snap);
    match cfg.format {
        Format::Json => render::json::write(out, &report),
        Format::Plain => render::plain::write(out, &report),
        Format::Table => render::table::write(out, &report, cfg.color),
    }
    .map_err(super::stdout_err)?;
    out.flush().map_err(super::stdout_err)?;
    if cfg.format != Format::Json {
        render::warnings(err, &report.warnings);
    }
    if report.sockets.is_empty() {
        let what = if cfg.query.wants_all_states() {
            "TCP socket"
        } else {
            "listening TCP socket"
        };
        let hint = if cfg.query.wants_all_states() {
            ""
        } else {
            " (add --all for other states)"
        };
        let _ = writeln!(err, "sockmap: no {what} matches {}{hint}", cfg.query);
        return Ok(exit::NOT_FOUND);
    }
    Ok(exit::OK)
}
