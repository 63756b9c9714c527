//! JSON output: every document sockmap prints goes through here, from its
//! dedicated serde types (never string concatenation).

use std::io::{self, Write};

use serde::Serialize;

/// One pretty-printed document and a newline (inspect, check).
pub fn write(out: &mut impl Write, doc: &impl Serialize) -> io::Result<()> {
    // Serialize first, then write: a closed pipe then surfaces as the
    // io::Error it is (serde_json would wrap it and hide its kind).
    let mut text = serde_json::to_vec_pretty(doc).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}

/// One compact document on one line, flushed (watch's JSON lines).
pub fn line(out: &mut impl Write, doc: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_vec(doc).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)?;
    out.flush()
}
