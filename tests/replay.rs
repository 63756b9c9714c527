//! Recorded snapshots: what `inspect --save` and `sockmap snapshot` write,
//! `inspect --from` and `check --from` read back without the kernel. The
//! live tests record a forked `sockmap serve` and replay it in the same
//! format (byte-identical output), also as an unprivileged user; the
//! fixture test renders a committed recording of such a server, so
//! analysis and rendering are tested on real data anywhere.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::{run_bounded, sockmap, ServeProc};

const LIMIT: Duration = Duration::from_secs(60);

/// A directory of our own, world-readable (the unprivileged run reads
/// from it), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("sockmap-replay-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    run_bounded(sockmap(args), LIMIT)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `args` run as nobody (uid/gid 65534, no groups) through setpriv.
fn as_nobody(args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        common::BIN,
    ])
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    run_bounded(cmd, LIMIT)
}

#[test]
fn a_saved_inspect_replays_to_the_same_output_in_every_format() {
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!("127.0.0.1:{}", serve.port);
    let dir = TempDir::new("formats");
    let nobody = common::require(
        common::is_root() && common::have_command("setpriv", "--version"),
        "root and setpriv (apt-get install util-linux) to replay as nobody",
    );
    for (name, format) in [
        ("table", None),
        ("plain", Some("--plain")),
        ("json", Some("--json")),
    ] {
        let file = dir.file(&format!("{name}.json"));
        let mut live_args = vec!["inspect", &target, "--save", path(&file)];
        live_args.extend(format);
        let live = run(&live_args);
        assert_eq!(live.status.code(), Some(0), "{name}: {}", stderr(&live));
        assert!(!live.stdout.is_empty());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        let mut replay_args = vec!["inspect", "--from", path(&file)];
        replay_args.extend(format);
        let replay = run(&replay_args);
        assert_eq!(replay.status.code(), Some(0), "{name}: {}", stderr(&replay));
        assert_eq!(
            String::from_utf8_lossy(&replay.stdout),
            String::from_utf8_lossy(&live.stdout),
            "{name}: the replay differs from what was shown"
        );
        // The same warnings, too: they are part of what was seen.
        assert_eq!(stderr(&replay), stderr(&live), "{name}");

        if nobody {
            let unpriv = as_nobody(&replay_args);
            assert_eq!(
                unpriv.status.code(),
                Some(0),
                "{name} as nobody: {}",
                stderr(&unpriv)
            );
            assert_eq!(
                String::from_utf8_lossy(&unpriv.stdout),
                String::from_utf8_lossy(&live.stdout),
                "{name}: the replay as nobody differs"
            );
        }
    }
    // The recording names both processes of the server.
    let text = std::fs::read_to_string(dir.file("json.json")).expect("read recording");
    let rec: serde_json::Value = serde_json::from_str(&text).expect("a recording is JSON");
    assert_eq!(rec["sockmap_snapshot"], 1);
    assert_eq!(rec["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(rec["query"]["targets"][0], target.as_str());
    let holders: Vec<u64> = rec["snapshot"]["holders"]
        .as_object()
        .expect("holders by inode")
        .values()
        .flat_map(|v| v.as_array().expect("a list").iter())
        .map(|h| h["pid"].as_u64().expect("pid"))
        .collect();
    for pid in &serve.pids {
        assert!(
            holders.contains(&u64::from(*pid)),
            "{pid} not in {holders:?}"
        );
    }
}

#[test]
fn check_from_a_recording_evaluates_it_without_collecting() {
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!("127.0.0.1:{}", serve.port);
    let dir = TempDir::new("check");
    let file = dir.file("snap.json");
    let snap = run(&["snapshot", &target, "-o", path(&file)]);
    assert_eq!(snap.status.code(), Some(0), "{}", stderr(&snap));
    assert!(snap.stdout.is_empty(), "the recording goes to the file");
    // Decided (0/1), or unknown (4) while some process's fds are
    // unreadable: a holder may be missing.
    let decided = common::holders_decided();
    drop(serve); // the server is gone: only the recording can answer now

    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--from", path(&file)];
        args.extend_from_slice(extra);
        run(&args)
    };
    let two = check(&["--holders", "2"]);
    assert_eq!(
        two.status.code(),
        Some(if decided { 0 } else { 4 }),
        "{}",
        stderr(&two)
    );
    let out = String::from_utf8_lossy(&two.stdout);
    assert!(out.contains(&format!("check {target}:")), "{out}");
    let three = check(&["--holders", "3"]);
    assert_eq!(
        three.status.code(),
        Some(if decided { 1 } else { 4 }),
        "{}",
        stderr(&three)
    );
    // Two holders seen: exactly one is false however many were hidden.
    let one = check(&["--holders", "1"]);
    assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
    // `-o -` writes the same kind of document to stdout.
    let stdout = run(&["snapshot", "-o", "-", "-t"]);
    assert_eq!(stdout.status.code(), Some(0), "{}", stderr(&stdout));
    let v: serde_json::Value = serde_json::from_slice(&stdout.stdout).expect("JSON on stdout");
    assert_eq!(v["query"]["only"], serde_json::json!(["tcp"]));
}

#[test]
fn a_file_that_is_not_a_recording_is_a_usage_error_naming_it() {
    let dir = TempDir::new("bad");
    let good = r#"{"sockmap_snapshot":1,"version":"0.0.0","taken":0,"query":{"targets":[":8000"],"all_states":false,"only":[]},"snapshot":{"sockets":[],"holders":{},"request_socks":null,"waiters":{},"reuseport":{},"host":{"somaxconn":null,"tcp_max_syn_backlog":null,"syncookies":null},"warnings":[],"netns":{"own":0,"namespaces":{},"of_socket":{},"of_pid":{}},"forwards":{}}}"#;
    // The well-formed one reads: nothing matches :8000 in it (exit 1).
    let ok = dir.file("good.json");
    std::fs::write(&ok, good).expect("write");
    let o = run(&["inspect", "--from", path(&ok)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no listening TCP socket matches :8000"),
        "{}",
        stderr(&o)
    );

    // A target from a file reaches the terminal escaped.
    let esc = dir.file("escape.json");
    std::fs::write(
        &esc,
        good.replace(r#"":8000""#, r#""unix:/tmp/\u001b[31mred""#),
    )
    .expect("write");
    let o = run(&["inspect", "--from", path(&esc)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\x1b'), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r"unix:/tmp/\x1b[31mred"),
        "{}",
        stderr(&o)
    );

    let cases = [
        ("garbage", "this is not JSON\n".to_string(), "bad JSON"),
        ("empty", String::new(), "bad JSON"),
        (
            "other",
            r#"{"hello": 1}"#.to_string(),
            "no \"sockmap_snapshot\"",
        ),
        (
            "version",
            good.replace(r#""sockmap_snapshot":1"#, r#""sockmap_snapshot":2"#),
            "format 2",
        ),
        (
            "target",
            good.replace(r#"":8000""#, r#""tcp:nope:x""#),
            "bad target",
        ),
        (
            "state",
            good.replace(
                r#""warnings":[]"#,
                r#""warnings":[{"kind":"bogus","count":1}]"#,
            ),
            "bogus",
        ),
    ];
    for (name, text, why) in cases {
        let file = dir.file(&format!("{name}.json"));
        std::fs::write(&file, text).expect("write");
        for cmd in ["inspect", "check"] {
            let o = run(&[cmd, "--from", path(&file)]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {name}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd} {name}: one line: {err}");
            assert!(
                err.starts_with(&format!("sockmap: {}: ", path(&file))),
                "{cmd} {name}: {err}"
            );
            assert!(err.contains(why), "{cmd} {name}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let missing = run(&["inspect", "--from", path(&dir.file("absent.json"))]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    // --from brings its own query: targets and selection flags are usage errors.
    for extra in [
        &[":8000"][..],
        &["--all"],
        &["-u"],
        &["--netns", "self"],
        &["--save", "x"],
    ] {
        let mut args = vec!["inspect", "--from", path(&ok)];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    let o = run(&["check", "--from", path(&ok), ":8000"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["snapshot", ":8000"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "snapshot needs -o: {}",
        stderr(&o)
    );
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A recording of `sockmap serve --workers 2` (two processes sharing one
/// listener, both blocked in accept), with what live `inspect` showed
/// then: its table and JSON must come back from the recording, anywhere,
/// unprivileged. Regenerate with `cargo test --test replay -- --ignored`.
#[test]
fn the_recorded_fork_server_renders_as_it_did_live() {
    let rec = fixtures().join("forked.snapshot.json");
    for (golden, extra) in [
        ("forked.table.txt", None),
        ("forked.inspect.json", Some("--json")),
    ] {
        let mut args = vec!["inspect", "--from", path(&rec)];
        args.extend(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let want = std::fs::read_to_string(fixtures().join(golden)).expect("read golden");
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{golden}");
    }
    let table = std::fs::read_to_string(fixtures().join("forked.table.txt")).expect("read");
    assert!(table.contains("one socket shared by"), "{table}");
    assert_eq!(table.matches("accept  │").count(), 2, "{table}");
}

#[test]
#[ignore = "writes tests/fixtures: run by hand to record a new fixture"]
fn record_the_fork_server_fixture() {
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!("127.0.0.1:{}", serve.port);
    let rec = fixtures().join("forked.snapshot.json");
    let o = run(&["snapshot", &target, "-o", path(&rec)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (golden, extra) in [
        ("forked.table.txt", None),
        ("forked.inspect.json", Some("--json")),
    ] {
        let mut args = vec!["inspect", &target];
        args.extend(extra);
        let live = run(&args);
        assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
        std::fs::write(fixtures().join(golden), &live.stdout).expect("write golden");
    }
    drop(serve);
}
