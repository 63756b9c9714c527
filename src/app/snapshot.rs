//! Recorded snapshots: `sockmap snapshot` takes one collection pass and
//! writes it with its query (`model::recording`); `inspect --from` and
//! `check --from` read one back in place of the live kernel, and
//! `inspect --save` writes what it rendered. The replay seam sits between
//! collect and analyze: a recording holds what a pass saw, never a
//! rendered report, so the same analysis and rendering run on it.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{stdout_err, SnapshotConfig};
use crate::error::{exit, Error, Result};
use crate::model::recording::{RecordedQuery, Recording, FORMAT};
use crate::model::Snapshot;
use crate::target::{self, Query};
use crate::{collect, render};

/// `sockmap snapshot`: one pass, written to the file (or stdout for `-`).
pub fn run(cfg: &SnapshotConfig, out: &mut impl Write, err: &mut impl Write) -> Result<i32> {
    let snap = collect::collect_in(&cfg.query, cfg.netns.clone())?;
    save(&cfg.output, &cfg.query, &snap, out)?;
    render::warnings(err, &snap.warnings);
    Ok(exit::OK)
}

/// The recording of `snap`, taken now, answering `query`.
pub fn record(query: &Query, snap: &Snapshot) -> Recording {
    Recording {
        sockmap_snapshot: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        taken: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        query: RecordedQuery {
            targets: query.targets.iter().map(|t| t.to_string()).collect(),
            all_states: query.all_states,
            only: query.only.clone(),
        },
        snapshot: snap.clone(),
    }
}

/// Write the recording of `snap` to `path` (`-`: to `out`).
pub fn save(path: &Path, query: &Query, snap: &Snapshot, out: &mut impl Write) -> Result<()> {
    let rec = record(query, snap);
    let mut text =
        serde_json::to_vec(&rec).map_err(|e| Error::os("cannot encode the snapshot", e.into()))?;
    text.push(b'\n');
    if path == Path::new("-") {
        out.write_all(&text).map_err(stdout_err)?;
        return out.flush().map_err(stdout_err);
    }
    std::fs::write(path, &text)
        .map_err(|e| Error::os(format!("cannot write {}", path.display()), e))
}

/// Read a recording from `path` (`-`: stdin): the query it answered and
/// what the pass saw. Anything that is not a recording this build reads is
/// a usage error naming the file.
pub fn load(path: &Path) -> Result<(Query, Snapshot)> {
    // The path and the reasons (which may quote the file) are escaped:
    // both reach a terminal.
    let bad = |why: String| {
        Error::Usage(format!(
            "{}: {}",
            crate::escape::bytes(path.as_os_str().as_encoded_bytes()),
            crate::escape::terminal(&why)
        ))
    };
    let mut text = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut text).map(|_| ()))
    };
    read.map_err(|e| bad(format!("cannot read: {e}")))?;
    parse(&text).map_err(bad)
}

/// A recording's bytes to its query and snapshot; the error says why not.
pub fn parse(text: &[u8]) -> Result<(Query, Snapshot), String> {
    // The format number first, so a newer file says so rather than
    // failing on a field this build does not know.
    #[derive(serde::Deserialize)]
    struct Head {
        sockmap_snapshot: Option<serde_json::Value>,
    }
    let head: Head = serde_json::from_slice(text)
        .map_err(|e| format!("not a sockmap snapshot (bad JSON: {e})"))?;
    match head.sockmap_snapshot {
        None => return Err("not a sockmap snapshot (no \"sockmap_snapshot\" field)".into()),
        Some(v) if v != FORMAT => {
            return Err(format!(
                "sockmap snapshot format {v} is not one this build reads (it reads {FORMAT})"
            ))
        }
        Some(_) => {}
    }
    let rec: Recording =
        serde_json::from_slice(text).map_err(|e| format!("not a valid sockmap snapshot: {e}"))?;
    let mut targets = Vec::with_capacity(rec.query.targets.len());
    for t in &rec.query.targets {
        targets
            .push(target::parse(t).map_err(|e| format!("bad target in the recorded query: {e}"))?);
    }
    let query = Query::new(targets)
        .with_all_states(rec.query.all_states)
        .with_only_protos(&rec.query.only);
    Ok((query, rec.snapshot))
}
