//! How much memory the process holds: resident set size, read from Linux's
//! `/proc`.
//!
//! Resident pages are the honest measure of what a coroutine costs: a
//! greenlet's stack may reserve 128 KiB of address space, but only the pages
//! it touched are resident. Where `/proc` is missing (not Linux), every
//! function returns `None` and memory rows are left out.

/// Resident memory of this process right now, in bytes.
pub fn current_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// The most resident memory this process has held since it started (or since
/// the last [`reset_peak`]), in bytes.
pub fn peak_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Start [`peak_bytes`] afresh from the current resident size. Returns whether
/// the kernel accepted (Linux 4.0 and later do).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `kB` figure from `/proc/self/status`. The kernel states it in KiB there,
/// so no page size has to be known (it is 4 KiB on x86-64 but 16 or 64 KiB
/// on some ARM machines).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_memory_raises_resident_size() {
        let Some(before) = current_bytes() else {
            return; // not Linux: nothing to read
        };
        let block = vec![1u8; 32 << 20];
        let after = current_bytes().unwrap();
        assert!(std::hint::black_box(&block).iter().all(|&b| b == 1));
        assert!(after >= before + (16 << 20), "{before} -> {after}");
        assert!(peak_bytes().unwrap() >= after);
    }
}
