//! `comm:NAME` targets: the pids whose command name (`/proc/PID/comm`) is
//! NAME, so the pass treats them like `pid:` targets. Reads only.

use std::path::Path;

use super::fdscan;
use crate::target::{Query, Target};

/// `query` with a `pid:` target added for every process whose comm is
/// named by a `comm:` target; `None` when the query has no `comm:` target.
/// A process that exits meanwhile is simply not added.
pub fn with_comm_pids(proc_root: &Path, query: &Query) -> Option<Query> {
    let names: Vec<&[u8]> = query.comms().map(str::as_bytes).collect();
    if names.is_empty() {
        return None;
    }
    let mut q = query.clone();
    let mut pids = fdscan::list_pids(proc_root).unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        let Ok(comm) = std::fs::read(proc_root.join(format!("{pid}/comm"))) else {
            continue;
        };
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        if names.contains(&comm) {
            q.targets.push(Target::Pid(pid));
        }
    }
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse;

    /// A fake /proc with three processes, one of them named twice.
    #[test]
    fn pids_by_command_name() {
        let dir = std::env::temp_dir().join(format!("sockmap-comm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, comm) in [
            (10, "nginx\n"),
            (11, "php-fpm\n"),
            (12, "nginx\n"),
            (13, "nginx-x\n"),
        ] {
            std::fs::create_dir_all(dir.join(pid.to_string())).expect("mkdir");
            std::fs::write(dir.join(format!("{pid}/comm")), comm).expect("write");
        }
        std::fs::create_dir_all(dir.join("self")).expect("mkdir");
        let q = Query::new(vec![parse("comm:nginx").expect("target")]);
        let got = with_comm_pids(&dir, &q).expect("a comm target");
        let pids: Vec<u32> = got.pids().collect();
        assert_eq!(pids, vec![10, 12]);
        assert_eq!(
            with_comm_pids(&dir, &Query::new(vec![parse(":80").expect("t")])),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
