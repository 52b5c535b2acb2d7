//! How the process uses the allocator: set up once at start, and freed heap
//! memory given back after a load. Never on the query path (which allocates
//! nothing).
//!
//! Set-up ([`configure`], glibc only): one malloc arena for every thread, and
//! a fixed threshold above which blocks are mapped apart. By default glibc gives
//! each thread that allocates its own arena (up to 8 per core): the pools are
//! built on a runtime thread, the zone and config read on the main thread, and
//! the freed loading buffers then sit between live blocks in several arenas
//! (65 MB free in the arenas at 1,000,000 records + 100,000 pools, about half
//! of it resident; see bench/RESULTS.md, "Issue 17, held memory"). The query
//! path allocates nothing, and the threads that allocate after start-up (API,
//! probes, control) take small blocks from glibc's per-thread cache before the
//! arena's lock. With the threshold left dynamic, glibc raises it (up to 32 MB)
//! each time a large mapped block is freed, and later large buffers of loading
//! then land inside the heap, where they fragment it too.
//! Either setting is left alone when the operator chose it (`MALLOC_ARENA_MAX`,
//! `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES`).
//!
//! Giving back ([`give_back`]): reading a large config and zone frees hundreds of
//! MB of short-lived buffers; glibc keeps freed memory below its heap's top for
//! reuse, so the process would go on holding it. `malloc_trim` returns those
//! free pages: it is called once after start-up and after each reload.
//!
//! With `mmsg`, the only module with `unsafe` code: calls with no pointers.
#![allow(unsafe_code)]

/// Blocks of this size and above are mapped apart, and unmapped when freed.
pub const MMAP_THRESHOLD: i32 = 1 << 20;

/// Sets the allocator up as the module docs say; to be called first thing in
/// `main`, before any thread is started (glibc only; a no-op elsewhere).
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = |var: &str, tunable: &str| {
            std::env::var_os(var).is_some()
                || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains(&format!("glibc.malloc.{tunable}")))
        };
        if !chosen("MALLOC_ARENA_MAX", "arena_max") {
            // SAFETY: mallopt takes no pointers; it only changes a malloc
            // parameter, which glibc guards with its own lock.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
        if !chosen("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// Returns the heap's free pages to the system (glibc only; a no-op elsewhere).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases free memory;
    // it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
