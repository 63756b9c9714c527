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
    Netlink(String),
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
            Error::Netlink(_) => exit::KERNEL,
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

    pub fn os(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Os {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
