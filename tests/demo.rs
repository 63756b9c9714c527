//! `sockmap demo` end to end (small load so it is quick): exit 0, one
//! inode shared by both pids, then two inodes under SO_REUSEPORT.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_shows_one_shared_inode_then_a_reuseport_group() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockmap"))
        .args([
            "demo",
            "--clients",
            "200",
            "--rounds",
            "2",
            "--size",
            "16KiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            panic!("demo did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
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
    assert!(text.contains("one socket shared by 2 processes (fork)"));
    assert!(text.contains("2 sockets on 127.0.0.1:"));
    assert!(text.contains("(SO_REUSEPORT group): 2 accept queues"));
}
