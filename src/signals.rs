//! Holding off termination signals while a rotated refresh token is in flight.
//!
//! From the moment a refresh token is sent until its successor is durably on disk,
//! SIGTERM, SIGINT, SIGHUP and SIGQUIT are held: the process notes them and acts on
//! them (with the action it had before) once the last such window closes. A kill
//! then never lands between the issuer's rotation and our save; SIGKILL still can,
//! which the in-flight marker reports.
//!
//! Process-wide, not a per-thread signal mask: with `get --all --jobs N` a signal
//! would otherwise be delivered to a thread outside the window and end the process
//! in the middle of another thread's.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

const HELD: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// The first held signal that arrived, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Open windows, and the actions to restore when the last one closes.
static WINDOWS: Mutex<(usize, Vec<(libc::c_int, libc::sigaction)>)> = Mutex::new((0, Vec::new()));

extern "C" fn note(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    let _ = PENDING.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Has a held signal arrived? A long wait inside a window (the device flow's
/// polling) checks this to give up early; the signal then acts when the window
/// closes.
pub fn pending() -> bool {
    PENDING.load(Ordering::SeqCst) != 0
}

/// A window during which termination signals wait. Windows nest and overlap across
/// threads; the signals take effect when the last one is dropped.
#[must_use]
pub struct Hold(());

impl Hold {
    pub fn new() -> Hold {
        let mut w = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        if w.0 == 0 {
            w.1.clear();
            for sig in HELD {
                // SAFETY: sigaction with a zeroed struct filled in here, a handler
                // that only stores to an atomic, and a valid out-pointer for the old
                // action. SA_RESTART: reads and writes in progress resume instead of
                // failing with EINTR (which would look like a lost answer).
                unsafe {
                    let mut new: libc::sigaction = std::mem::zeroed();
                    new.sa_sigaction = note as *const () as libc::sighandler_t;
                    new.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut new.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, &new, &mut old) == 0 {
                        // A signal the caller ignores (nohup) stays ignored.
                        if old.sa_sigaction == libc::SIG_IGN {
                            libc::sigaction(sig, &old, std::ptr::null_mut());
                        } else {
                            w.1.push((sig, old));
                        }
                    }
                }
            }
        }
        w.0 += 1;
        Hold(())
    }
}

impl Default for Hold {
    fn default() -> Self {
        Hold::new()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut w = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        w.0 = w.0.saturating_sub(1);
        if w.0 > 0 {
            return;
        }
        for (sig, old) in w.1.drain(..) {
            // SAFETY: restores an action that sigaction returned earlier.
            unsafe {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
        let sig = PENDING.swap(0, Ordering::SeqCst);
        if sig != 0 {
            tracing::info!("acting on signal {sig}, held until the credential was saved");
            // SAFETY: raise has no memory preconditions; with the default action
            // restored it ends the process as the signal would have.
            unsafe {
                libc::raise(sig);
            }
        }
    }
}
