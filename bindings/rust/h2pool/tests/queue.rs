//! The binding on libh2pool's completion queue: where its code runs, how a
//! pool shuts down with work in flight, uploads written through the
//! queue's upload buffer, request trailers.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use common::{test_body, Server, TestBodyChecker, TestBodyReader, WAIT};
use h2pool::{Config, ErrorCode, LogLevel, Pool, Request, RequestBody};

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_string()
}

/// Threads of this process named `name` (from /proc; empty elsewhere).
fn threads_named(name: &str) -> usize {
    let dir = match std::fs::read_dir("/proc/self/task") {
        Ok(d) => d,
        Err(_) => return 0,
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Held by the tests that stream uploads from readers (each has a pump
/// thread) while another counts those threads.
static READERS: Mutex<()> = Mutex::new(());

fn readers() -> std::sync::MutexGuard<'static, ()> {
    READERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the thread each wake runs on.
struct RecordingWaker {
    threads: Arc<Mutex<Vec<(ThreadId, String)>>>,
    woken: Mutex<mpsc::Sender<()>>,
}

impl Wake for RecordingWaker {
    fn wake(self: Arc<Self>) {
        self.threads
            .lock()
            .unwrap()
            .push((thread::current().id(), thread_name()));
        let _ = self.woken.lock().unwrap().send(());
    }
}

#[test]
fn completions_and_wakers_run_on_the_event_thread_never_the_loop_thread() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    // The log callback is the one C callback left (pool-wide, not per
    // request): it shows which thread is the loop thread.
    let loop_threads = Arc::new(Mutex::new(HashSet::new()));
    let lt = loop_threads.clone();
    let pool = Arc::new(
        Pool::new(
            Config::new()
                .max_connections_per_endpoint(2)
                .log(LogLevel::Debug, move |_, _| {
                    lt.lock().unwrap().insert(thread::current().id());
                }),
        )
        .unwrap(),
    );
    let n = 300;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let seen = seen.clone();
        let tx = tx.clone();
        pool.send_with(Request::get(server.url(&format!("/?size={}", i))), move |r| {
            let len = r.and_then(|r| r.into_bytes()).map(|b| b.len());
            seen.lock()
                .unwrap()
                .push((thread::current().id(), thread_name()));
            let _ = tx.send((i, len));
        })
        .unwrap();
    }
    for _ in 0..n {
        let (i, len) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(len.unwrap(), i);
    }
    // Futures: their wakers are called by the same thread.
    let wakes = Arc::new(Mutex::new(Vec::new()));
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(RecordingWaker {
        threads: wakes.clone(),
        woken: Mutex::new(woken_tx),
    }));
    let mut futs: Vec<_> = (0..50)
        .map(|_| Some(pool.send_async(Request::get(server.url("/?size=10&delay_ms=5")))))
        .collect();
    let mut pending = futs.len();
    while pending > 0 {
        for slot in futs.iter_mut() {
            if let Some(f) = slot {
                if let Poll::Ready(r) =
                    std::pin::Pin::new(f).poll(&mut Context::from_waker(&waker))
                {
                    assert_eq!(r.unwrap().into_bytes().unwrap().len(), 10);
                    *slot = None;
                    pending -= 1;
                }
            }
        }
        if pending > 0 {
            woken_rx.recv_timeout(WAIT).unwrap();
        }
    }
    let seen = seen.lock().unwrap().clone();
    let wakes = wakes.lock().unwrap().clone();
    assert_eq!(seen.len(), n);
    assert!(!wakes.is_empty());
    let ids: HashSet<ThreadId> = seen.iter().chain(wakes.iter()).map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 1, "completions ran on {} threads", ids.len());
    assert!(seen.iter().chain(wakes.iter()).all(|(_, name)| name == "h2pool-events"));
    let event_thread = *ids.iter().next().unwrap();
    assert_ne!(event_thread, thread::current().id());
    let loop_threads = loop_threads.lock().unwrap();
    assert!(
        !loop_threads.contains(&event_thread),
        "a completion ran on the thread that logs"
    );
    assert_eq!(pool.caught_panics(), 0);
}

#[test]
fn dropping_the_pool_with_requests_in_flight_and_undrained_events() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let _readers = readers();
    let pool = Pool::new(Config::new()).unwrap();
    // Bodies holding DATA events nobody has read (their downloads paused).
    let mut held = Vec::new();
    for _ in 0..4 {
        let resp = pool
            .send(Request::get(server.url("/?zeros=67108864")).read_buffer(256 << 10))
            .unwrap();
        common::wait_until("body bytes to arrive", || resp.body().buffered() > 0);
        held.push(resp);
    }
    // Completions not yet delivered, futures not yet resolved, an upload
    // blocked on a reader that never ends.
    let (tx, rx) = mpsc::channel();
    for _ in 0..20 {
        let tx = tx.clone();
        pool.send_with(Request::get(server.url("/?delay_ms=60000")), move |r| {
            let _ = tx.send(r.map(|_| ()).map_err(|e| e.code()));
        })
        .unwrap();
    }
    let futs: Vec<_> = (0..10)
        .map(|_| pool.send_async(Request::get(server.url("/?delay_ms=60000"))))
        .collect();
    struct Endless;
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(1);
            Ok(buf.len())
        }
    }
    let upload = pool.send_async(Request::post(
        server.url("/?size=0&delay_ms=60000"),
        RequestBody::from_reader(Endless, None),
    ));
    // Drop on another thread, bounded.
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        drop(pool);
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(WAIT).expect("dropping the pool hung");
    // Every completion ran before the drop returned.
    for _ in 0..20 {
        assert_eq!(rx.try_recv().unwrap(), Err(ErrorCode::PoolClosed));
    }
    for f in futs {
        assert_eq!(common::block_on(f).unwrap_err().code(), ErrorCode::PoolClosed);
    }
    let e = common::block_on(upload).unwrap_err();
    assert!(
        matches!(e.code(), ErrorCode::PoolClosed | ErrorCode::Cancelled),
        "{:?}",
        e
    );
    // The held events outlive the pool and its queue: they are still
    // readable, then the body reports the shutdown; one is dropped unread.
    held.pop();
    for mut resp in held {
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0usize;
        let err = loop {
            match resp.read(&mut buf) {
                Ok(0) => panic!("a 64 MiB body ended after {} bytes", got),
                Ok(n) => {
                    assert!(buf[..n].iter().all(|&b| b == 0));
                    got += n;
                }
                Err(e) => break e,
            }
        };
        assert!(got > 0);
        let inner = err.into_inner().unwrap().downcast::<h2pool::Error>().unwrap();
        assert_eq!(inner.code(), ErrorCode::PoolClosed);
    }
}

#[test]
fn in_memory_and_reader_uploads_through_a_tiny_upload_buffer_are_byte_exact() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new().request_timeout(WAIT)).unwrap();
    let readers = readers();
    // Pumps of earlier tests exit once their requests are over.
    common::wait_until("other tests' upload threads to exit", || {
        threads_named("h2pool-upload") == 0
    });
    // An odd buffer size, far below the body: hundreds of WRITABLE events.
    let len = (1 << 20) + 17;
    let echo = |body: RequestBody| {
        let mut resp = pool
            .send(Request::post(server.url("/echo"), body).upload_buffer(4093))
            .unwrap();
        assert_eq!(resp.status(), 200);
        // In-memory bodies need no thread of their own (the reader case
        // below has one, afterwards).
        let uploaders = threads_named("h2pool-upload");
        let mut out = Vec::new();
        resp.read_to_end(&mut out).unwrap();
        (out, uploaders)
    };
    let (out, uploaders) = echo(test_body(5, len).into());
    assert!(out == test_body(5, len), "owned body differs");
    assert_eq!(uploaders, 0);
    let leaked: &'static [u8] = Box::leak(test_body(6, len).into_boxed_slice());
    let (out, uploaders) = echo(leaked.into());
    assert!(out == leaked, "static body differs");
    assert_eq!(uploaders, 0);
    drop(readers);
    let reader = TestBodyReader {
        seed: 7,
        offset: 0,
        len: len as u64,
    };
    for content_length in [Some(len as u64), None] {
        let reader = TestBodyReader { ..reader };
        let mut resp = pool
            .send(
                Request::post(server.url("/echo"), RequestBody::from_reader(reader, content_length))
                    .upload_buffer(4093),
            )
            .unwrap();
        let mut checker = TestBodyChecker::new(7);
        while let Some(chunk) = resp.chunk() {
            checker.check(&chunk.unwrap());
        }
        assert_eq!(checker.offset, len as u64);
    }
    // Unusable sizes are refused up front.
    let e = pool
        .send(Request::post(server.url("/echo"), vec![1u8; 100_000]).upload_buffer(0))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
}

#[test]
fn request_trailers_follow_the_body() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new().request_timeout(WAIT)).unwrap();
    let _readers = readers();
    let bodies: Vec<Box<dyn Fn() -> RequestBody>> = vec![
        Box::new(RequestBody::empty),
        Box::new(|| "small".into()),
        Box::new(|| vec![3u8; 300_000].into()),
        Box::new(|| RequestBody::from_reader(&b"from a reader"[..], None)),
    ];
    for body in &bodies {
        let expected = body().len();
        let resp = pool
            .send(
                Request::post(server.url("/?size=0&echo_header=x-sum&echo_header=x-n"), body())
                    .trailer("x-sum", "abc")
                    .trailer("X-N", "1")
                    .trailer("x-n", "2"),
            )
            .unwrap();
        assert_eq!(resp.header_str("x-echo-x-sum"), Some("abc"));
        assert_eq!(resp.header_str("x-echo-x-n"), Some("1, 2"));
        if let Some(n) = expected.filter(|&n| n > 0) {
            assert_eq!(resp.header_str("x-request-body-length"), Some(n.to_string().as_str()));
        }
    }
    // A trailer the protocol forbids fails the request, whatever the body.
    for body in &bodies {
        let e = pool
            .send(
                Request::post(server.url("/?size=0"), body()).trailer("content-length", "1"),
            )
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidHeader, "{:?}", e);
    }
    let debug = format!("{:?}", Request::get("http://a/").trailer("x", "secret"));
    assert!(debug.contains("trailer_fields: 1") && !debug.contains("secret"), "{}", debug);
}

#[test]
fn many_concurrent_streams_complete_with_backpressure_from_the_queue() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Arc::new(Pool::new(Config::new().max_connections_per_endpoint(2)).unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|t| {
            let (pool, done, url) = (pool.clone(), done.clone(), server.url(""));
            thread::spawn(move || {
                for i in 0..20u64 {
                    let size = 1000 + t * 7919 + i * 131;
                    let mut resp = pool
                        .send(
                            Request::get(format!("{}?size={}&seed={}", url, size, i))
                                .read_buffer(8192),
                        )
                        .unwrap();
                    let mut checker = TestBodyChecker::new(i);
                    let mut buf = [0u8; 1500];
                    loop {
                        let n = resp.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        assert!(resp.body().buffered() <= 8192 + (64 << 10));
                        checker.check(&buf[..n]);
                    }
                    assert_eq!(checker.offset, size as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 16 * 20);
}
