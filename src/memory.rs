//! A hard bound on a check's memory: the heap allocator of every check executable counts the live
//! bytes and, past [`HEAP_LIMIT`], ends the run at once, critical, naming the step under way. No
//! server reply (a bulk string announcing 2 GB, a result set announcing 2^40 columns, a stream
//! without end) and no file can grow a check beyond it, whatever the client libraries allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Most live heap a check may use. A real run needs a few MiB of heap at its peak (each MySQL
/// handshake briefly reserves about 4 MiB, mostly never touched; the RSS of a run is about 4 MiB),
/// so this leaves room for a master probing its replicas and keeps the peak RSS under 64 MiB.
pub const HEAP_LIMIT: usize = 48 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(HEAP_LIMIT);
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Sets the cap for this process (`check-topology`, which runs many checks at once, needs more).
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The step under way, for the message (a leaked string: never freed, so always readable here).
static STEP: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());

/// Records `what` as the step under way, for the over-limit message.
pub fn note_step(what: &str) {
    let leaked: &'static mut String = Box::leak(Box::new(what.to_string()));
    STEP.store(leaked, Ordering::Release);
}

/// How the over-limit message is printed: set once by the runner.
pub struct OverLimitReport {
    /// The check's name (`redis-master`).
    pub check: &'static str,
    /// `host:port` or socket.
    pub target: String,
    /// JSON instead of text.
    pub json: bool,
}

static REPORT: std::sync::OnceLock<OverLimitReport> = std::sync::OnceLock::new();

/// Sets how the over-limit message names the check and its target.
pub fn set_report(report: OverLimitReport) {
    let _ = REPORT.set(report);
}

/// Tunes the C allocator (glibc's malloc, under [`CappedAllocator`]) for a process that lives a few
/// milliseconds: blocks up to 32 MiB come from the heap instead of a mapping of their own, and
/// freed memory stays mapped until exit. The MySQL driver allocates two 4 MiB buffers per
/// connection: mapping and unmapping each costs system calls, page faults and, once the watchdog
/// thread exists, a TLB flush on the other CPU. The bound stays [`HEAP_LIMIT`].
pub fn tune_for_short_run() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// The heap allocator of the check executables: the system's, with the live bytes bounded.
pub struct CappedAllocator;

unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        reserve(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        reserve(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        release(layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            reserve(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            release(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

thread_local! {
    /// This thread's own memory budget in bytes (0: none): set on probe threads, so that one peer
    /// sending too much fails its own probe instead of the whole run.
    static BUDGET: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Bytes this thread has allocated and not freed (approximately: frees by other threads of
    /// this thread's blocks are not seen).
    static USED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Raised when this thread passes its budget (the prober watches it).
    static OVER: std::cell::Cell<*const AtomicBool> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Gives the calling thread a memory budget of `bytes`: an allocation that would pass it raises
/// `over` and stops the thread for good (it never returns, so nothing it was doing goes on, and
/// its memory stays bounded by the budget). Used by the probe workers ([`crate::probe`]).
pub fn budget_this_thread(bytes: usize, over: std::sync::Arc<AtomicBool>) {
    // The thread keeps its reference to the flag for as long as it lives.
    OVER.with(|o| o.set(std::sync::Arc::into_raw(over)));
    USED.with(|u| u.set(0));
    BUDGET.with(|b| b.set(bytes));
}

/// Starts counting this thread's budget afresh: each probe a worker runs gets the whole budget
/// (what an earlier probe's results left to other threads is no longer this one's).
pub fn restart_thread_budget() {
    let _ = USED.try_with(|u| u.set(0));
}

/// Whether this thread may allocate `size` more bytes within its budget (always, without one).
fn within_budget(size: usize) -> bool {
    let budget = BUDGET.try_with(|b| b.get()).unwrap_or(0);
    if budget == 0 {
        return true;
    }
    USED.try_with(|u| {
        let after = u.get().saturating_add(size);
        u.set(after);
        after <= budget
    })
    .unwrap_or(true)
}

/// Gives back `size` bytes to this thread's budget.
fn release(size: usize) {
    if BUDGET.try_with(|b| b.get()).unwrap_or(0) != 0 {
        let _ = USED.try_with(|u| u.set(u.get().saturating_sub(size)));
    }
}

/// This thread passed its budget: raise its flag, then stop it forever without allocating (the
/// prober reports the probe as failed and stops waiting for it).
fn over_budget() -> ! {
    if let Ok(flag) = OVER.try_with(|o| o.get()) {
        // SAFETY: set from an Arc this thread keeps alive for good (budget_this_thread).
        if let Some(flag) = unsafe { flag.as_ref() } {
            flag.store(true, Ordering::SeqCst);
        }
    }
    loop {
        // SAFETY: pause only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// Counts `size` more live bytes, or ends the run when that passes the limit.
fn reserve(size: usize) {
    if !within_budget(size) {
        over_budget()
    }
    let before = LIVE.fetch_add(size, Ordering::Relaxed);
    if before.saturating_add(size) > LIMIT.load(Ordering::Relaxed) {
        over_limit(size)
    }
}

/// A fixed buffer to compose the message in without allocating.
struct Buf {
    bytes: [u8; 1536],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.bytes.len() - 2 {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        }
    }

    /// Appends text that came from outside (host names): no quotes, backslashes or control bytes.
    fn push_clean(&mut self, s: &[u8]) {
        for &b in s.iter().take(400) {
            let safe = if b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f { b'_' } else { b };
            self.push(&[safe]);
        }
    }

    fn push_number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// Prints the critical result and exits 2, allocating nothing.
fn over_limit(asked: usize) -> ! {
    let mut buf = Buf { bytes: [0; 1536], len: 0 };
    let step: &[u8] = match unsafe { STEP.load(Ordering::Acquire).as_ref() } {
        Some(s) => s.as_bytes(),
        None => b"the check",
    };
    let (check, target, json) = match REPORT.get() {
        Some(r) => (r.check, r.target.as_bytes(), r.json),
        None => ("check", &b""[..], false),
    };
    let mut summary = Buf { bytes: [0; 1536], len: 0 };
    summary.push_clean(step);
    summary.push(b": refused to use more than ");
    summary.push_number(LIMIT.load(Ordering::Relaxed) >> 20);
    summary.push(b" MiB of memory (");
    summary.push_number(asked);
    summary.push(b" more bytes asked): the reply or file is far larger than any real one");
    let summary = &summary.bytes[..summary.len];
    if json {
        buf.push(b"{\"check\":\"");
        buf.push(check.as_bytes());
        buf.push(b"\",\"status\":\"critical\",\"exit_code\":2,\"summary\":\"");
        buf.push(summary);
        buf.push(b"\",\"target\":\"");
        buf.push_clean(target);
        buf.push(b"\",\"reasons\":[\"memory limit\"],\"facts\":{},\"perfdata\":{},\"notes\":[]}");
    } else {
        for c in check.bytes() {
            buf.push(&[c.to_ascii_uppercase()]);
        }
        buf.push(b" CRITICAL: ");
        buf.push(summary);
    }
    buf.push(b"\n");
    unsafe {
        libc::write(1, buf.bytes.as_ptr().cast(), buf.len);
        libc::_exit(2)
    }
}
