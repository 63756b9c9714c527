//! Light-skeleton loading, as libbpf's `bpf_load_and_run`
//! (tools/lib/bpf/skel_internal.h) does it: the committed blobs from
//! `scripts/build-bpf` are a data blob (BTF, the program, its CO-RE and
//! kfunc relocations) and a loader program (BPF_PROG_TYPE_SYSCALL). We put
//! the data in a one-element array map, load the loader with that map in
//! its fd array, and run it once: in the kernel it loads the BTF, resolves
//! kfuncs, loads the iterator program with the CO-RE relocations applied
//! by the verifier, and writes the new program's fd into the context we
//! passed. No ELF parsing and no BTF parsing happen in user space.
//!
//! Must not: keep any fd but the programs', their maps' and their
//! iterator links.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::sys;

/// One light skeleton: one iterator program and `maps` maps, which the
/// loader creates (scripts/build-bpf fails if a program stops fitting the
/// count written here).
pub struct Skeleton {
    pub name: &'static str,
    maps: usize,
    data: &'static [u8],
    insns: &'static [u8],
}

/// The fd-table walk (`iter/task`, open-coded loops; kernel >= 6.4).
pub static TASK: Skeleton = Skeleton {
    name: "holders_task",
    maps: 0,
    data: include_bytes!("../../../bpf/gen/holders_task.data"),
    insns: include_bytes!("../../../bpf/gen/holders_task.insns"),
};

/// The holders of a watch set, for the ticks of `watch` and `export`
/// (open-coded task iterator; kernel >= 6.7), with its `watch` and `tick`
/// maps.
pub static WATCH: Skeleton = Skeleton {
    name: "holders_watch",
    maps: 2,
    data: include_bytes!("../../../bpf/gen/holders_watch.data"),
    insns: include_bytes!("../../../bpf/gen/holders_watch.insns"),
};

/// One call per open file (`iter/task_file`; kernel >= 5.8).
pub static TASK_FILE: Skeleton = Skeleton {
    name: "holders_file",
    maps: 0,
    data: include_bytes!("../../../bpf/gen/holders_file.data"),
    insns: include_bytes!("../../../bpf/gen/holders_file.insns"),
};

/// The loader context: `struct bpf_loader_ctx` (size_t sz; u32
/// log_level; u32 log_size; u64 log_buf), then one `struct bpf_map_desc`
/// per map (16 bytes; the loader writes the map's fd in its first 4),
/// then the one `struct bpf_prog_desc` (int prog_fd). `sz` covers all of
/// it, as the generated skeleton's `(void *)&skel->links - (void *)skel`.
const CTX_HEAD: usize = 24;
const MAP_DESC: usize = 16;

impl Skeleton {
    fn ctx_len(&self) -> usize {
        CTX_HEAD + self.maps * MAP_DESC + 4
    }

    fn prog_fd_at(&self) -> usize {
        CTX_HEAD + self.maps * MAP_DESC
    }
}

/// The fd at `at` in the loader context, which the loader installed in
/// our table for us.
fn fd_at(ctx: &[u8], at: usize) -> Option<OwnedFd> {
    let mut fd = [0u8; 4];
    fd.copy_from_slice(ctx.get(at..at + 4)?);
    let fd = i32::from_ne_bytes(fd);
    // SAFETY: the loader program installed this fd in our table and
    // handed it to us; nothing else owns it.
    (fd > 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Where a load failed, and why.
#[derive(Debug)]
pub struct LoadError {
    pub stage: &'static str,
    pub source: io::Error,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.source)
    }
}

fn at(stage: &'static str) -> impl FnOnce(io::Error) -> LoadError {
    move |source| LoadError { stage, source }
}

/// Test-only fault injection, honest about what it does: with
/// `SOCKMAP_BPF_FAULT=corrupt` the loader program is handed a truncated
/// data blob, so the load fails in the kernel exactly as a damaged or
/// rejected program would (and the caller must fall back).
fn data_for(skel: &Skeleton) -> &'static [u8] {
    if std::env::var_os("SOCKMAP_BPF_FAULT").is_some_and(|v| v == "corrupt") {
        &skel.data[..skel.data.len() / 2]
    } else {
        skel.data
    }
}

/// What a load gives: the program, and its maps in skeleton order.
pub struct Loaded {
    pub prog: OwnedFd,
    pub maps: Vec<OwnedFd>,
}

/// Load `skel`'s program. With `log` the verifier writes its log there
/// (level 1); it is only worth reading when the load failed.
pub fn load(skel: &Skeleton, log: Option<&mut [u8]>) -> Result<Loaded, LoadError> {
    let data = data_for(skel);
    let value_size = u32::try_from(data.len())
        .map_err(|_| at("loader map")(io::ErrorKind::InvalidData.into()))?;
    let map = sys::map_create(sys::BPF_MAP_TYPE_ARRAY, "__loader.map", 4, value_size, 1)
        .map_err(at("create loader map"))?;
    sys::map_update(&map, &0u32.to_ne_bytes(), data).map_err(at("fill loader map"))?;

    let mut ctx = vec![0u8; skel.ctx_len()];
    ctx[0..8].copy_from_slice(&(skel.ctx_len() as u64).to_ne_bytes());
    let (log_level, log_ptr, log_len) = match &log {
        Some(buf) => (1u32, buf.as_ptr() as u64, buf.len() as u32),
        None => (0, 0, 0),
    };
    ctx[8..12].copy_from_slice(&log_level.to_ne_bytes());
    ctx[12..16].copy_from_slice(&log_len.to_ne_bytes());
    ctx[16..24].copy_from_slice(&log_ptr.to_ne_bytes());

    let license: &CStr = c"Dual BSD/GPL";
    let loader = sys::prog_load(sys::Load {
        prog_type: sys::BPF_PROG_TYPE_SYSCALL,
        insns: skel.insns,
        license,
        name: "__loader.prog",
        prog_flags: sys::BPF_F_SLEEPABLE,
        fd_array: &[map.as_raw_fd()],
        log_level,
        log,
    })
    .map_err(at("load loader program"))?;
    let ret = sys::prog_run(&loader, &mut ctx).map_err(at("run loader program"))? as i32;
    if ret < 0 {
        // The loader returns -errno of the step that failed (typically
        // the iterator program's verification, or a kfunc not found).
        return Err(at("load iterator program")(io::Error::from_raw_os_error(
            -ret,
        )));
    }
    // Take ownership of every fd the loader installed before judging the
    // result, so none leaks when one is missing.
    let maps: Vec<Option<OwnedFd>> = (0..skel.maps)
        .map(|i| fd_at(&ctx, CTX_HEAD + i * MAP_DESC))
        .collect();
    let prog = fd_at(&ctx, skel.prog_fd_at());
    match (prog, maps.into_iter().collect::<Option<Vec<_>>>()) {
        (Some(prog), Some(maps)) => Ok(Loaded { prog, maps }),
        _ => Err(at("load iterator program")(
            io::ErrorKind::InvalidData.into(),
        )),
    }
}

/// A loaded iterator program and its maps.
pub struct Program {
    prog: OwnedFd,
    maps: Vec<OwnedFd>,
}

impl Program {
    pub fn load(skel: &Skeleton) -> Result<Self, LoadError> {
        load(skel, None).map(|l| Program {
            prog: l.prog,
            maps: l.maps,
        })
    }

    /// Its `i`th map (skeleton order).
    pub fn map(&self, i: usize) -> Option<&OwnedFd> {
        self.maps.get(i)
    }

    /// Attach it: over every task, or only the tasks of process `pid`
    /// (kernel >= 6.1).
    pub fn attach(&self, pid: Option<u32>) -> Result<Link, LoadError> {
        // union bpf_iter_link_info: .task = { u32 tid; u32 pid; u32 pid_fd; }
        let mut info = [0u8; 16];
        let info = match pid {
            Some(pid) => {
                info[4..8].copy_from_slice(&pid.to_ne_bytes());
                Some(&info[..])
            }
            None => None,
        };
        sys::link_create(self.prog.as_raw_fd(), sys::BPF_TRACE_ITER, info)
            .map(Link)
            .map_err(at("attach iterator"))
    }
}

/// An attached iterator: each `read_all` runs the program once over its tasks.
pub struct Link(OwnedFd);

impl Link {
    /// Run the iterator and append everything it wrote to `buf`.
    pub fn read_all(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        const CHUNK: usize = 64 * 1024;
        let it = sys::iter_create(&self.0)?;
        loop {
            buf.reserve(CHUNK);
            match rustix::io::read(&it, rustix::buffer::spare_capacity(buf)) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
