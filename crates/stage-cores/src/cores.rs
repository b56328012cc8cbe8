//! How many cores this machine offers, and how many hubs and processes a
//! command line may ask for.
//!
//! `0` means "one per core" for both `--hubs` and `--procs`. The upper limits
//! are far past anything useful — a hub per core is the point, a few times
//! that only adds switching — and keep a typo (`--hubs 10000`) from starting
//! ten thousand threads, each with its own poller and listening socket.

/// The most hub threads (or tokio workers) per process a command line may ask for.
pub const MAX_HUBS: u16 = 256;

/// The most worker processes a command line may ask for.
pub const MAX_PROCS: u16 = 64;

/// The cores this process may run on (`std::thread::available_parallelism`,
/// which honours CPU affinity and cgroup quotas), at least 1.
pub fn count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `requested`, or one per core if it is 0.
///
/// ```
/// assert_eq!(stage_cores::cores::or_per_core(3), 3);
/// assert_eq!(stage_cores::cores::or_per_core(0), stage_cores::cores::count());
/// ```
pub fn or_per_core(requested: u16) -> usize {
    if requested == 0 {
        count()
    } else {
        usize::from(requested)
    }
}
