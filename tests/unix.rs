//! Live: unix listeners seen through unix_diag, against sockets this test
//! makes in its own temp directory (and abstract names of its own), with
//! `ss -xlp` as the cross-check.

mod common;
mod sockfix;

use common::json::{Family, GroupKind, PathStatus, Proto, SockType, TcpState};
use sockfix::{
    inode_of, inspect_json, path_bytes, run, ss_or_skip, ss_rows, unix_connect_nonblocking,
    unix_listener, Holder, TempDir,
};

/// php-fpm's case: a forked server, listen(5), 10 non-blocking clients.
/// 6 get queued (the queue holds backlog + 1), 4 get EAGAIN; sockmap shows
/// depth 6 of 5, both holders, FULL; `ss -xlp` agrees.
#[test]
fn forked_listener_with_a_full_queue() {
    let dir = TempDir::new("unix");
    let path = dir.path("fpm.sock");
    let name = path_bytes(&path);
    let l = unix_listener(libc::SOCK_STREAM, &name, 5);
    let child = Holder::fork(&[l.0]);
    let mut queued = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        match unix_connect_nonblocking(libc::SOCK_STREAM, &name) {
            Ok(fd) => queued.push(fd),
            Err(e) => {
                assert_eq!(e, libc::EAGAIN, "connect failed otherwise: errno {e}");
                refused += 1;
            }
        }
    }
    assert_eq!((queued.len(), refused), (6, 4), "the kernel's own count");
    let inode = inode_of(l.0);
    let target = format!("unix:{}", path.display());

    let v = inspect_json(&[&target]);
    let s = v.socket(inode);
    assert_eq!(s.proto, Proto::Unix);
    assert_eq!(s.family, Family::Unix);
    assert_eq!(s.sock_type, SockType::Stream);
    assert_eq!(s.state, TcpState::Listen);
    assert_eq!(s.path.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(s.path_status, Some(PathStatus::Bound));
    assert_eq!(s.local_addr, None);
    assert_eq!(s.accept_queue.map(|q| q.depth), Some(6));
    assert_eq!(s.accept_queue.map(|q| q.backlog), Some(5));
    let me = std::process::id();
    let pids = s.holder_pids();
    assert_eq!(pids, [me, child.pid].into_iter().collect(), "{s:#?}");
    // Clients are sockets too, but unnamed and not listening: not shown.
    assert_eq!(v.sockets.len(), 1, "{v:#?}");
    let g = &v.groups[0];
    assert_eq!(g.proto, Proto::Unix);
    assert_eq!(g.kind, GroupKind::Shared);
    assert_eq!(g.path.as_deref(), Some(path.to_str().unwrap()));
    let verdict = &g.verdict;
    assert!(
        verdict.starts_with(&format!(
            "one socket shared by {}2 processes (fork",
            common::at_least()
        )) && verdict.contains("): one accept queue, 6 waiting of 5"),
        "{verdict}"
    );
    assert!(verdict.contains("accept queue FULL"), "{verdict}");

    // The table names it and its state.
    let (code, out, err) = run(&["inspect", &target, "--color", "never"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "{}  LISTEN  unix stream  inode {inode}  accept queue 6/5",
            path.display()
        )),
        "{out}"
    );

    // `-x` with no target: the overview has it too.
    let ov = inspect_json(&["-x"]);
    assert_eq!(ov.socket(inode).accept_queue.map(|q| q.depth), Some(6));
    assert!(ov.sockets.iter().all(|s| s.proto == Proto::Unix));

    if ss_or_skip("forked_listener_with_a_full_queue") {
        let rows = ss_rows(&["-xlpn"]);
        let row = rows
            .iter()
            .find(|r| r.fields.iter().any(|f| f == path.to_str().unwrap()))
            .unwrap_or_else(|| panic!("ss -xlp has no row for {}", path.display()));
        // Netid State Recv-Q Send-Q Local Port ...
        assert_eq!(row.fields[1], "LISTEN");
        assert_eq!(row.fields[2], "6", "ss Recv-Q: {}", row.line);
        assert_eq!(row.fields[3], "5", "ss Send-Q: {}", row.line);
        assert_eq!(row.fields[5], inode.to_string(), "{}", row.line);
        assert_eq!(row.pids, pids, "{}", row.line);
    }
    drop(queued);
    drop(child);
}

/// An abstract name: shown as `@name`, found by `unix:@name`, no path check.
#[test]
fn abstract_listener() {
    let tag = format!("sockmap-test-{}", std::process::id());
    let mut name = vec![0u8];
    name.extend_from_slice(tag.as_bytes());
    let l = unix_listener(libc::SOCK_SEQPACKET, &name, 3);
    let c = unix_connect_nonblocking(libc::SOCK_SEQPACKET, &name).expect("queued");
    let inode = inode_of(l.0);
    let v = inspect_json(&[&format!("unix:@{tag}")]);
    let s = v.socket(inode);
    assert_eq!(s.path, Some(format!("@{tag}")));
    assert_eq!(s.sock_type, SockType::Seqpacket);
    assert_eq!(s.path_status, None);
    assert_eq!(s.vfs, None);
    assert_eq!(s.accept_queue.map(|q| q.depth), Some(1));
    assert_eq!(s.accept_queue.map(|q| q.backlog), Some(3));
    assert_eq!(s.holder_pids(), [std::process::id()].into_iter().collect());
    assert_eq!(v.groups[0].kind, GroupKind::Single);
    if ss_or_skip("abstract_listener") {
        let rows = ss_rows(&["-xlpn"]);
        let row = rows
            .iter()
            .find(|r| r.fields.get(5).is_some_and(|f| *f == inode.to_string()))
            .expect("ss row by inode");
        assert_eq!(row.fields[4], format!("@{tag}"));
        assert_eq!((row.fields[2].as_str(), row.fields[3].as_str()), ("1", "3"));
    }
    drop(c);
}

/// The path was unlinked (clients now get ENOENT), then a new server bound
/// the same path: the old listener says so, and `unix:PATH` finds the new one.
#[test]
fn unlinked_then_replaced_path() {
    let dir = TempDir::new("unix");
    let path = dir.path("app.sock");
    let name = path_bytes(&path);
    let old = unix_listener(libc::SOCK_STREAM, &name, 10);
    let old_ino = inode_of(old.0);
    std::fs::remove_file(&path).expect("unlink");
    assert_eq!(
        unix_connect_nonblocking(libc::SOCK_STREAM, &name).err(),
        Some(libc::ENOENT)
    );

    // Found by inode: the path is gone.
    let v = inspect_json(&[&format!("inode:{old_ino}")]);
    let s = v.socket(old_ino);
    assert_eq!(
        s.path.as_deref(),
        Some(path.to_str().unwrap()),
        "the kernel keeps the bound name"
    );
    assert_eq!(s.path_status, Some(PathStatus::Unlinked));
    let verdict = &v.groups[0].verdict;
    assert!(verdict.contains("its path was unlinked"), "{verdict}");

    // A new server on the same path: `unix:PATH` names both (same name),
    // and only the new one is reachable.
    let new = unix_listener(libc::SOCK_STREAM, &name, 10);
    let new_ino = inode_of(new.0);
    let v = inspect_json(&[&format!("unix:{}", path.display())]);
    assert_eq!(v.socket(old_ino).path_status, Some(PathStatus::Replaced));
    assert_eq!(v.socket(new_ino).path_status, Some(PathStatus::Bound));

    // Through a symlink: matched by the file the link leads to.
    let link = dir.path("link.sock");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let v = inspect_json(&[&format!("unix:{}", link.display())]);
    let inodes: Vec<u64> = v.sockets.iter().map(|s| s.inode).collect();
    assert_eq!(inodes, vec![new_ino], "{v:#?}");
}

/// Nothing on a unix path: exit 1 and a plain sentence.
#[test]
fn no_such_unix_socket() {
    let dir = TempDir::new("unix");
    let (code, _, err) = run(&[
        "inspect",
        &format!("unix:{}", dir.path("none.sock").display()),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no listening unix socket matches unix:"),
        "{err}"
    );
}

/// A path another process chose is escaped in text output, exact in JSON.
#[test]
fn hostile_path_is_escaped() {
    let dir = TempDir::new("unix");
    let path = dir.path("evil\x1b[2J\n.sock");
    let l = unix_listener(libc::SOCK_STREAM, &path_bytes(&path), 1);
    let inode = inode_of(l.0);
    let target = format!("inode:{inode}");
    let (code, out, err) = run(&["inspect", &target, "--color", "never"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains('\x1b'),
        "raw ESC reached the terminal: {out:?}"
    );
    assert!(out.contains("evil\\x1b[2J\\n.sock  LISTEN"), "{out}");
    let (code, out, _) = run(&["inspect", &target, "--plain"]);
    assert_eq!(code, 0);
    let row = out.lines().nth(1).expect("a row");
    assert!(
        row.split_whitespace()
            .next()
            .unwrap()
            .ends_with("evil\\x1b[2J\\n.sock"),
        "{row}"
    );
    let v = inspect_json(&[&target]);
    assert_eq!(
        v.socket(inode).path.as_deref(),
        Some(path.to_str().unwrap())
    );
}
