//! The library's error type and its mapping to exit codes (a contract
//! scripts depend on, documented in the man page's EXIT STATUS): 2
//! usage/input, 3 kernel query failed. "Nothing found" (1) and a check's
//! "failed" (1) or "unknown" (4) are not errors: `app` returns them as
//! outcomes.

use std::path::PathBuf;

/// Exit codes, the contract scripts depend on.
pub mod exit {
    pub const OK: i32 = 0;
    /// `check` assertion failed, or `inspect` found nothing for the target.
    pub const NOT_FOUND: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const KERNEL: i32 = 3;
    /// `check`: no assertion failed, but some could not be decided because
    /// part of the picture could not be seen (see the warnings).
    pub const UNKNOWN: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad target, flag value or other user input.
    #[error("{0}")]
    Usage(String),
    /// The sock_diag netlink query failed.
    #[error("sock_diag query failed: {0}")]
    Netlink(#[from] NetlinkError),
    /// `--scan bpf` and the BPF holder scan cannot be used.
    #[error("{0}")]
    Bpf(String),
    /// A file under /proc or /sys we need could not be read.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something else the OS refused (fork, bind, rlimit, ...).
    #[error("cannot write to {what}")]
    Write {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}")]
    Os {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Netlink(_) | Error::Bpf(_) => exit::KERNEL,
            Error::Io { .. } | Error::Os { .. } | Error::Write { .. } => exit::KERNEL,
        }
    }

    /// A closed pipe on stdout: the reader went away, end quietly.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io { source, .. } | Error::Os { source, .. } | Error::Write { source, .. } => {
                source.kind() == std::io::ErrorKind::BrokenPipe
            }
            _ => false,
        }
    }

    /// A replayed source had no answer to a request: never turned into a
    /// warning, since a live pass would have had one.
    pub fn is_not_recorded(&self) -> bool {
        matches!(
            self,
            Error::Netlink(NetlinkError {
                cause: NetlinkCause::NotRecorded { .. },
                ..
            })
        )
    }

    pub fn os(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Os {
            context: context.into(),
            source,
        }
    }
}

/// A sock_diag request that failed: which one, and how.
#[derive(Debug, thiserror::Error)]
#[error("{request}: {cause}")]
pub struct NetlinkError {
    /// The request, e.g. "AF_INET TCP dump, states 0x400, ports 8000":
    /// or "socket" for opening the netlink socket itself.
    pub request: String,
    pub cause: NetlinkCause,
}

/// How a sock_diag request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkCause {
    /// Opening, binding or connecting the netlink socket (the kernel may
    /// lack sock_diag, CONFIG_INET_DIAG).
    #[error("cannot {step} a NETLINK_SOCK_DIAG socket: {source}")]
    Socket {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or receiving the answer.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The kernel answered NLMSG_ERROR with this errno.
    #[error("the kernel answered: {} (errno {errno})", std::io::Error::from_raw_os_error(*errno))]
    Kernel { errno: i32 },
    /// A datagram larger than the receive buffer.
    #[error("a {got}-byte datagram did not fit the {cap}-byte buffer")]
    Truncated { got: usize, cap: usize },
    /// A message or attribute that did not parse.
    #[error("{0}")]
    Decode(String),
    /// A replayed source holds no answer to this request (a test fixture
    /// recorded for other requests than the code now makes).
    #[error("no recorded answer to it in netns {netns}")]
    NotRecorded { netns: u64 },
}

impl NetlinkError {
    /// The errno, when the kernel or the OS gave one.
    pub fn errno(&self) -> Option<i32> {
        match &self.cause {
            NetlinkCause::Kernel { errno } => Some(*errno),
            NetlinkCause::Socket { source, .. } | NetlinkCause::Io(source) => source.raw_os_error(),
            NetlinkCause::Truncated { .. }
            | NetlinkCause::Decode(_)
            | NetlinkCause::NotRecorded { .. } => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
