//! The JSON document (schema 1): the report's serde types, pretty-printed.

use std::io::{self, Write};

use crate::model::report::Report;

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    // Serialize first, then write: a closed pipe then surfaces as the
    // io::Error it is (serde_json would wrap it and hide its kind).
    let mut text = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}
