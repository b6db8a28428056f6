//! What the end-to-end tests share: a `h2pool serve` child on a loopback
//! port, the server's deterministic body, a minimal executor.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts `h2pool serve --port 0`, or returns None (the test skips)
    /// when H2POOL_CLI is not set.
    pub fn start() -> Option<Server> {
        let cli = match std::env::var_os("H2POOL_CLI") {
            Some(cli) => cli,
            None => {
                eprintln!("H2POOL_CLI is not set: skipping");
                return None;
            }
        };
        let mut child = Command::new(cli)
            .args(["serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start h2pool serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(|l| l.ok()).unwrap_or_default());
            for _ in lines {} // keep the pipe drained
        });
        let url = rx.recv_timeout(WAIT).unwrap_or_default();
        let server = Server { child, url };
        assert!(
            server.url.starts_with("http://"),
            "no URL from h2pool serve: {:?}",
            server.url
        );
        Some(server)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test server's deterministic body (tools/server/test_server.h).
pub fn test_body(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    fill_test_body(seed, 0, &mut v);
    v
}

/// Polls a fact about the pool until it holds (bounded).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        thread::sleep(Duration::from_millis(2));
    }
}

/// A minimal executor: polls on this thread, parks until woken.
pub struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = Box::pin(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        let now = Instant::now();
        assert!(now < deadline, "future not woken within {:?}", WAIT);
        thread::park_timeout(deadline - now);
    }
}

pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(GAMMA);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bytes [offset, offset + out.len()) of the server's infinite test body
/// for `seed` (tools/server/test_server.h, fill_test_body).
pub fn fill_test_body(seed: u64, offset: u64, out: &mut [u8]) {
    let key = splitmix64(seed);
    let mut word_index = u64::MAX;
    let mut word = 0u64;
    for (k, b) in out.iter_mut().enumerate() {
        let i = offset + k as u64;
        if i / 8 != word_index {
            word_index = i / 8;
            word = splitmix64(key.wrapping_add(word_index.wrapping_mul(GAMMA)));
        }
        *b = (word >> (8 * (i % 8))) as u8;
    }
}

/// A `Read` of `len` test-body bytes that never holds them in memory.
pub struct TestBodyReader {
    pub seed: u64,
    pub offset: u64,
    pub len: u64,
}

impl std::io::Read for TestBodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len - self.offset).min(buf.len() as u64) as usize;
        fill_test_body(self.seed, self.offset, &mut buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// Checks a streamed body against the test body, chunk by chunk.
pub struct TestBodyChecker {
    seed: u64,
    pub offset: u64,
    scratch: Vec<u8>,
}

impl TestBodyChecker {
    pub fn new(seed: u64) -> TestBodyChecker {
        TestBodyChecker {
            seed,
            offset: 0,
            scratch: Vec::new(),
        }
    }

    pub fn check(&mut self, chunk: &[u8]) {
        self.scratch.resize(chunk.len(), 0);
        fill_test_body(self.seed, self.offset, &mut self.scratch);
        assert!(
            self.scratch == chunk,
            "body differs in the {} bytes at offset {}",
            chunk.len(),
            self.offset
        );
        self.offset += chunk.len() as u64;
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// This process's resident set now, in MiB.
pub fn rss_mib() -> u64 {
    status_kib("VmRSS:") / 1024
}

/// The peak resident set since the last `reset_peak_rss`, in MiB.
pub fn peak_rss_mib() -> u64 {
    status_kib("VmHWM:") / 1024
}

/// Resets the peak (Linux: "5" to /proc/self/clear_refs); false when the
/// kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok() && peak_rss_mib() <= rss_mib() + 1
}
