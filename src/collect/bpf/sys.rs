//! The handful of raw `bpf(2)` commands a light skeleton needs, as
//! `#[repr(C)]` mirrors of the parts of `union bpf_attr` they use
//! (include/uapi/linux/bpf.h; the kernel accepts a shorter attr and
//! zero-fills the rest). Owns nothing but the syscall and its layouts; the
//! loading logic is in `skel`.
//!
//! Hand-written because no crate loads a light skeleton without libbpf:
//! libbpf-rs links the system's libelf and zlib (not on a fresh machine),
//! and aya (pure Rust) parses BTF in user space instead and needs a newer
//! rustc than this project's for iterator programs.

use std::ffi::c_void;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TEST_RUN: libc::c_int = 10;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_ITER_CREATE: libc::c_int = 33;

pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;
pub const BPF_TRACE_ITER: u32 = 28;
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;

#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}
const _: () = assert!(offset_of!(MapCreate, map_name) == 28);

#[repr(C)]
#[derive(Default)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}
const _: () = assert!(offset_of!(MapElem, key) == 8 && size_of::<MapElem>() == 32);

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
}
const _: () =
    assert!(offset_of!(ProgLoad, prog_name) == 48 && offset_of!(ProgLoad, fd_array) == 120);

#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}
const _: () = assert!(offset_of!(TestRun, ctx_in) == 48 && size_of::<TestRun>() == 80);

#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    iter_info: u64,
    iter_info_len: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct IterCreate {
    link_fd: u32,
    flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`: the raw return value or the errno.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of union
    // bpf_attr for `cmd`; the kernel reads (and for TEST_RUN writes) at
    // most size_of::<T>() bytes of it. Pointers inside it are set by the
    // callers below to buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A syscall that returned a new fd.
fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just installed `fd` in our table for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

pub fn map_create(
    map_type: u32,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let mut a = MapCreate {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_name: name16(name),
        ..Default::default()
    };
    bpf_fd(BPF_MAP_CREATE, &mut a)
}

pub fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut a = MapElem {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// What BPF_PROG_LOAD needs for the loader program.
pub struct Load<'a> {
    pub prog_type: u32,
    pub insns: &'a [u8],
    pub license: &'a std::ffi::CStr,
    pub name: &'a str,
    pub prog_flags: u32,
    pub fd_array: &'a [i32],
    /// Verifier log: level and buffer (level 0: none).
    pub log_level: u32,
    pub log: Option<&'a mut [u8]>,
}

pub fn prog_load(l: Load<'_>) -> io::Result<OwnedFd> {
    let (log_buf, log_size) = match l.log {
        Some(buf) => (buf.as_mut_ptr() as u64, buf.len() as u32),
        None => (0, 0),
    };
    let mut a = ProgLoad {
        prog_type: l.prog_type,
        insn_cnt: (l.insns.len() / 8) as u32,
        insns: l.insns.as_ptr() as u64,
        license: l.license.as_ptr() as u64,
        log_level: if log_size > 0 { l.log_level } else { 0 },
        log_size,
        log_buf,
        prog_flags: l.prog_flags,
        prog_name: name16(l.name),
        fd_array: l.fd_array.as_ptr() as u64,
        ..Default::default()
    };
    bpf_fd(BPF_PROG_LOAD, &mut a)
}

/// Run `prog` once with `ctx` as its context (copied in, and back out to
/// `ctx`). Returns the program's return value.
pub fn prog_run(prog: &OwnedFd, ctx: &mut [u8]) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut a = TestRun {
        prog_fd: prog.as_raw_fd() as u32,
        ctx_size_in: ctx.len() as u32,
        ctx_in: ctx.as_mut_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut a)?;
    Ok(a.retval)
}

/// Attach `prog_fd`; `iter_info` is a `union bpf_iter_link_info`, if any.
pub fn link_create(
    prog_fd: i32,
    attach_type: u32,
    iter_info: Option<&[u8]>,
) -> io::Result<OwnedFd> {
    let mut a = LinkCreate {
        prog_fd: prog_fd as u32,
        attach_type,
        iter_info: iter_info.map_or(0, |i| i.as_ptr() as u64),
        iter_info_len: iter_info.map_or(0, |i| i.len() as u32),
        ..Default::default()
    };
    bpf_fd(BPF_LINK_CREATE, &mut a)
}

pub fn iter_create(link: &OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut a = IterCreate {
        link_fd: link.as_raw_fd() as u32,
        flags: 0,
    };
    bpf_fd(BPF_ITER_CREATE, &mut a)
}
