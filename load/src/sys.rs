//! The process limits and accounting the load client needs from the OS: raising the open-file
//! limit (one descriptor per connection, so the usual soft limit of 1,024 stops a large run),
//! and its own CPU time and peak memory (`getrusage`), so a report can show that the client was
//! not the bottleneck.

use std::time::Duration;

/// The open-file limits before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the limits, or the OS error.
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(NofileLimit {
        soft_before,
        soft,
        hard,
    })
}

/// This process's resource use so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time of every thread.
    pub cpu: Duration,
    /// Peak resident set size in bytes.
    pub max_rss_bytes: u64,
}

/// `getrusage(RUSAGE_SELF)`; zeros if the call fails (it cannot with these arguments).
#[allow(
    unsafe_code,
    reason = "getrusage has no safe wrapper in std or rlimit; both unsafe calls are checked below"
)]
pub fn usage() -> Usage {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage struct through a valid, exclusive pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Usage::default();
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let l = raise_nofile_limit().expect("rlimit");
        assert_eq!(l.soft, l.hard);
        assert!(l.soft >= l.soft_before);
    }

    #[test]
    fn usage_grows_with_work() {
        let before = usage();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = usage();
        assert!(after.cpu > before.cpu);
        assert!(after.max_rss_bytes > 0);
    }
}
