//! The inet_diag filter program (`INET_DIAG_REQ_BYTECODE`) as typed ops:
//! they emit the kernel's bytes as a netlink attribute and parse them
//! back. Pure; no I/O.
//!
//! Hand-built because netlink-packet-sock-diag cannot express it: its
//! `InetRequest` is the fixed `struct inet_diag_req_v2` with no request
//! attributes at all. The attribute side (header, length, padding) is the
//! crate's `Nla`/`Emitable`/`NlaBuffer`; only the program is ours.
//!
//! Kernel facts (include/uapi/linux/inet_diag.h, net/ipv4/inet_diag.c):
//! - A program is a run of `struct inet_diag_bc_op { u8 code; u8 yes;
//!   u16 no; }` in host byte order. A port comparison is followed by a
//!   second op whose `no` holds the port, compared in host order with the
//!   socket's local (`S_*`) or remote (`D_*`) port.
//! - `inet_diag_bc_run`: at each op, advance `yes` bytes when the test
//!   holds and `no` bytes otherwise (`JMP` always takes `no`, `NOP`
//!   always `yes`). The socket passes only if the walk ends exactly at
//!   the end of the program; landing 4 bytes past it rejects.
//! - `inet_diag_bc_audit` refuses the request (EINVAL) unless, walking by
//!   `yes`, every op's `yes` and (but for `NOP`) `no` is a multiple of 4,
//!   at least the op's own length (4, or 8 with a port operand) and at
//!   most 4 past the end, and every `no` landing inside the program lands
//!   on an op the `yes` walk reaches.

use netlink_packet_core::{DecodeError, Nla, NlaBuffer, Parseable};

/// `INET_DIAG_REQ_BYTECODE`: the request attribute that carries a program.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;

const INET_DIAG_BC_NOP: u8 = 0;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_BC_D_GE: u8 = 4;
const INET_DIAG_BC_D_LE: u8 = 5;
const INET_DIAG_BC_S_EQ: u8 = 11;
const INET_DIAG_BC_D_EQ: u8 = 12;

/// `sizeof(struct inet_diag_bc_op)`.
const OP_LEN: usize = 4;

/// Which port a comparison reads and how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortCmp {
    /// `INET_DIAG_BC_S_GE`: local port >= operand.
    SrcGe,
    /// `INET_DIAG_BC_S_LE`: local port <= operand.
    SrcLe,
    /// `INET_DIAG_BC_S_EQ` (Linux 4.16+): local port == operand.
    SrcEq,
    /// `INET_DIAG_BC_D_GE`: remote port >= operand.
    DstGe,
    /// `INET_DIAG_BC_D_LE`: remote port <= operand.
    DstLe,
    /// `INET_DIAG_BC_D_EQ` (Linux 4.16+): remote port == operand.
    DstEq,
}

impl PortCmp {
    fn code(self) -> u8 {
        match self {
            PortCmp::SrcGe => INET_DIAG_BC_S_GE,
            PortCmp::SrcLe => INET_DIAG_BC_S_LE,
            PortCmp::SrcEq => INET_DIAG_BC_S_EQ,
            PortCmp::DstGe => INET_DIAG_BC_D_GE,
            PortCmp::DstLe => INET_DIAG_BC_D_LE,
            PortCmp::DstEq => INET_DIAG_BC_D_EQ,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            INET_DIAG_BC_S_GE => PortCmp::SrcGe,
            INET_DIAG_BC_S_LE => PortCmp::SrcLe,
            INET_DIAG_BC_S_EQ => PortCmp::SrcEq,
            INET_DIAG_BC_D_GE => PortCmp::DstGe,
            INET_DIAG_BC_D_LE => PortCmp::DstLe,
            INET_DIAG_BC_D_EQ => PortCmp::DstEq,
            _ => return None,
        })
    }
}

/// One instruction: the op and its operand, with its two jumps in bytes
/// from the op's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `INET_DIAG_BC_NOP`: always on by `yes`.
    Nop { yes: u8, no: u16 },
    /// `INET_DIAG_BC_JMP`: always on by `no` (`yes` is only audited).
    Jmp { yes: u8, no: u16 },
    /// A port comparison (8 bytes: the op, then an op holding the port).
    Port {
        cmp: PortCmp,
        port: u16,
        yes: u8,
        no: u16,
    },
}

impl Op {
    /// Bytes it takes in the program.
    pub fn byte_len(&self) -> usize {
        match self {
            Op::Nop { .. } | Op::Jmp { .. } => OP_LEN,
            Op::Port { .. } => 2 * OP_LEN,
        }
    }

    fn emit(&self, out: &mut [u8]) {
        let (code, yes, no) = match *self {
            Op::Nop { yes, no } => (INET_DIAG_BC_NOP, yes, no),
            Op::Jmp { yes, no } => (INET_DIAG_BC_JMP, yes, no),
            Op::Port { cmp, yes, no, .. } => (cmp.code(), yes, no),
        };
        write_op(&mut out[..OP_LEN], code, yes, no);
        if let Op::Port { port, .. } = *self {
            write_op(&mut out[OP_LEN..2 * OP_LEN], 0, 0, port);
        }
    }
}

fn write_op(out: &mut [u8], code: u8, yes: u8, no: u16) {
    out[0] = code;
    out[1] = yes;
    out[2..4].copy_from_slice(&no.to_ne_bytes());
}

/// Why bytes are not a program this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytecodeError {
    #[error("inet_diag bytecode: op at byte {offset} needs {need} bytes, {have} left")]
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    /// Host conditions, marks, devices, cgroups and `AUTO` are valid
    /// kernel ops this program never uses.
    #[error("inet_diag bytecode: op code {code} at byte {offset} is not supported")]
    UnsupportedCode { offset: usize, code: u8 },
    #[error("inet_diag bytecode: attribute type {0}, not INET_DIAG_REQ_BYTECODE (1)")]
    WrongAttribute(u16),
}

/// A filter program, sent as the `INET_DIAG_REQ_BYTECODE` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytecode {
    pub ops: Vec<Op>,
}

impl Bytecode {
    /// `sport == p1 || sport == p2 || ...`, or `None` for no ports or for
    /// more than a 16-bit jump can skip (about 3,000 ports).
    ///
    /// Each port is `S_GE p` then `S_LE p` (16 bytes; `S_EQ` would be 8
    /// but needs a 4.16+ kernel), followed, except for the last, by a
    /// `JMP` to the end: the layout `ss` builds for `sport = :a or sport
    /// = :b`. A failed comparison jumps 4 bytes past its clause: over the
    /// `JMP` into the next clause or, for the last clause, 4 past the
    /// end, which rejects.
    pub fn sport_any_of(ports: &[u16]) -> Option<Self> {
        const CLAUSE: usize = 16;
        let total = (ports.len() * (CLAUSE + OP_LEN)).checked_sub(OP_LEN)?;
        u16::try_from(total + OP_LEN).ok()?;
        let mut ops = Vec::with_capacity(ports.len() * 3);
        let mut at = 0;
        for (i, &port) in ports.iter().enumerate() {
            let end = at + CLAUSE;
            // From an op at `from`, the jump to 4 bytes past the clause
            // (20 or 12). The JMP's jump is at most `total`, checked above.
            let miss = |from: usize| (end + OP_LEN - from) as u16;
            ops.push(Op::Port {
                cmp: PortCmp::SrcGe,
                port,
                yes: 8,
                no: miss(at),
            });
            ops.push(Op::Port {
                cmp: PortCmp::SrcLe,
                port,
                yes: 8,
                no: miss(at + 8),
            });
            at = end;
            if i + 1 < ports.len() {
                // Matched: over the remaining clauses, to the end.
                ops.push(Op::Jmp {
                    yes: OP_LEN as u8,
                    no: (total - at) as u16,
                });
                at += OP_LEN;
            }
        }
        Some(Bytecode { ops })
    }

    /// Read a program (the attribute's value). A port operand's `code`
    /// and `yes` are ignored, as the kernel ignores them.
    pub fn parse_value(mut bytes: &[u8]) -> Result<Self, BytecodeError> {
        let mut ops = Vec::with_capacity(bytes.len() / OP_LEN);
        let mut offset = 0;
        while !bytes.is_empty() {
            let truncated = |need: usize| BytecodeError::Truncated {
                offset,
                need,
                have: bytes.len(),
            };
            let &[code, yes, n0, n1, ref operand @ ..] = bytes else {
                return Err(truncated(OP_LEN));
            };
            let no = u16::from_ne_bytes([n0, n1]);
            let op = match code {
                INET_DIAG_BC_NOP => Op::Nop { yes, no },
                INET_DIAG_BC_JMP => Op::Jmp { yes, no },
                _ => {
                    let cmp = PortCmp::from_code(code)
                        .ok_or(BytecodeError::UnsupportedCode { offset, code })?;
                    let &[_, _, p0, p1, ..] = operand else {
                        return Err(truncated(2 * OP_LEN));
                    };
                    Op::Port {
                        cmp,
                        port: u16::from_ne_bytes([p0, p1]),
                        yes,
                        no,
                    }
                }
            };
            bytes = &bytes[op.byte_len()..];
            offset += op.byte_len();
            ops.push(op);
        }
        Ok(Bytecode { ops })
    }
}

impl Nla for Bytecode {
    fn value_len(&self) -> usize {
        self.ops.iter().map(Op::byte_len).sum()
    }

    fn kind(&self) -> u16 {
        INET_DIAG_REQ_BYTECODE
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        let mut at = 0;
        for op in &self.ops {
            op.emit(&mut buffer[at..at + op.byte_len()]);
            at += op.byte_len();
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&T>> for Bytecode {
    fn parse(buf: &NlaBuffer<&T>) -> Result<Self, DecodeError> {
        let parsed = if buf.kind() == INET_DIAG_REQ_BYTECODE {
            Bytecode::parse_value(buf.value())
        } else {
            Err(BytecodeError::WrongAttribute(buf.kind()))
        };
        parsed.map_err(|e| DecodeError::from(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    /// The attribute as bytes, through the crate's `Emitable`.
    fn emit(bc: &Bytecode) -> Vec<u8> {
        let mut buf = vec![0xaa; bc.buffer_len()];
        bc.emit(&mut buf);
        buf
    }

    fn parse(attr: &[u8]) -> Result<Bytecode, DecodeError> {
        Bytecode::parse(&NlaBuffer::new_checked(attr)?)
    }

    /// `inet_diag_bc_run` for a socket on local port `sport` (remote port
    /// 0), on the raw bytes: a model of the kernel, not of this module.
    fn kernel_runs(bc: &[u8], sport: u16) -> bool {
        let mut len = bc.len() as isize;
        let mut at = 0usize;
        while len > 0 {
            let (code, yes, no) = (
                bc[at],
                bc[at + 1],
                u16::from_ne_bytes([bc[at + 2], bc[at + 3]]),
            );
            let operand = || u16::from_ne_bytes([bc[at + 6], bc[at + 7]]);
            let hit = match code {
                0 => true,
                1 => false,
                2 => sport >= operand(),
                3 => sport <= operand(),
                11 => sport == operand(),
                other => panic!("op {other} not modelled"),
            };
            let step = if hit {
                usize::from(yes)
            } else {
                usize::from(no)
            };
            len -= step as isize;
            at += step;
        }
        len == 0
    }

    /// `inet_diag_bc_audit` for NOP, JMP and port comparisons.
    fn kernel_accepts(bc: &[u8]) -> bool {
        let reachable = |target: usize| {
            let mut at = 0;
            while at < target {
                let yes = usize::from(bc[at + 1]);
                if yes < 4 || yes % 4 != 0 {
                    return false;
                }
                at += yes;
            }
            at == target
        };
        let mut at = 0;
        let mut len = bc.len() as isize;
        while len > 0 {
            let (code, yes, no) = (
                bc[at],
                bc[at + 1] as isize,
                u16::from_ne_bytes([bc[at + 2], bc[at + 3]]) as isize,
            );
            let min_len = match code {
                0 | 1 => 4,
                2 | 3 | 4 | 5 | 11 | 12 => 8,
                _ => return false,
            };
            if len < min_len {
                return false;
            }
            if code != 0 {
                if no < min_len || no > len + 4 || no % 4 != 0 {
                    return false;
                }
                if no < len && !reachable(at + no as usize) {
                    return false;
                }
            }
            if yes < min_len || yes > len + 4 || yes % 4 != 0 {
                return false;
            }
            at += yes as usize;
            len -= yes;
        }
        len == 0
    }

    #[test]
    fn one_port_emits_the_kernel_layout() {
        let bc = Bytecode::sport_any_of(&[8000]).unwrap();
        #[rustfmt::skip]
        let want: [u8; 20] = [
            20, 0, 1, 0,          // nlattr: len 4 + 16, INET_DIAG_REQ_BYTECODE
            2, 8, 20, 0,          // S_GE, yes +8, no +20 (16 left + 4: reject)
            0, 0, 0x40, 0x1f,     // operand: port 8000 in `no`
            3, 8, 12, 0,          // S_LE, yes +8, no +12 (8 left + 4: reject)
            0, 0, 0x40, 0x1f,     // operand: port 8000
        ];
        assert_eq!(emit(&bc), want);
        assert_eq!(parse(&want).unwrap(), bc);
    }

    #[test]
    fn two_ports_or() {
        let bc = Bytecode::sport_any_of(&[80, 81]).unwrap();
        #[rustfmt::skip]
        let want: [u8; 40] = [
            40, 0, 1, 0,                 // nlattr: len 4 + 36
            2, 8, 20, 0,  0, 0, 80, 0,   // S_GE 80, miss → +20 = second clause
            3, 8, 12, 0,  0, 0, 80, 0,   // S_LE 80, miss → +12 = second clause
            1, 4, 20, 0,                 // JMP +20: matched, to the end (36)
            2, 8, 20, 0,  0, 0, 81, 0,   // S_GE 81, miss → past the end
            3, 8, 12, 0,  0, 0, 81, 0,   // S_LE 81
        ];
        assert_eq!(emit(&bc), want);
        let port = |cmp, port, no| Op::Port {
            cmp,
            port,
            yes: 8,
            no,
        };
        assert_eq!(
            parse(&want).unwrap().ops,
            [
                port(PortCmp::SrcGe, 80, 20),
                port(PortCmp::SrcLe, 80, 12),
                Op::Jmp { yes: 4, no: 20 },
                port(PortCmp::SrcGe, 81, 20),
                port(PortCmp::SrcLe, 81, 12),
            ]
        );
        assert_eq!(Bytecode::sport_any_of(&[]), None);
    }

    #[test]
    fn the_kernel_would_accept_and_select_exactly_the_ports() {
        for ports in [&[8000][..], &[80, 81], &[1, 443, 8080, 65535]] {
            let bc = Bytecode::sport_any_of(ports).unwrap();
            let value = &emit(&bc)[4..];
            assert!(kernel_accepts(value), "{ports:?}");
            for sport in [
                0, 1, 79, 80, 81, 82, 443, 7999, 8000, 8001, 8080, 65534, 65535,
            ] {
                assert_eq!(
                    kernel_runs(value, sport),
                    ports.contains(&sport),
                    "{ports:?} {sport}"
                );
            }
        }
        // The model is not vacuous: a 4-past-the-end `yes` is refused.
        assert!(!kernel_accepts(&[1, 8, 8, 0]));
    }

    #[test]
    fn the_longest_program_still_fits_its_jumps() {
        let ports: Vec<u16> = (1..=3276).collect();
        let bc = Bytecode::sport_any_of(&ports).unwrap();
        assert!(kernel_accepts(&emit(&bc)[4..]));
        let more: Vec<u16> = (1..=3277).collect();
        assert_eq!(Bytecode::sport_any_of(&more), None);
    }

    #[test]
    fn parses_equality_and_destination_ops() {
        #[rustfmt::skip]
        let value = [
            11, 8, 16, 0,  0, 0, 0x50, 0,  // S_EQ 80, miss → +16
            0, 4, 0, 0,                    // NOP
            12, 8, 12, 0,  9, 9, 0xbb, 1,  // D_EQ 443 (operand code/yes ignored)
        ];
        let bc = Bytecode::parse_value(&value).unwrap();
        assert_eq!(
            bc.ops,
            [
                Op::Port {
                    cmp: PortCmp::SrcEq,
                    port: 80,
                    yes: 8,
                    no: 16
                },
                Op::Nop { yes: 4, no: 0 },
                Op::Port {
                    cmp: PortCmp::DstEq,
                    port: 443,
                    yes: 8,
                    no: 12
                },
            ]
        );
        let mut back = vec![0; bc.value_len()];
        bc.emit_value(&mut back);
        assert_eq!(back[..12], value[..12]);
        // The operand comes back with code and yes zeroed.
        assert_eq!(back[12..], [12, 8, 12, 0, 0, 0, 0xbb, 1]);
    }

    #[test]
    fn malformed_programs_are_errors() {
        assert_eq!(
            Bytecode::parse_value(&[2, 8, 12, 0, 0, 0]),
            Err(BytecodeError::Truncated {
                offset: 0,
                need: 8,
                have: 6
            })
        );
        assert_eq!(
            Bytecode::parse_value(&[1, 4, 8, 0, 0, 4]),
            Err(BytecodeError::Truncated {
                offset: 4,
                need: 4,
                have: 2
            })
        );
        assert_eq!(
            Bytecode::parse_value(&[1, 4, 8, 0, 9, 8, 8, 0, 1, 0, 0, 0]),
            Err(BytecodeError::UnsupportedCode { offset: 4, code: 9 })
        );
        // INET_DIAG_REQ_SK_BPF_STORAGES (2) is not a program.
        assert!(parse(&[8, 0, 2, 0, 1, 4, 4, 0]).is_err());
        assert_eq!(parse(&[4, 0, 1, 0]).unwrap(), Bytecode::default());
    }
}
