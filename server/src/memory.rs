//! Gives freed memory back to the system.
//!
//! glibc's malloc keeps what the program frees for its next allocations. Two habits of it make a
//! server's memory stay high for no use:
//!
//! - A freed large block raises the size from which blocks are mapped on their own, up to 32 MB,
//!   so that password hashing's 19 MiB comes from the heap the second time and stays there (40 MB
//!   of a fresh server's 57 MB was that). A fixed threshold keeps large blocks mapped, returned
//!   whole when freed.
//! - Memory freed amid memory still in use (ten thousand closed sockets' buffers between the
//!   survivors' allocations) is only returned by `malloc_trim`. The server trims when many
//!   connections have closed since the last trim, off the runtime's threads.
//!
//! On other platforms and allocators, nothing here does anything.

use crate::{connections::registry::Registry, shutdown::ShutdownSignal};
use std::{sync::Arc, time::Duration};

/// Blocks from this size up are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Free memory at the top of the heap beyond this goes back to the system at once.
const TRIM_THRESHOLD: i32 = 2 * MMAP_THRESHOLD;
/// Trim once this many connections closed since the last trim (or since the most open).
const CLOSED_BEFORE_TRIM: usize = 256;
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Sets malloc's thresholds; called once, before the server allocates much.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's parameters; any value is safe to pass.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns free memory inside the heap to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When to trim, from the open-connection counts seen: pure, so the rule is tested apart.
#[derive(Debug, Default)]
pub struct TrimRule {
    /// The most connections open since the last trim.
    most: usize,
}

impl TrimRule {
    /// Notes `open` connections; true when enough closed since the last trim.
    pub fn should_trim(&mut self, open: usize) -> bool {
        self.most = self.most.max(open);
        if self.most - open >= CLOSED_BEFORE_TRIM {
            self.most = open;
            return true;
        }
        false
    }
}

/// Watches the open sockets until shutdown, trimming after many closed.
pub async fn run(sockets: Arc<Registry>, mut shutdown: ShutdownSignal) {
    let mut rule = TrimRule::default();
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let (open, _) = sockets.open();
                if rule.should_trim(open) {
                    // It walks the whole heap: not on a thread that serves sockets.
                    let _ = tokio::task::spawn_blocking(trim).await;
                    tracing::debug!(open, "returned freed memory to the system");
                }
            }
            () = shutdown.stopping() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_many_closed_and_not_before() {
        let mut rule = TrimRule::default();
        assert!(!rule.should_trim(1000), "opening is no reason");
        assert!(!rule.should_trim(1000 - CLOSED_BEFORE_TRIM + 1));
        assert!(rule.should_trim(1000 - CLOSED_BEFORE_TRIM), "enough closed since the most");
        assert!(!rule.should_trim(1000 - CLOSED_BEFORE_TRIM), "counted from the trim");
        assert!(!rule.should_trim(2000));
        assert!(rule.should_trim(0));
        assert!(!rule.should_trim(0));
    }
}
