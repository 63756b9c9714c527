//! `sockmap demo` end to end (small load so it is quick): exit 0, one
//! inode shared by both pids, then two inodes under SO_REUSEPORT.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

/// A child in its own process group, SIGKILLed (group) if still running
/// when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on the process group this test created.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

/// Read a pipe to its end on a thread, so a child writing more than a
/// pipe buffer (64 KiB) never blocks waiting for us.
fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Wait (bounded) for the child to exit, then collect both pipes.
fn finish(
    mut c: Owned,
    limit: Duration,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
) -> (ExitStatus, String, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = c.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text =
        |h: JoinHandle<Vec<u8>>| String::from_utf8_lossy(&h.join().expect("reader")).into_owned();
    (status, text(out), text(err))
}

fn demo(exe: &str, args: &[&str]) -> Owned {
    Owned(
        Command::new(exe)
            .arg("demo")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn demo"),
    )
}

#[test]
fn demo_shows_one_shared_inode_then_a_reuseport_group() {
    let mut child = demo(
        env!("CARGO_BIN_EXE_sockmap"),
        &["--clients", "200", "--rounds", "2", "--size", "16KiB"],
    );
    let out = drain(child.0.stdout.take().expect("stdout"));
    let err = drain(child.0.stderr.take().expect("stderr"));
    let (status, text, stderr) = finish(child, Duration::from_secs(120), out, err);
    assert_eq!(status.code(), Some(0), "{text}\n{stderr}");
    let text = text.as_str();

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

/// Ctrl-C ends the demo with 130 (as shells report an interrupted command),
/// documented in its --help.
#[test]
fn an_interrupted_demo_exits_130() {
    let mut child = demo(
        env!("CARGO_BIN_EXE_sockmap"),
        &["--clients", "50", "--rounds", "100000", "--size", "1KiB"],
    );
    let mut reader = BufReader::new(child.0.stdout.take().expect("stdout"));
    // The load is running once the load command line is printed.
    let mut started = false;
    let mut line = String::new();
    for _ in 0..50 {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("$ sockmap load") {
            started = true;
            break;
        }
    }
    assert!(started, "no load line");
    let out = drain(reader);
    let err = drain(child.0.stderr.take().expect("stderr"));
    // SAFETY: kill(2) on our own running child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let (status, _, stderr) = finish(child, Duration::from_secs(60), out, err);
    assert_eq!(status.code(), Some(130), "{stderr}");

    let help = Command::new(env!("CARGO_BIN_EXE_sockmap"))
        .args(["demo", "--help"])
        .output()
        .expect("demo --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("130"), "{help}");
    assert!(help.contains("interrupted"), "{help}");
}

/// A failure at run time is not bad usage: when the server it starts
/// answers with garbage, the demo says so and exits 3, not 2. The demo
/// starts `serve` from its own executable (/proc/self/exe); running a
/// copy that was deleted makes that path end in " (deleted)", and a
/// script by that name stands in for a broken server.
#[test]
fn a_server_that_never_gets_ready_is_a_runtime_failure() {
    let dir = std::env::temp_dir().join(format!("sockmap-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let copy = dir.join("sockmap");
    std::fs::copy(env!("CARGO_BIN_EXE_sockmap"), &copy).expect("copy the binary");
    let fake = dir.join("sockmap (deleted)");
    std::fs::write(&fake, "#!/bin/sh\necho 'this is not a ready line'\n").expect("script");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Keep the copy open, delete it, and run it through the open fd.
    let held = std::fs::File::open(&copy).expect("open the copy");
    std::fs::remove_file(&copy).expect("delete the copy");
    use std::os::fd::AsRawFd;
    let via = format!("/proc/{}/fd/{}", std::process::id(), held.as_raw_fd());
    let mut child = demo(&via, &["--clients", "5", "--rounds", "1", "--size", "1KiB"]);
    let out = drain(child.0.stdout.take().expect("stdout"));
    let err = drain(child.0.stderr.take().expect("stderr"));
    let (status, _, stderr) = finish(child, Duration::from_secs(60), out, err);
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("unexpected ready line from sockmap serve"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
