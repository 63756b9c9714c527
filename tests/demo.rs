//! `sockmap demo` end to end (small load so it is quick): exit 0, one
//! inode shared by both pids, then two inodes under SO_REUSEPORT. Its
//! output is read while it runs (a full pipe cannot stall it), and it is
//! killed with its process group if it overruns.

use std::time::Duration;

mod common;

#[test]
fn demo_shows_one_shared_inode_then_a_reuseport_group() {
    let out = common::run_bounded(
        common::sockmap(&[
            "demo",
            "--clients",
            "200",
            "--rounds",
            "2",
            "--size",
            "16KiB",
        ]),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // "Proof: pid A fd 3, pid B fd 3 both point to ONE socket, inode N"
    let proof = text
        .lines()
        .find(|l| l.starts_with("Proof: pid"))
        .expect("a proof line");
    assert!(proof.contains("both point to ONE socket, inode"), "{proof}");
    let pids: Vec<&str> = proof
        .split("pid ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{proof}");
    // The serve line names the same two pids.
    let serve = text
        .lines()
        .find(|l| l.contains("(shared socket)"))
        .unwrap();
    for p in &pids {
        assert!(serve.contains(p), "{serve} lacks {p}");
        assert!(
            text.contains(&format!("pid {p} accepted")),
            "distribution lacks {p}"
        );
    }
    let shared = format!(
        "one socket shared by {}2 processes (fork",
        common::at_least()
    );
    assert!(text.contains(&shared), "{shared}: {text}");
    assert!(text.contains("2 sockets on 127.0.0.1:"));
    assert!(text.contains("(SO_REUSEPORT group): 2 accept queues"));
}
