//! The rescan policy `watch` and `export` share: the first sample is a
//! full pass; later ones ask netlink only (microseconds) and carry the
//! holders over, scanning only new processes every `NEW_PIDS`, with a
//! full /proc rescan when the socket set changes or every `RESCAN` — so
//! a 10 Hz watch or a 1 s scrape stays cheap on a crowded host. The
//! mechanism (`Collector::refresh`, `update_holders`) lives in collect.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::Collector;
use crate::error::Result;
use crate::model::Snapshot;
use crate::target::Query;

const RESCAN: Duration = Duration::from_secs(30);
const NEW_PIDS: Duration = Duration::from_secs(2);

pub struct Sampler {
    collector: Collector,
    query: Query,
    snap: Option<Snapshot>,
    last_scan: Instant,
    last_new_pids: Instant,
}

impl Sampler {
    pub fn new(query: &Query) -> Result<Self> {
        let now = Instant::now();
        Ok(Sampler {
            collector: Collector::new()?,
            query: query.clone(),
            snap: None,
            last_scan: now,
            last_new_pids: now,
        })
    }

    pub fn proc_root(&self) -> PathBuf {
        self.collector.proc_root().to_path_buf()
    }

    /// The current snapshot, collected as the policy says. After an error
    /// the next call starts over with a full pass.
    pub fn sample(&mut self) -> Result<&Snapshot> {
        let next = match self.snap.take() {
            Some(prev) if self.last_scan.elapsed() < RESCAN => self.refresh(&prev),
            _ => self.full(),
        };
        Ok(self.snap.insert(next?))
    }

    fn full(&mut self) -> Result<Snapshot> {
        let snap = self.collector.snapshot(&self.query)?;
        self.last_scan = Instant::now();
        self.last_new_pids = self.last_scan;
        Ok(snap)
    }

    fn refresh(&mut self, prev: &Snapshot) -> Result<Snapshot> {
        let mut snap = self.collector.refresh(&self.query, prev)?;
        if self.last_new_pids.elapsed() >= NEW_PIDS {
            self.collector.update_holders(&mut snap)?;
            self.last_new_pids = Instant::now();
        }
        Ok(snap)
    }
}
