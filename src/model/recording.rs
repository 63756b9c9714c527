//! A recorded snapshot, as `sockmap snapshot` writes it and `--from`
//! reads it back: one collection pass plus the query it answered, so the
//! same analysis and rendering can run later, anywhere, without the
//! kernel. Plain data: reading the file and rebuilding the query belong
//! to `app`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Proto, Snapshot};

/// The format number in `sockmap_snapshot`; a reader refuses others.
pub const FORMAT: u32 = 1;

/// A recorded snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recording {
    /// The file format (1). A reader refuses a number it does not know.
    pub sockmap_snapshot: u32,
    /// The sockmap version that took it.
    pub version: String,
    /// When it was taken, in seconds since the Unix epoch.
    pub taken: u64,
    /// What was asked for.
    pub query: RecordedQuery,
    /// What one collection pass saw.
    pub snapshot: Snapshot,
}

/// The query a snapshot answered, as the user would write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordedQuery {
    /// The targets, as sockmap prints them (`127.0.0.1:8000`, `unix:@name`).
    pub targets: Vec<String>,
    /// Sockets in every state, not just listeners (`--all`).
    pub all_states: bool,
    /// Only these kinds (`-t`, `-u`, `-x`); empty: what the targets imply.
    pub only: Vec<Proto>,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::model::netns::{Container, Forward, Netns, NetnsInfo, NetnsMap, Runtime};
    use crate::model::*;

    fn socket(inode: u64, proto: Proto, state: TcpState, port: u16) -> Socket {
        Socket {
            inode: Inode(inode),
            cookie: inode * 7,
            proto,
            family: Family::Inet,
            state,
            local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_port: port,
            remote_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote_port: 0,
            ifindex: 0,
            uid: Some(1000),
            rqueue: 3,
            wqueue: 128,
            drops: Some(2),
            rcvbuf: None,
            unix: None,
        }
    }

    /// Every kind of field a pass fills, with the awkward values: a
    /// non-UTF-8 comm and argument, abstract and path unix names, every
    /// waiter kind, a state this build does not know, a process state
    /// that is only a letter.
    fn everything() -> Snapshot {
        let tcp = socket(100, Proto::Tcp, TcpState::Listen, 8000);
        let udp = Socket {
            family: Family::Inet6,
            local_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            rcvbuf: Some(212_992),
            uid: None,
            ..socket(200, Proto::Udp, TcpState::Close, 5353)
        };
        let odd = socket(250, Proto::Tcp, TcpState::Unknown(42), 8001);
        let unix = Socket {
            family: Family::Unix,
            local_port: 0,
            unix: Some(UnixInfo {
                sock_type: SockType::Seqpacket,
                name: Some(UnixName::Abstract(b"app\xff\x00x".to_vec())),
                vfs: Some(Vfs { ino: 9, dev: 2049 }),
                peer: Some(Inode(301)),
                pending: Some(vec![Inode(302), Inode(303)]),
                path_status: Some(PathStatus::Replaced),
            }),
            ..socket(300, Proto::Unix, TcpState::Listen, 0)
        };
        let unix_path = Socket {
            family: Family::Unix,
            unix: Some(UnixInfo {
                sock_type: SockType::Stream,
                name: Some(UnixName::Path(b"/run/a\nb.sock".to_vec())),
                vfs: None,
                peer: None,
                pending: None,
                path_status: None,
            }),
            ..socket(310, Proto::Unix, TcpState::Established, 0)
        };
        let holder = |pid: u32, comm: &[u8], state| Holder {
            pid,
            ppid: Some(1),
            comm: RawText(comm.to_vec()),
            uid: Some(0),
            user: Some("root".into()),
            fd: 3,
            netns: (pid == 11).then_some(4_026_532_000),
            state,
            cmdline: Some(vec![RawText::from("srv"), RawText(b"-x\xfe".to_vec())]),
        };
        let mut netns = NetnsMap {
            own: 4_026_531_840,
            namespaces: BTreeMap::new(),
            of_socket: HashMap::from([(Inode(200), 4_026_532_000)]),
            of_pid: HashMap::from([(11, 4_026_532_000)]),
        };
        netns.namespaces.insert(
            4_026_532_000,
            NetnsInfo {
                label: Netns {
                    inode: 4_026_532_000,
                    name: Some("blue".into()),
                    container: Some(Container {
                        runtime: Runtime::Crio,
                        id: "ab".repeat(32),
                        name: Some("web".into()),
                        pod: None,
                    }),
                },
                somaxconn: Some(4096),
            },
        );
        Snapshot {
            sockets: vec![tcp, udp, odd, unix, unix_path],
            holders: HashMap::from([
                (
                    Inode(100),
                    vec![
                        holder(10, b"srv\xff\x1b[2J", Some(ProcessState::Sleeping)),
                        holder(11, b"worker", Some(ProcessState::Other('W'))),
                    ],
                ),
                (Inode(300), vec![holder(12, b"", None)]),
            ]),
            request_socks: Some(vec![RequestSock {
                netns: 0,
                family: Family::Inet,
                local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                local_port: 8000,
            }]),
            waiters: HashMap::from([(
                Inode(100),
                [
                    WaitHow::Accept,
                    WaitHow::Epoll { exclusive: true },
                    WaitHow::Epoll { exclusive: false },
                    WaitHow::Poll,
                    WaitHow::Select,
                ]
                .into_iter()
                .enumerate()
                .map(|(i, how)| Waiter {
                    pid: 10,
                    tid: 10 + i as u32,
                    how,
                    fd: 3,
                })
                .collect(),
            )]),
            reuseport: HashMap::from([(Inode(100), false), (Inode(250), true)]),
            syn_queue: HashMap::from([(Inode(250), 3)]),
            host: HostInfo {
                somaxconn: Some(4096),
                tcp_max_syn_backlog: None,
                syncookies: Some(1),
            },
            warnings: vec![
                Warning::new(WarningKind::ProcessesUnreadable, 3),
                Warning::pid(WarningKind::ProcessesPartlyReadable, 77).detail("Permission denied"),
            ],
            netns,
            forwards: HashMap::from([(
                Inode(250),
                Forward {
                    via: "docker-proxy".into(),
                    to_addr: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2)),
                    to_port: 80,
                    to_inodes: vec![Inode(100)],
                    to_netns: Some(4_026_532_000),
                },
            )]),
            scan: Some(crate::model::scan::ScanInfo {
                method: crate::model::scan::ScanMethod::Proc,
                duration_us: 1234,
                load_us: Some(5678),
                fallback_reason: Some(crate::model::scan::FallbackReason::LoadFailed),
                detail: Some("holders_task: load iterator program: EINVAL".into()),
                verifier_log: None,
            }),
        }
    }

    #[test]
    fn a_snapshot_round_trips_through_json() {
        let snap = everything();
        let text = serde_json::to_string(&snap).expect("serializes");
        let back: Snapshot = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, snap);
        // The non-UTF-8 comm is written as its bytes, not a lossy string.
        assert!(text.contains("[115,114,118,255,27,91,50,74]"), "{text}");
        assert!(text.contains(r#""state":"UNKNOWN(42)""#), "{text}");
    }

    #[test]
    fn a_recording_round_trips_through_json() {
        let rec = Recording {
            sockmap_snapshot: FORMAT,
            version: "1.2.3".into(),
            taken: 1_700_000_000,
            query: RecordedQuery {
                targets: vec!["127.0.0.1:8000".into(), "unix:@app".into()],
                all_states: true,
                only: vec![Proto::Tcp, Proto::Unix],
            },
            snapshot: everything(),
        };
        let text = serde_json::to_string_pretty(&rec).expect("serializes");
        assert!(text.starts_with("{\n  \"sockmap_snapshot\": 1,"), "{text}");
        let back: Recording = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, rec);
    }

    #[test]
    fn a_warning_reads_back_without_its_derived_text() {
        let w = Warning::pid(WarningKind::ProcessesPartlyReadable, 5).detail("EACCES");
        let v = serde_json::to_value(&w).expect("serializes");
        assert!(v.get("message").is_some());
        let back: Warning = serde_json::from_value(v).expect("reads back");
        assert_eq!(back, w);
        let bare: Warning =
            serde_json::from_str(r#"{"kind":"proc_hidden","count":1}"#).expect("reads");
        assert_eq!(bare, Warning::new(WarningKind::ProcHidden, 1));
    }

    #[test]
    fn states_that_are_not_states_are_refused() {
        assert!(serde_json::from_str::<TcpState>(r#""LISTENING""#).is_err());
        assert!(serde_json::from_str::<TcpState>(r#""UNKNOWN(300)""#).is_err());
        assert!(serde_json::from_str::<ProcessState>(r#""asleep""#).is_err());
        assert!(serde_json::from_str::<RawText>("[256]").is_err());
    }
}
