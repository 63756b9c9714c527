//! Hard situations: not root, processes exiting during the scan, a
//! closed pipe. Listeners are owned by this test process, on loopback.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::json::{self, WarningKind};

const BIN: &str = env!("CARGO_BIN_EXE_sockmap");

/// Run sockmap as the unprivileged user `nobody` (65534).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn not_root_still_lists_sockets_and_says_what_is_missing() {
    if !common::require(common::is_root(), "root (to drop to nobody)")
        || !common::require(
            common::have_command("setpriv", "--version"),
            "`setpriv` (apt-get install util-linux)",
        )
    {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let _c = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let target = format!(":{p}");
    let out = as_nobody(&["inspect", &target, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json::report(&out.stdout);
    let s = &v.sockets[0];
    assert_eq!(
        s.accept_queue.map(|q| q.depth),
        Some(1),
        "queues come from netlink, no privilege needed"
    );
    assert_eq!(s.holders.len(), 0, "root's fds are not readable by nobody");
    let w = &v.warnings;
    assert!(
        w.iter().any(|w| w.kind == WarningKind::ProcessesUnreadable
            && w.count > 0
            && w.message.contains("could not be read (permission denied)")),
        "{w:?}"
    );
    // The table says it too, on stderr, and still exits 0.
    let out = as_nobody(&["inspect", &target]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("run as root"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no holder visible"));
}

/// Kill a spawned process group on drop.
struct Group(std::process::Child);
impl Drop for Group {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn churning_processes_do_not_disturb_the_result() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    use std::os::fd::AsRawFd;
    let fd = l.as_raw_fd();
    // Short-lived processes appear and vanish while we scan: at most ~20 s.
    let churn = Group(
        Command::new("sh")
            .args(["-c", "end=$(( $(date +%s) + 20 )); while [ $(date +%s) -lt $end ]; do for i in 1 2 3 4 5 6 7 8; do sleep 0.01 & done; wait; done"])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    for _ in 0..15 {
        let out = Command::new(BIN)
            .args(["inspect", &format!(":{p}"), "--json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json::report(&out.stdout);
        // Another test of this binary spawning a process forks us: until
        // that child execs it really holds our fds (close-on-exec acts at
        // exec), so sockmap rightly names it. Those are not the churn.
        let me = std::process::id();
        let holders: Vec<_> = v.sockets[0]
            .holders
            .iter()
            .filter(|h| !(h.ppid == Some(me) && h.fd == fd as u32 && h.pid != me))
            .collect();
        assert_eq!(holders.len(), 1, "{:?}", v.sockets[0].holders);
        assert_eq!(holders[0].pid, me);
        assert_eq!(holders[0].fd, fd as u32);
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    drop(churn);
}

#[test]
fn closed_pipe_exits_quietly() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    // `sockmap inspect --json | head -c 0`: the reader is gone before we write.
    let mut child = Command::new(BIN)
        .args(["inspect", &format!(":{p}"), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // close the read end before it writes
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_colour_when_not_a_terminal_or_no_color_set() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["inspect", &format!(":{p}")])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b), "escape codes with NO_COLOR");
    let out = Command::new(BIN)
        .args(["inspect", &format!(":{p}")])
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b), "escape codes on a pipe");
    let out = Command::new(BIN)
        .args(["inspect", &format!(":{p}"), "--color", "always"])
        .output()
        .unwrap();
    assert!(out.stdout.contains(&0x1b), "--color always colours");
}
