//! Renderers on a hand-built report: the bytes a user sees, pinned.

use crate::analyze::{self, tests::forked_snapshot};
use crate::model::{WaitHow, Waiter};
use crate::target::{self, Query};

/// The report on the forked server the analysis is tested on.
fn report() -> crate::model::report::Report {
    let q = Query::new(vec![target::parse(":8000").unwrap()]);
    analyze::report(&q, &forked_snapshot())
}

#[test]
fn table_without_colour() {
    let mut out = Vec::new();
    super::table::write(&mut out, &report(), false).unwrap();
    let want = "\
127.0.0.1:8000  LISTEN  inode 7288  accept queue 7/50  syn queue 1
┌───────────┬──────┬──────┬──────┬────┬─────────┐
│ COMMAND   ┆ PID  ┆ PPID ┆ USER ┆ FD ┆ WAITING │
╞═══════════╪══════╪══════╪══════╪════╪═════════╡
│ refserver ┆ 3556 ┆ 1    ┆ root ┆ 5  ┆ -       │
│ refserver ┆ 3558 ┆ 3556 ┆ root ┆ 5  ┆ accept  │
│ refserver ┆ 3559 ┆ 3556 ┆ root ┆ 5  ┆ accept  │
└───────────┴──────┴──────┴──────┴────┴─────────┘
→ one socket shared by 3 processes (fork): one accept queue, 7 waiting of 50; 2 threads blocked in accept() on it: the kernel wakes one per connection
";
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn plain_is_one_row_per_holder() {
    let mut out = Vec::new();
    super::plain::write(&mut out, &report()).unwrap();
    let want = "\
LOCAL          STATE  INODE ACCEPTQ BACKLOG SYNQ COMMAND   PID  PPID USER FD WAITING PROTO RECVQ RCVBUF DROPS
127.0.0.1:8000 LISTEN 7288  7       50      1    refserver 3556 1    root 5  -       tcp   -     -      0
127.0.0.1:8000 LISTEN 7288  7       50      1    refserver 3558 3556 root 5  accept  tcp   -     -      0
127.0.0.1:8000 LISTEN 7288  7       50      1    refserver 3559 3556 root 5  accept  tcp   -     -      0
";
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn json_has_the_contract_fields() {
    let mut out = Vec::new();
    super::json::write(&mut out, &report()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["schema"], 2);
    assert_eq!(v["host"]["somaxconn"], 4096);
    let s = &v["sockets"][0];
    assert_eq!(
        s["accept_queue"],
        serde_json::json!({"depth": 7, "backlog": 50})
    );
    assert_eq!(
        s["syn_queue"],
        serde_json::json!({"depth": 1, "scope": "socket"})
    );
    assert_eq!(s["holders"].as_array().unwrap().len(), 3);
    assert_eq!(
        s["holders"][1],
        serde_json::json!({"pid": 3558, "ppid": 3556, "comm": "refserver", "uid": 0, "user": "root", "fd": 5,
                           "state": "sleeping", "cmdline": ["refserver", "--port", "8000"]})
    );
    assert_eq!(
        s["waiters"][0],
        serde_json::json!({"pid": 3558, "tid": 3558, "how": "accept", "fd": 5, "exclusive": true})
    );
    assert_eq!(v["groups"][0]["kind"], "shared");
    assert_eq!(v["groups"][0]["inodes"], serde_json::json!([7288]));
    assert_eq!(v["groups"][0]["holders_complete"], true);
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn epoll_waiters_say_whether_they_are_exclusive() {
    let w = |exclusive| Waiter {
        pid: 1,
        tid: 2,
        how: WaitHow::Epoll { exclusive },
        fd: 7,
    };
    assert_eq!(w(true).how.to_string(), "epoll (exclusive)");
    assert_eq!(w(false).how.to_string(), "epoll");
    assert_eq!(
        serde_json::to_value(w(true)).unwrap(),
        serde_json::json!({"pid": 1, "tid": 2, "how": "epoll", "fd": 7, "exclusive": true})
    );
    assert_eq!(serde_json::to_value(w(false)).unwrap()["exclusive"], false);
    let mut r = report();
    r.sockets[0].waiters = vec![w(true), w(false)];
    r.sockets[0].holders[0].pid = 1;
    let mut out = Vec::new();
    super::plain::write(&mut out, &r).unwrap();
    let text = String::from_utf8(out).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let at = header.iter().position(|h| *h == "WAITING").unwrap();
    assert_eq!(
        text.lines().nth(1).unwrap().split_whitespace().nth(at),
        Some("epoll(exclusive),epoll(2_threads)"),
        "{text}"
    );
}

#[test]
fn colour_only_when_asked() {
    let mut out = Vec::new();
    super::table::write(&mut out, &report(), true).unwrap();
    assert!(out.contains(&0x1b));
}
