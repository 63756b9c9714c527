//! Ctrl-C for long-running commands (`watch`, `demo`): a SIGINT, SIGTERM
//! and SIGHUP (the terminal went away) handler that only sets a flag,
//! polled by the loops.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Install the handler (idempotent). Fails only if the kernel refuses the
/// handler; then the command would not stop cleanly, so it does not start.
pub fn install() -> crate::error::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to
        // an atomic, which is async-signal-safe.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(crate::error::Error::os(
                format!("cannot install a handler for signal {sig}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleep until `deadline` or an interrupt, whichever comes first.
pub fn sleep_until(deadline: std::time::Instant) {
    loop {
        let now = std::time::Instant::now();
        if requested() || now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(50)));
    }
}
