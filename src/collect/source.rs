//! Where a collection pass gets its sock_diag answers ([`Source`]): the
//! kernel (`Live`); the kernel with a copy of every answer kept
//! (`Recording`, to make test fixtures); or such a copy played back
//! (`Recorded`), so a `Collector` runs without the kernel over a fake
//! /proc tree. A copy is a [`Tape`]: for each request sent (its bytes and
//! the namespace it went to), the datagrams the kernel answered, as they
//! came. Playback hands them to the same dump loop and parsers as a live
//! pass; a request the tape does not hold is an error
//! ([`NetlinkCause::NotRecorded`]), never an empty answer.
//!
//! Must not: look inside what it carries beyond the netlink header's
//! sequence number (requests and answers are bytes to it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::netlink::{DumpWhat, Kernel, Wire};
use super::netns::{NsKey, NETNS_DIRS};
use crate::error::{Error, NetlinkCause, NetlinkError, Result};
use crate::model::{Family, Proto};

/// Where sock_diag answers come from.
#[derive(Clone, Default)]
pub enum Source {
    /// The kernel.
    #[default]
    Live,
    /// The kernel, every answer also kept in the recorder's tape.
    Recording(Recorder),
    /// A tape played back: no kernel, no namespace entered, no BPF.
    Recorded(Replay),
}

impl Source {
    pub fn is_recorded(&self) -> bool {
        matches!(self, Source::Recorded(_))
    }

    /// Where `ip netns` names live: none for a replay (the host's names
    /// mean nothing to a recording).
    pub(crate) fn netns_dirs(&self) -> &'static [&'static str] {
        match self {
            Source::Recorded(_) => &[],
            _ => &NETNS_DIRS,
        }
    }

    /// The wire for namespace `key` (`own`: the one we run in). Live, call
    /// it on a thread inside that namespace: the socket stays in it.
    pub(crate) fn open(&self, key: NsKey, own: bool) -> Result<SourceWire> {
        Ok(match self {
            Source::Live => SourceWire::Kernel(Kernel::open()?),
            Source::Recording(r) => SourceWire::Record(r.taping(Kernel::open()?, key.ino, own)),
            Source::Recorded(r) => SourceWire::Replay(r.playback(key, own)?),
        })
    }
}

/// A namespace's diag wire, as its source says. Live it is the kernel's
/// socket: one `match` per datagram beside the syscall.
pub enum SourceWire {
    Kernel(Kernel),
    Record(Taping),
    Replay(Playback),
}

impl Wire for SourceWire {
    fn send(&mut self, what: &DumpWhat<'_>, request: &[u8]) -> Result<(), NetlinkCause> {
        match self {
            SourceWire::Kernel(k) => k.send(what, request),
            SourceWire::Record(t) => t.send(what, request),
            SourceWire::Replay(p) => p.send(what, request),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, NetlinkCause> {
        match self {
            SourceWire::Kernel(k) => k.recv(buf),
            SourceWire::Record(t) => t.recv(buf),
            SourceWire::Replay(p) => p.recv(buf),
        }
    }
}

/// Recorded sock_diag exchanges: what a `Recording` source keeps and a
/// `Recorded` one plays back (JSON, bytes as hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tape {
    /// The namespace the recording ran in (nsfs inode): a playback
    /// answers the collector's own namespace from it.
    pub netns: u64,
    pub exchanges: Vec<Exchange>,
}

/// One request and the kernel's answer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The namespace (nsfs inode) the request was sent in.
    pub netns: u64,
    /// The request in words, for whoever reads the fixture.
    pub request: String,
    /// The request's bytes, its sequence number zeroed: the key.
    #[serde(with = "hex")]
    pub sent: Vec<u8>,
    /// Each datagram of the answer, as received.
    #[serde(with = "hex_list")]
    pub answer: Vec<Vec<u8>>,
}

/// A file that is not a tape.
#[derive(Debug, thiserror::Error)]
#[error("not a sock_diag tape: {0}")]
pub struct TapeError(#[from] serde_json::Error);

impl Tape {
    pub fn from_json(bytes: &[u8]) -> Result<Tape, TapeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Result<String, TapeError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

/// Offset and length of `nlmsg_seq` in `struct nlmsghdr`.
const SEQ: std::ops::Range<usize> = 8..12;
const NLMSG_HDRLEN: usize = 16;

/// The request as a tape keys it: the sequence number zeroed (it only
/// counts requests on one socket).
fn key_of(request: &[u8]) -> Vec<u8> {
    let mut key = request.to_vec();
    if let Some(seq) = key.get_mut(SEQ) {
        seq.fill(0);
    }
    key
}

/// Give every message of `datagram` sequence number `seq`, as the kernel
/// echoes the request's in its answer.
fn set_seq(datagram: &mut [u8], seq: [u8; 4]) {
    let mut off = 0;
    while let Some(h) = datagram.get(off..off + NLMSG_HDRLEN) {
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < NLMSG_HDRLEN {
            break;
        }
        datagram[off + SEQ.start..off + SEQ.end].copy_from_slice(&seq);
        off += (len + 3) & !3;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the data as it was: still usable here.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps every live answer; clone it into a `Source::Recording` and take
/// the tape after the passes.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Tape>>);

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// The tape so far; the recorder starts a new one (same namespace).
    pub fn take(&self) -> Tape {
        let mut t = lock(&self.0);
        let netns = t.netns;
        std::mem::replace(
            &mut *t,
            Tape {
                netns,
                exchanges: Vec::new(),
            },
        )
    }

    fn taping(&self, kernel: Kernel, netns: u64, own: bool) -> Taping {
        if own {
            lock(&self.0).netns = netns;
        }
        Taping {
            kernel,
            tape: self.clone(),
            netns,
            current: None,
        }
    }
}

/// The kernel's wire, copying each request and datagram to a tape.
pub struct Taping {
    kernel: Kernel,
    tape: Recorder,
    netns: u64,
    /// The exchange the datagrams received belong to.
    current: Option<usize>,
}

impl Taping {
    fn send(&mut self, what: &DumpWhat<'_>, request: &[u8]) -> Result<(), NetlinkCause> {
        self.current = None;
        self.kernel.send(what, request)?;
        let sent = key_of(request);
        let mut tape = lock(&self.tape.0);
        // Asked again: the later answer stands.
        let at = tape
            .exchanges
            .iter()
            .position(|e| e.netns == self.netns && e.sent == sent);
        let exchange = Exchange {
            netns: self.netns,
            request: what.to_string(),
            sent,
            answer: Vec::new(),
        };
        self.current = Some(match at {
            Some(i) => {
                tape.exchanges[i] = exchange;
                i
            }
            None => {
                tape.exchanges.push(exchange);
                tape.exchanges.len() - 1
            }
        });
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, NetlinkCause> {
        let n = self.kernel.recv(buf)?;
        if let Some(i) = self.current {
            if let Some(e) = lock(&self.tape.0).exchanges.get_mut(i) {
                e.answer.push(buf[..n.min(buf.len())].to_vec());
            }
        }
        Ok(n)
    }
}

/// One request a playback was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The recorded namespace it went to (nsfs inode at recording time).
    pub netns: u64,
    pub proto: Proto,
    pub family: Family,
    pub states: u32,
    pub ports: Option<Vec<u16>>,
    /// Whether the tape held an answer.
    pub answered: bool,
}

/// Plays a tape back; keeps every request asked, for tests to check.
#[derive(Clone)]
pub struct Replay(Arc<Mutex<Played>>);

struct Played {
    tape: Tape,
    /// Namespaces of the fake /proc tree (other than our own) and the
    /// recorded namespace each answers as.
    bound: Vec<(NsKey, u64)>,
    asked: Vec<Asked>,
}

impl Replay {
    pub fn new(tape: Tape) -> Replay {
        Replay(Arc::new(Mutex::new(Played {
            tape,
            bound: Vec::new(),
            asked: Vec::new(),
        })))
    }

    /// Answer from `tape` from now on (the next pass's recording).
    pub fn play(&self, tape: Tape) {
        lock(&self.0).tape = tape;
    }

    /// Answer namespace `key` (an `ns/net` file of the fake tree) with the
    /// tape's namespace `recorded`. Our own answers as the tape's.
    pub fn bind_netns(&self, key: NsKey, recorded: u64) {
        let mut p = lock(&self.0);
        p.bound.retain(|(k, _)| *k != key);
        p.bound.push((key, recorded));
    }

    /// The requests asked since the last call, in order.
    pub fn take_asked(&self) -> Vec<Asked> {
        std::mem::take(&mut lock(&self.0).asked)
    }

    fn playback(&self, key: NsKey, own: bool) -> Result<Playback> {
        let ns = if own {
            Ns::Own
        } else {
            let bound = lock(&self.0)
                .bound
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, r)| *r);
            Ns::Recorded(bound.ok_or_else(|| {
                Error::Netlink(NetlinkError {
                    request: "a diag socket in this namespace".into(),
                    cause: NetlinkCause::NotRecorded { netns: key.ino },
                })
            })?)
        };
        Ok(Playback {
            replay: self.clone(),
            ns,
            seq: [0; 4],
            pending: VecDeque::new(),
        })
    }
}

/// Which recorded namespace a playback answers as.
#[derive(Clone, Copy)]
enum Ns {
    /// The tape's own (whatever tape is playing).
    Own,
    Recorded(u64),
}

/// One namespace's wire over a tape.
pub struct Playback {
    replay: Replay,
    ns: Ns,
    /// The last request's sequence number, echoed in the answer.
    seq: [u8; 4],
    /// The datagrams of the answer not yet received.
    pending: VecDeque<Vec<u8>>,
}

impl Playback {
    fn send(&mut self, what: &DumpWhat<'_>, request: &[u8]) -> Result<(), NetlinkCause> {
        let mut played = lock(&self.replay.0);
        let netns = match self.ns {
            Ns::Own => played.tape.netns,
            Ns::Recorded(n) => n,
        };
        let sent = key_of(request);
        let answer = played
            .tape
            .exchanges
            .iter()
            .find(|e| e.netns == netns && e.sent == sent)
            .map(|e| e.answer.clone());
        played.asked.push(Asked {
            netns,
            proto: what.proto,
            family: what.family,
            states: what.states,
            ports: what.ports.map(<[u16]>::to_vec),
            answered: answer.is_some(),
        });
        self.pending = answer.ok_or(NetlinkCause::NotRecorded { netns })?.into();
        if let Some(seq) = request.get(SEQ) {
            self.seq.copy_from_slice(seq);
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, NetlinkCause> {
        let Some(mut datagram) = self.pending.pop_front() else {
            return Err(NetlinkCause::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the recorded answer ends before NLMSG_DONE",
            )));
        };
        set_seq(&mut datagram, self.seq);
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(datagram.len())
    }
}

/// Bytes as lowercase hex in JSON: a few lines here rather than one more
/// dependency for the fixtures alone.
mod hex {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn encode(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let digit = |c: u8| char::from(c).to_digit(16);
        let digits = text.as_bytes();
        if digits.len() % 2 != 0 {
            return None;
        }
        digits
            .chunks(2)
            .map(|p| Some((digit(p[0])? << 4 | digit(p[1])?) as u8))
            .collect()
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| D::Error::custom(format!("not hex: '{text}'")))
    }
}

mod hex_list {
    use serde::{de::Error as _, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&super::hex::encode(bytes))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| {
                super::hex::decode(t).ok_or_else(|| D::Error::custom(format!("not hex: '{t}'")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex::encode(&[0x00, 0x0a, 0xff]), "000aff");
        assert_eq!(hex::decode("000aFF"), Some(vec![0x00, 0x0a, 0xff]));
        assert_eq!(hex::decode("abc"), None);
        assert_eq!(hex::decode("zz"), None);
        assert_eq!(hex::decode("+1"), None);
    }

    #[test]
    fn the_key_ignores_the_sequence_number_only() {
        // nlmsghdr: len 20, type 20, flags 0x301, seq 7, pid 0; 4 bytes body.
        let mut a = vec![20, 0, 0, 0, 20, 0, 1, 3, 7, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let mut b = a.clone();
        b[8] = 9;
        assert_eq!(key_of(&a), key_of(&b));
        assert_eq!(&key_of(&a)[8..12], &[0, 0, 0, 0]);
        a[16] = 5;
        assert_ne!(key_of(&a), key_of(&b));
    }

    #[test]
    fn the_answer_echoes_the_request_sequence_in_every_message() {
        // Two messages: a 20-byte one (padded to 20) and a 16-byte NLMSG_DONE.
        let mut d = vec![0u8; 36];
        d[0] = 20;
        d[20] = 16;
        set_seq(&mut d, [5, 0, 0, 0]);
        assert_eq!(&d[8..12], &[5, 0, 0, 0]);
        assert_eq!(&d[28..32], &[5, 0, 0, 0]);
        // A zero length stops the walk instead of looping.
        let mut z = vec![0u8; 16];
        set_seq(&mut z, [5, 0, 0, 0]);
        assert_eq!(z, vec![0u8; 16]);
    }

    #[test]
    fn a_tape_reads_back_and_rejects_bad_hex() {
        let tape = Tape {
            netns: 4026531840,
            exchanges: vec![Exchange {
                netns: 4026531840,
                request: "AF_INET TCP dump, states 0x400".into(),
                sent: vec![1, 2],
                answer: vec![vec![3], vec![]],
            }],
        };
        let text = tape.to_json().expect("serialize");
        assert!(text.contains("\"sent\": \"0102\""), "{text}");
        assert_eq!(Tape::from_json(text.as_bytes()).expect("parse"), tape);
        let bad = text.replace("0102", "01x2");
        let e = Tape::from_json(bad.as_bytes()).expect_err("bad hex");
        assert!(e.to_string().contains("not hex: '01x2'"), "{e}");
    }
}
