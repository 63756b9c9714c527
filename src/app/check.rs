//! `sockmap check`: one pass (or a recorded one), the assertions
//! evaluated, exit 0 or 1.

use std::io::Write;

use super::{stdout_err, CheckConfig};
use crate::analyze::check::Status;
use crate::error::{exit, Result};
use crate::{analyze, collect, render};

pub fn run(cfg: &CheckConfig, out: &mut impl Write, err: &mut impl Write) -> Result<i32> {
    // A recording stands in for the kernel: nothing is collected.
    let (query, snap) = match &cfg.from {
        Some(path) => super::snapshot::load(path)?,
        None => (
            cfg.query.clone(),
            collect::collect_with(&cfg.query, cfg.netns.clone(), cfg.scan)?,
        ),
    };
    super::tell_scan(err, cfg.scan, snap.scan.as_ref());
    let report = analyze::report(&query, &snap);
    let outcome = analyze::check::evaluate(&cfg.assertions, &report);
    if cfg.json {
        render::json::write(out, &outcome)
    } else {
        render::check::write_text(out, &outcome)
    }
    .map_err(stdout_err)?;
    if !cfg.json {
        render::warnings(err, &outcome.warnings);
    }
    Ok(match outcome.status {
        Status::Ok => exit::OK,
        Status::Fail => exit::NOT_FOUND,
        Status::Unknown => exit::UNKNOWN,
    })
}
