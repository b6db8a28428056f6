//! Streaming responses and request bodies, against `h2pool serve`: heads
//! before bodies, Read and poll interfaces, bodies from readers, errors in
//! the middle of a body, and what Debug prints.

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{test_body, wait_until, Server, TestBodyChecker, TestBodyReader, WAIT};
use h2pool::{Config, ErrorCode, Pool, Request, RequestBody, Response};

fn pool() -> Pool {
    // Every request is bounded: a regression hangs for at most this long.
    Pool::new(Config::new().request_timeout(WAIT)).unwrap()
}

fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

#[test]
fn the_head_arrives_before_the_body_completes() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    // The server sends the head and 1000 bytes, then nothing, ever.
    let mut resp = pool
        .send(Request::get(server.url(
            "/?size=100000&seed=4&stall=1&fault_at=1000&header=x-early:yes",
        )))
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header_str("x-early"), Some("yes"));
    let mut first = vec![0; 1000];
    resp.read_exact(&mut first).unwrap();
    assert_eq!(first, test_body(4, 1000));
    // Nothing more is coming: the poll interface says so instead of blocking.
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 16];
    assert!(resp.poll_read(&mut cx, &mut buf).is_pending());
    assert!(resp.poll_chunk(&mut cx).is_pending());
    assert_eq!(resp.body().bytes_read(), 1000);
    assert!(!resp.body().is_end());
    // Dropping it mid-body cancels the stream.
    drop(resp);
    wait_until("the stream to be cancelled", || {
        pool.stats().unwrap().pool.streams_active == 0
    });
}

#[test]
fn an_error_status_has_a_readable_body() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let mut resp = pool
        .send(Request::get(server.url("/missing?status=404&size=3000&seed=9")))
        .unwrap();
    assert_eq!(resp.status(), 404);
    let mut body = Vec::new();
    resp.read_to_end(&mut body).unwrap();
    assert_eq!(body, test_body(9, 3000));
    assert!(resp.body().is_end());
    // The same through the parts, read after the head is set aside.
    let (head, body) = pool
        .send(Request::get(server.url("/missing?status=404&size=3000&seed=9")))
        .unwrap()
        .into_parts();
    assert_eq!(head.status(), 404);
    assert_eq!(body.into_bytes().unwrap(), test_body(9, 3000));
}

#[test]
fn every_value_of_a_repeated_header_is_visible() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let resp = pool
        .send(Request::get(server.url(
            "/?header=x-multi:one&header=x-other:x&header=X-Multi:two",
        )))
        .unwrap();
    let all: Vec<&[u8]> = resp.headers_all("X-MULTI").collect();
    assert_eq!(all, vec![&b"one"[..], &b"two"[..]]);
    assert_eq!(resp.header("x-multi"), Some(&b"one"[..]));
    assert_eq!(resp.head().headers_all("x-other").count(), 1);
    assert_eq!(resp.headers_all("x-absent").count(), 0);
}

#[test]
fn urls_and_methods_accept_str_string_and_string_refs() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let owned: String = server.url("/?size=3&seed=1");
    let by_ref: &String = &owned;
    let by_str: &str = owned.as_str();
    for req in [
        Request::get(by_ref),
        Request::get(by_str),
        Request::new(String::from("GET"), by_str),
        Request::get(owned.clone()),
    ] {
        let resp = pool.send(req).unwrap();
        assert_eq!(resp.into_bytes().unwrap(), test_body(1, 3));
    }
}

#[test]
fn trailers_are_available_at_the_end_of_the_body() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let mut resp = pool
        .send(Request::get(server.url("/?size=10&trailer=x-sum:42")))
        .unwrap();
    assert_eq!(resp.trailers(), None);
    let mut body = Vec::new();
    resp.read_to_end(&mut body).unwrap();
    assert_eq!(body.len(), 10);
    assert_eq!(resp.trailer("x-sum"), Some(&b"42"[..]));
}

#[test]
fn a_reset_mid_body_fails_the_read_that_reaches_it() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let mut resp = pool
        .send(Request::get(
            server.url("/?size=300000&seed=6&rst=2&fault_at=100000"),
        ))
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut checker = TestBodyChecker::new(6);
    let mut buf = vec![0; 8192];
    let err = loop {
        match resp.read(&mut buf) {
            Ok(0) => panic!("the body ended instead of failing"),
            Ok(n) => checker.check(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(checker.offset, 100000);
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<h2pool::Error>())
        .expect("an h2pool::Error inside the io::Error");
    assert_eq!(inner.code(), ErrorCode::StreamReset);
    assert_eq!(inner.http2_code(), Some(2));
    // And again: the failure is sticky, not an end of file.
    assert!(resp.read(&mut buf).is_err());
}

#[test]
fn request_bodies_stream_from_a_reader() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let len = 3 << 20;
    for content_length in [Some(len), None] {
        let reader = TestBodyReader {
            seed: 11,
            offset: 0,
            len,
        };
        let mut resp = pool
            .send(Request::post(
                server.url("/echo"),
                RequestBody::from_reader(reader, content_length),
            ))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let expected = len.to_string();
        assert_eq!(
            resp.header_str("x-request-body-length"),
            Some(expected.as_str())
        );
        let mut checker = TestBodyChecker::new(11);
        while let Some(chunk) = resp.chunk() {
            checker.check(&chunk.unwrap());
        }
        assert_eq!(checker.offset, len);
    }
}

/// Yields some bytes, then fails.
struct FailingReader(usize);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::new(io::ErrorKind::Other, "disk on fire"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failing_body_reader_fails_the_request_with_its_message() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let err = pool
        .send(Request::new("PUT", server.url("/echo")).body_reader(FailingReader(100_000), None))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BodySource);
    assert!(err.message().contains("disk on fire"), "{}", err);
}

#[test]
fn a_reader_must_match_its_content_length() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    for (given, declared, why) in [(10u64, 20u64, "ended after 10"), (30, 20, "more than the 20")] {
        let reader = TestBodyReader {
            seed: 0,
            offset: 0,
            len: given,
        };
        let err = pool
            .send(Request::post(server.url("/echo"), RequestBody::from_reader(reader, Some(declared))))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BodySource);
        assert!(err.message().contains(why), "{}", err);
    }
}

#[test]
fn static_and_owned_bodies_are_sent_as_given() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    static BYTES: [u8; 5] = *b"bytes";
    let bodies: Vec<(RequestBody, &[u8])> = vec![
        ("static str".into(), b"static str"),
        (b"byte string".into(), b"byte string"),
        (RequestBody::from(&BYTES[..]), b"bytes"),
        (String::from("owned string").into(), b"owned string"),
        (b"owned\0vec".to_vec().into(), b"owned\0vec"),
        (RequestBody::empty(), b""),
    ];
    for (body, expected) in bodies {
        assert_eq!(body.len(), Some(expected.len() as u64));
        let resp = pool.send(Request::post(server.url("/echo"), body)).unwrap();
        assert_eq!(resp.into_bytes().unwrap(), expected);
    }
}

#[test]
fn debug_shows_sizes_not_bytes() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    // A buffered request that fails after a megabyte of body.
    let (tx, rx) = mpsc::channel();
    pool.send_with(
        Request::get(server.url("/?size=3000000&rst=2&fault_at=1000000")),
        move |r| {
            let _ = tx.send(r);
        },
    )
    .unwrap();
    let err = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::StreamReset);
    assert_eq!(err.partial_body().len(), 1_000_000);
    assert_eq!(err.partial_response().map(|h| h.status()), Some(200));
    let text = format!("{:?}", err);
    assert!(text.len() < 400, "{} bytes of Debug: {:.400}", text.len(), text);
    assert!(text.contains("partial_body_bytes: 1000000"), "{}", text);
    assert!(text.contains("StreamReset"), "{}", text);

    // A complete buffered response of a megabyte, and a request body.
    let (tx, rx) = mpsc::channel();
    pool.send_with(Request::get(server.url("/?size=1000000")), move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    let resp = rx.recv_timeout(WAIT).unwrap().unwrap();
    let text = format!("{:?}", resp);
    assert!(text.len() < 400, "{} bytes of Debug: {:.400}", text.len(), text);
    assert!(text.contains("buffered_bytes: 1000000"), "{}", text);
    let req = Request::post(server.url("/echo"), vec![b'x'; 1_000_000]);
    let text = format!("{:?}", req);
    assert!(text.len() < 400, "{}", text);
    assert!(text.contains("1000000 bytes"), "{}", text);
}

#[test]
fn a_zero_read_buffer_is_refused() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let err = pool
        .send(Request::get(server.url("/")).read_buffer(0))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn a_blocking_body_read_on_the_loop_thread_fails_instead_of_hanging() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    // Five bytes, then the server stalls.
    let resp = pool
        .send(Request::get(server.url("/?size=10&stall=1&fault_at=5")))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    pool.send_with(Request::get(server.url("/")), move |_| {
        // Reading on the loop thread would wait for that very thread.
        let mut resp = resp;
        let mut buf = Vec::new();
        let got = resp.read_to_end(&mut buf).map_err(|e| e.kind());
        let _ = tx.send((buf.len(), got));
    })
    .unwrap();
    let (read, got) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(read, 5);
    assert_eq!(got, Err(io::ErrorKind::WouldBlock));
}

// ---------------------------------------------------------------------------
// A hand-written executor: tasks polled only when their waker fires.
// ---------------------------------------------------------------------------

type Task = Pin<Box<dyn Future<Output = ()>>>;

struct TaskWaker {
    id: usize,
    ready: Arc<Mutex<VecDeque<usize>>>,
    thread: thread::Thread,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap().push_back(self.id);
        self.thread.unpark();
    }
}

/// Runs every task to completion on this thread; a task is polled again
/// only after its waker was called, so a lost wake-up fails the test.
fn run_all(tasks: Vec<Task>) {
    let ready = Arc::new(Mutex::new((0..tasks.len()).collect::<VecDeque<_>>()));
    let mut tasks: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    let wakers: Vec<Waker> = (0..tasks.len())
        .map(|id| {
            Waker::from(Arc::new(TaskWaker {
                id,
                ready: ready.clone(),
                thread: thread::current(),
            }))
        })
        .collect();
    let mut left = tasks.len();
    let deadline = Instant::now() + WAIT;
    while left > 0 {
        let next = ready.lock().unwrap().pop_front();
        match next {
            Some(id) => {
                if let Some(task) = tasks[id].as_mut() {
                    let mut cx = Context::from_waker(&wakers[id]);
                    if task.as_mut().poll(&mut cx).is_ready() {
                        tasks[id] = None;
                        left -= 1;
                    }
                }
            }
            None => {
                let now = Instant::now();
                assert!(now < deadline, "{} task(s) never woken", left);
                thread::park_timeout(deadline - now);
            }
        }
    }
}

/// `poll_chunk` as a future.
struct NextChunk<'a>(&'a mut Response);

impl Future for NextChunk<'_> {
    type Output = Option<Result<Vec<u8>, h2pool::Error>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_chunk(cx)
    }
}

/// `poll_read` as a future.
struct ReadSome<'a>(&'a mut Response, &'a mut [u8]);

impl Future for ReadSome<'_> {
    type Output = io::Result<usize>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.0.poll_read(cx, this.1)
    }
}

#[test]
fn futures_and_polled_bodies_run_on_a_hand_written_executor() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    // A small read buffer, so that bodies pause and resume under polling.
    let pool = Arc::new(pool());
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut tasks: Vec<Task> = Vec::new();
    for seed in 0..8u64 {
        let size = 200_000 + seed * 1000;
        let fut = pool.send_async(
            Request::get(server.url(&format!("/?size={}&seed={}", size, seed)))
                .read_buffer(32 << 10),
        );
        let results = results.clone();
        tasks.push(Box::pin(async move {
            let mut resp = fut.await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut checker = TestBodyChecker::new(seed);
            if seed % 2 == 0 {
                while let Some(chunk) = NextChunk(&mut resp).await {
                    checker.check(&chunk.unwrap());
                }
            } else {
                let mut buf = vec![0; 5000];
                loop {
                    let n = ReadSome(&mut resp, &mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    checker.check(&buf[..n]);
                }
            }
            results.lock().unwrap().push((seed, checker.offset == size));
        }));
    }
    // A refused request resolves at once with its error.
    let refused = pool.send_async(Request::get("not a url"));
    let codes = results.clone();
    tasks.push(Box::pin(async move {
        let code = refused.await.unwrap_err().code();
        codes.lock().unwrap().push((99, code == ErrorCode::InvalidUrl));
    }));
    run_all(tasks);
    let mut got = results.lock().unwrap().clone();
    got.sort();
    let expected: Vec<(u64, bool)> = (0..8).chain(Some(99)).map(|s| (s, true)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_pending_head_future_is_woken_when_the_head_arrives() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = pool();
    let mut fut = pool.send_async(Request::get(server.url("/?delay_ms=50&size=7")));
    let woken = Arc::new(Mutex::new(0));
    struct Count(Arc<Mutex<i32>>, thread::Thread);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap() += 1;
            self.1.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Count(woken.clone(), thread::current())));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    let deadline = Instant::now() + WAIT;
    while *woken.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "never woken");
        thread::park_timeout(Duration::from_millis(100));
    }
    match Pin::new(&mut fut).poll(&mut cx) {
        Poll::Ready(Ok(resp)) => assert_eq!(resp.into_bytes().unwrap(), test_body(0, 7)),
        other => panic!("woken but not ready: {:?}", other.map(|r| r.map(|r| r.status()))),
    }
}

#[test]
fn responses_say_which_http_version_carried_them() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let resp = pool().send(Request::get(server.url("/?size=10"))).unwrap();
    assert_eq!(resp.protocol(), h2pool::Protocol::Http2);
    assert_eq!(resp.protocol().to_string(), "HTTP/2");
    drop(resp);

    // A one-shot HTTP/1.1 server on a loopback port of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = thread::spawn(move || {
        use std::io::Write;
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        head
    });
    let h1 = Pool::new(
        Config::new()
            .request_timeout(WAIT)
            .http_version(h2pool::HttpVersion::Http11),
    )
    .unwrap();
    let resp = h1
        .send(Request::get(format!("http://127.0.0.1:{}/one", port)))
        .unwrap();
    assert_eq!(resp.protocol(), h2pool::Protocol::Http11);
    assert!(format!("{:?}", resp.head()).contains("Http11"));
    assert_eq!(resp.into_bytes().unwrap(), b"hi".to_vec());
    let head = peer.join().unwrap();
    assert!(head.starts_with(b"GET /one HTTP/1.1\r\n"), "{:?}", String::from_utf8_lossy(&head));
}
