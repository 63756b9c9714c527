//! Signal flags for the fork server. Owns the handlers for
//! SIGINT/SIGTERM/SIGHUP (stop), SIGCHLD (a worker ended) and SIGALRM (a periodic tick). Every
//! handler only stores to an atomic, the one thing that is async-signal-safe;
//! the loops look at the flags. Must not do any other work in a handler.
//!
//! The handlers are installed WITHOUT `SA_RESTART`, so a blocking `accept()`,
//! `read()` or `pause()` returns `EINTR` when a signal arrives. That alone
//! leaves a race: a signal landing between "check the flag" and "enter the
//! blocking call" would be noticed only at the next connection. The tick
//! (SIGALRM every [`TICK`]) bounds that: the blocking call is interrupted at
//! least that often and the flag is looked at again.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a blocking call is interrupted to re-check the flags.
pub(super) const TICK: Duration = Duration::from_millis(500);

static STOP: AtomicBool = AtomicBool::new(false);
static CHILD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_child(_: libc::c_int) {
    CHILD.store(true, Ordering::SeqCst);
}

extern "C" fn on_tick(_: libc::c_int) {}

fn set_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handlers only touch atomics.
    // No SA_RESTART on purpose (see the module comment).
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = if sig == libc::SIGCHLD {
            libc::SA_NOCLDSTOP
        } else {
            0
        };
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Install every handler (in the parent, before the first fork; children
/// inherit them).
pub(super) fn install() -> io::Result<()> {
    set_handler(libc::SIGINT, on_stop)?;
    set_handler(libc::SIGTERM, on_stop)?;
    // A closed terminal or `kill -HUP`: stop cleanly, as for SIGTERM.
    set_handler(libc::SIGHUP, on_stop)?;
    set_handler(libc::SIGCHLD, on_child)?;
    set_handler(libc::SIGALRM, on_tick)
}

/// Start the periodic SIGALRM. Interval timers are not inherited across
/// fork(), so every process calls this for itself.
pub(super) fn start_tick() -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: TICK.as_secs() as libc::time_t,
        tv_usec: TICK.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// In a freshly forked worker: it has no children of its own.
pub(super) fn reset_in_child() {
    // SAFETY: restoring the default disposition is always valid.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    CHILD.store(false, Ordering::SeqCst);
}

/// SIGINT, SIGTERM or SIGHUP arrived.
pub(super) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// A SIGCHLD arrived since the last call.
pub(super) fn take_child_event() -> bool {
    CHILD.swap(false, Ordering::SeqCst)
}
