//! Reading the model back (a recorded snapshot): the `Deserialize`
//! halves of the types whose JSON form is hand-written in `model`, each
//! reading exactly what its `Serialize` writes. Plain data: no I/O.

use serde::{Deserialize, Deserializer};

use super::{HowJson, ProcessState, TcpState, WaitHow, Waiter, WaiterJson};

impl std::str::FromStr for TcpState {
    type Err = String;

    /// The name `Display` prints. `SYN_RECV` reads back as `SynRecv`: the
    /// name does not tell a request socket (`NEW_SYN_RECV`) apart, and
    /// nothing downstream of the collector does either.
    fn from_str(s: &str) -> Result<Self, String> {
        use TcpState::*;
        Ok(match s {
            "ESTABLISHED" => Established,
            "SYN_SENT" => SynSent,
            "SYN_RECV" => SynRecv,
            "FIN_WAIT1" => FinWait1,
            "FIN_WAIT2" => FinWait2,
            "TIME_WAIT" => TimeWait,
            "CLOSE" => Close,
            "CLOSE_WAIT" => CloseWait,
            "LAST_ACK" => LastAck,
            "LISTEN" => Listen,
            "CLOSING" => Closing,
            _ => match s
                .strip_prefix("UNKNOWN(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.parse::<u8>().ok())
            {
                Some(n) => TcpState::from_kernel(n),
                None => return Err(format!("unknown TCP state '{}'", s.escape_debug())),
            },
        })
    }
}

impl<'de> Deserialize<'de> for TcpState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The name `Display` prints, or the kernel's one letter.
impl<'de> Deserialize<'de> for ProcessState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use ProcessState::*;
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "running" => Running,
            "sleeping" => Sleeping,
            "disk-sleep" => DiskSleep,
            "stopped" => Stopped,
            "traced" => Traced,
            "zombie" => Zombie,
            "dead" => Dead,
            "idle" => Idle,
            _ => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Other(c),
                    _ => {
                        return Err(serde::de::Error::custom(format!(
                            "unknown process state '{}'",
                            s.escape_debug()
                        )))
                    }
                }
            }
        })
    }
}

/// `exclusive` says which epoll it was; for the others it follows from `how`.
impl From<WaiterJson> for Waiter {
    fn from(w: WaiterJson) -> Self {
        Waiter {
            pid: w.pid,
            tid: w.tid,
            how: match w.how {
                HowJson::Accept => WaitHow::Accept,
                HowJson::Epoll => WaitHow::Epoll {
                    exclusive: w.exclusive,
                },
                HowJson::Poll => WaitHow::Poll,
                HowJson::Select => WaitHow::Select,
            },
            fd: w.fd,
        }
    }
}
