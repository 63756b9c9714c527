//! The JSON contract: the committed schemas under schema/ are what the
//! serde types generate (a drift test, like the man pages'), and what
//! sockmap really prints validates against them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::json::{self, Status};
use common::{run_bounded, sockmap, ServeProc};
use sockmap::lab::message::{LoadModeName, LoadReport, ServeReady, ServeReport};

const FIX: &str = "run `cargo run -- generate schema` and commit schema/";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("sockmap-schema-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn committed_schemas_match_the_types() {
    let tmp = TempDir::new();
    let out = run_bounded(
        {
            let mut c = sockmap(&["generate", "schema"]);
            c.arg(&tmp.0);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0));
    let mut names: Vec<String> = std::fs::read_dir(&tmp.0)
        .expect("generated")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "check.json",
            "inspect.json",
            "load-report.json",
            "serve-ready.json",
            "serve-report.json",
            "snapshot.json",
            "watch-sample.json"
        ]
    );
    for name in &names {
        let fresh = std::fs::read(tmp.0.join(name)).expect("generated file");
        let committed = std::fs::read(repo().join("schema").join(name))
            .unwrap_or_else(|e| panic!("schema/{name}: {e}: {FIX}"));
        assert!(fresh == committed, "schema/{name} is stale: {FIX}");
    }
}

/// Validate `doc` against the committed schema `name`, listing every error.
fn assert_valid(name: &str, doc: &Value) {
    let schema = read_json(&repo().join("schema").join(name));
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("schema/{name} is not a valid schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc:#}");
}

fn json_of(args: &[&str]) -> Value {
    let out = run_bounded(sockmap(args), Duration::from_secs(60));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn real_output_validates_against_the_schemas() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _waiting = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let target = format!("127.0.0.1:{port}");

    // Each document is validated against the schema as raw JSON, and
    // read by the tests' own strict types (tests/common/json.rs).
    let report = json_of(&["inspect", &target, "--json"]);
    assert_valid("inspect.json", &report);
    let read: json::Report = typed(&report);
    assert_eq!(read.sockets[0].accept_queue.map(|q| q.depth), Some(1));
    // Every state, with a connection on the port.
    let all = json_of(&["inspect", &target, "--all", "--json"]);
    assert_valid("inspect.json", &all);
    typed::<json::Report>(&all);
    // Warnings present: a pid that does not exist.
    let gone = json_of(&["inspect", "pid:4194300", "--json"]);
    assert_valid("inspect.json", &gone);
    assert!(!typed::<json::Report>(&gone).warnings.is_empty());

    // A failure that does not depend on holders (some process's fds may
    // be unreadable even to root, which makes a holder check unknown).
    let check = json_of(&["check", &target, "--max-accept-queue", "0", "--json"]);
    assert_valid("check.json", &check);
    assert_eq!(typed::<json::CheckOutcome>(&check).status, Status::Fail);

    let out = run_bounded(
        sockmap(&[
            "watch",
            &target,
            "--count",
            "2",
            "--interval",
            "20ms",
            "--json",
        ]),
        Duration::from_secs(60),
    );
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        let v: Value = serde_json::from_slice(line).expect("a JSON line");
        assert_valid("watch-sample.json", &v);
        typed::<json::Sample>(&v);
    }
}

/// `doc` read by the tests' own strict types; panics with the error.
#[track_caller]
fn typed<T: serde::de::DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("not the documented JSON ({e}):\n{doc:#}"))
}

#[test]
fn recorded_snapshots_validate_against_the_schema() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _waiting = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let live = json_of(&["snapshot", &format!("127.0.0.1:{port}"), "-o", "-"]);
    assert_eq!(live["snapshot"]["sockets"][0]["rqueue"], 1);
    assert_valid("snapshot.json", &live);
    let fixture = read_json(&repo().join("tests/fixtures/forked.snapshot.json"));
    assert_valid("snapshot.json", &fixture);
}

/// `sockmap load --json ARGS` against `target`: its exit code and report.
fn load_json(target: &str, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["load", "--connect", target, "--json"];
    all.extend_from_slice(args);
    let out = run_bounded(sockmap(&all), Duration::from_secs(120));
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{all:?}: not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

#[test]
fn the_lab_output_validates_against_the_schemas() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let ready: Value = serde_json::from_str(&serve.ready_line).expect("the ready line is JSON");
    assert_valid("serve-ready.json", &ready);
    assert_eq!(typed::<ServeReady>(&ready), serve.ready);
    let target = format!("127.0.0.1:{}", serve.port);

    // Echo: every client succeeds, percentiles are numbers, no hold time.
    let (code, echo) = load_json(&target, &["--clients", "4", "--rounds", "2"]);
    assert_eq!(code, Some(0), "{echo:#}");
    assert_valid("load-report.json", &echo);
    let read: LoadReport = typed(&echo);
    assert_eq!((read.mode, read.hold_seconds), (LoadModeName::Echo, None));
    assert!(read.round_trip_ms.p99.is_some());

    // Hold: a hold time.
    let (code, hold) = load_json(
        &target,
        &["--mode", "hold", "--hold", "100ms", "--clients", "2"],
    );
    assert_eq!(code, Some(0), "{hold:#}");
    assert_valid("load-report.json", &hold);
    assert_eq!(typed::<LoadReport>(&hold).hold_seconds, Some(0.1));

    // Failures: a listener nobody accepts from never echoes, so every
    // client times out, and the first error is named.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, failed) = load_json(
        &silent.local_addr().unwrap().to_string(),
        &["--clients", "2", "--timeout", "300ms"],
    );
    assert_eq!(code, Some(1), "{failed:#}");
    assert_valid("load-report.json", &failed);
    let read: LoadReport = typed(&failed);
    assert_eq!((read.failed, read.failures.timeout), (2, 2), "{failed:#}");
    assert_eq!(read.first_errors.len(), 1, "{failed:#}");

    // The report, with a worker that died: its count is null.
    serve.kill_worker(serve.children()[0]);
    let stdout = serve.terminate();
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"done\""))
        .unwrap_or_else(|| panic!("no report line: {stdout:?}"));
    let raw: Value = serde_json::from_str(line).expect("the report line is JSON");
    assert_valid("serve-report.json", &raw);
    let read: ServeReport = typed(&raw);
    assert!(read.workers.iter().any(|w| w.accepted.is_none()), "{raw:#}");
    assert_eq!(
        serde_json::to_string(&read).unwrap(),
        line,
        "writes back byte for byte"
    );
    // A null that is always written may not be left out, a mode must be
    // one of the two: the schemas say so, and so do the readers.
    let mut no_count = raw.clone();
    no_count["workers"][1]
        .as_object_mut()
        .unwrap()
        .remove("accepted");
    let mut no_hold = echo.clone();
    no_hold.as_object_mut().unwrap().remove("hold_seconds");
    let mut forked = ready.clone();
    forked["mode"] = Value::from("forked");
    for (name, doc) in [
        ("serve-report.json", &no_count),
        ("load-report.json", &no_hold),
        ("serve-ready.json", &forked),
    ] {
        let schema = read_json(&repo().join("schema").join(name));
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        assert!(!validator.is_valid(doc), "{name} accepts {doc:#}");
    }
    assert!(serde_json::from_value::<ServeReport>(no_count).is_err());
    assert!(serde_json::from_value::<LoadReport>(no_hold).is_err());
    assert!(serde_json::from_value::<ServeReady>(forked).is_err());
}

#[test]
fn the_schemas_reject_what_the_contract_forbids() {
    // The validator is not vacuous: a report missing a required field, or
    // with a wrong type, fails.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let mut report = json_of(&["inspect", &target, "--json"]);
    let schema = read_json(&repo().join("schema/inspect.json"));
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    assert!(validator.is_valid(&report));
    report["sockets"][0]["inode"] = Value::String("seven".into());
    assert!(!validator.is_valid(&report));
    report.as_object_mut().unwrap().remove("groups");
    assert!(!validator.is_valid(&report));
}

#[test]
fn the_tests_readers_reject_what_the_contract_forbids() {
    // The tests' own types (tests/common/json.rs) are not vacuous: a
    // real report reads, and each change the contract does not allow fails.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let mut report = json_of(&["inspect", &target, "--json"]);
    // A warning with no hint, which therefore leaves `hint` out.
    let gone = json_of(&["inspect", "pid:4194300", "--json"]);
    let no_such = gone["warnings"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["kind"] == "no_such_process"))
        .unwrap_or_else(|| panic!("a no_such_process warning: {gone:#}"));
    assert!(no_such.get("hint").is_none(), "{no_such:#}");
    report["warnings"] = Value::Array(vec![no_such.clone()]);
    let reads = |doc: &Value| serde_json::from_value::<json::Report>(doc.clone()).is_ok();
    assert!(reads(&report), "{report:#}");

    type Edit = fn(&mut Value);
    let forbidden: [(&str, Edit); 10] = [
        ("a field added to the report", |r| {
            r["extra"] = Value::Bool(true);
        }),
        ("a field added to a socket", |r| {
            r["sockets"][0]["extra"] = Value::Bool(true);
        }),
        ("a field added to a holder", |r| {
            r["sockets"][0]["holders"][0]["extra"] = Value::Bool(true);
        }),
        ("a field added to a group", |r| {
            r["groups"][0]["extra"] = Value::Bool(true);
        }),
        ("a field added to a warning", |r| {
            r["warnings"][0]["extra"] = Value::Bool(true);
        }),
        ("a field that is null when empty left out", |r| {
            r["sockets"][0]
                .as_object_mut()
                .unwrap()
                .remove("remote_port");
        }),
        ("a field left out when empty written as null", |r| {
            r["warnings"][0]["hint"] = Value::Null;
        }),
        ("an unknown state", |r| {
            r["sockets"][0]["state"] = Value::from("LISTENING");
        }),
        ("an unknown warning kind", |r| {
            r["warnings"][0]["kind"] = Value::from("processes_gone");
        }),
        ("a UTF-8 name written as bytes", |r| {
            r["sockets"][0]["holders"][0]["comm"] = serde_json::json!([115, 104]);
        }),
    ];
    for (what, edit) in forbidden {
        let mut doc = report.clone();
        edit(&mut doc);
        assert!(!reads(&doc), "read although {what}: {doc:#}");
    }
    // And what the contract allows: a name that is not UTF-8, as bytes.
    let mut doc = report.clone();
    doc["sockets"][0]["holders"][0]["comm"] = serde_json::json!([98, 97, 100, 255]);
    assert!(reads(&doc), "{doc:#}");
}
