//! Giving freed heap memory back to the system after a load. Reading a large
//! config and zone frees hundreds of MB of short-lived buffers; glibc keeps
//! freed memory below its heap's top for reuse, so the process would go on
//! holding it (the RSS after reading 100,000 pools stayed at the start-up peak).
//! `malloc_trim` returns those free pages: it is called once after start-up
//! and after each reload, never on the query path.
//!
//! With `mmsg`, the only module with `unsafe` code: one call with no pointers.
#![allow(unsafe_code)]

/// Returns the heap's free pages to the system (glibc only; a no-op elsewhere).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases free memory;
    // it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
