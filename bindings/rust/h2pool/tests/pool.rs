//! End-to-end tests against `h2pool serve` (the tool named by H2POOL_CLI);
//! each test starts its own server on a loopback port and skips when
//! H2POOL_CLI is not set.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::{block_on, poll_once, test_body, wait_until, Server, WAIT};

use h2pool::{Config, ErrorCode, LogLevel, Pool, Request};

#[test]
fn pool_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Pool>();
    check::<h2pool::Error>();
}

// Sends `per_thread` GETs of test bodies from each of `threads` threads,
// checks each byte for byte, and returns the connection ids that carried
// them.
fn get_byte_exact(
    pool: &Arc<Pool>,
    base: &str,
    threads: u64,
    per_thread: u64,
) -> std::collections::HashSet<u64> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let pool = pool.clone();
            let base = base.to_string();
            thread::spawn(move || {
                let mut conns = std::collections::HashSet::new();
                for i in 0..per_thread {
                    let seed = t * 1000 + i + 1;
                    let size = 1 + ((seed * 7919) % 20000) as usize;
                    let resp = pool
                        .send(Request::get(&format!(
                            "{}/?size={}&seed={}",
                            base, size, seed
                        )))
                        .unwrap_or_else(|e| panic!("request {}: {}", seed, e));
                    assert_eq!(resp.status(), 200);
                    assert_eq!(resp.stream_id() % 2, 1);
                    assert_ne!(resp.connection_id(), 0);
                    conns.insert(resp.connection_id());
                    assert!(
                        resp.into_bytes().unwrap() == test_body(seed, size),
                        "body of {} differs",
                        seed
                    );
                }
                conns
            })
        })
        .collect();
    let mut conns = std::collections::HashSet::new();
    for h in handles {
        conns.extend(h.join().unwrap());
    }
    let stats = pool.stats().unwrap();
    assert_eq!(stats.pool.requests_completed, threads * per_thread);
    assert_eq!(stats.pool.requests_failed, 0);
    assert!(stats.pool.connections_created <= 4, "{:?}", stats.pool);
    conns
}

#[test]
fn many_threads_get_byte_exact_bodies() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Arc::new(Pool::new(Config::new().max_connections_per_endpoint(4)).unwrap());
    get_byte_exact(&pool, &server.url, 16, 64);
}

// Two loop threads: requests from these threads alternate between them,
// each loop with connections of its own (the limit of 4 shared out), and
// the pool's figures cover both.
#[test]
fn loop_threads_share_the_load() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let config = Config::new().loop_threads(2).max_connections_per_endpoint(4);
    let pool = Arc::new(Pool::new(config).unwrap());
    let conns = get_byte_exact(&pool, &server.url, 8, 32);
    assert!((2..=4).contains(&conns.len()), "connections used: {:?}", conns);
}

#[test]
fn echo_round_trips_method_headers_and_body() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let body = b"h2pool\0binary\xffbody".to_vec();
    let resp = pool
        .send(
            Request::new("PUT", &server.url("/echo?status=201&header=x-reply:yes"))
                .header("x-custom", "abc")
                .body(body.clone()),
        )
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.header_str("X-Reply"), Some("yes"));
    let len = body.len().to_string();
    assert_eq!(resp.header_str("x-request-body-length"), Some(len.as_str()));
    assert_eq!(resp.into_bytes().unwrap(), body);
}

#[test]
fn priority_is_sent_as_the_header_unless_the_request_has_one() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let url = server.url("/?echo_header=priority");
    let seen = |req: Request| {
        let resp = pool.send(req).unwrap();
        resp.header_str("x-echo-priority").map(str::to_owned)
    };
    assert_eq!(seen(Request::get(&url).priority(1, true)).as_deref(), Some("u=1, i"));
    assert_eq!(seen(Request::get(&url).priority(7, false)).as_deref(), Some("u=7"));
    assert_eq!(seen(Request::get(&url).priority(3, false)), None); // the default
    assert_eq!(
        seen(Request::get(&url).priority(0, false).header("priority", "u=5")).as_deref(),
        Some("u=5")
    );
    let err = pool.send(Request::get(&url).priority(8, false)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn every_supported_encoding_is_asked_for_and_decoded() {
    let supported = h2pool::supported_encodings();
    assert!(supported.starts_with("gzip, deflate"), "{supported:?}");
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let resp = pool.send(Request::get(&server.url("/?echo_header=accept-encoding"))).unwrap();
    assert_eq!(resp.header_str("x-echo-accept-encoding"), Some(supported));
    for coding in supported.split(", ") {
        let url = server.url(&format!("/?size=200000&seed=9&ce={coding}"));
        let resp = pool.send(Request::get(&url)).unwrap();
        assert_eq!(resp.status(), 200, "{coding}");
        assert_eq!(resp.content_encoding(), Some(coding));
        assert_eq!(resp.header_str("content-encoding"), None, "{coding}");
        let body = resp.into_bytes().unwrap();
        assert!(body == test_body(9, 200_000), "{coding}: {} bytes", body.len());
    }
}

#[test]
fn send_with_calls_back_once_on_the_loop_thread() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let counter = calls.clone();
    let id = pool
        .send_with(
            Request::get(&server.url("/?size=100&seed=3")),
            move |result| {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((thread::current().id(), result));
            },
        )
        .unwrap();
    let (tid, result) = rx.recv_timeout(WAIT).unwrap();
    assert_ne!(tid, thread::current().id());
    let resp = result.unwrap();
    assert_eq!(resp.request_id(), id);
    assert_eq!(resp.into_bytes().unwrap(), test_body(3, 100));
    drop(pool); // every callback has run when drop returns
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn futures_complete_on_a_minimal_executor() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let futures: Vec<_> = (0..100u64)
        .map(|seed| {
            pool.send_async(Request::get(&server.url(&format!(
                "/?size={}&seed={}",
                1000 + seed,
                seed
            ))))
        })
        .collect();
    for (seed, fut) in futures.into_iter().enumerate() {
        let resp = block_on(fut).unwrap();
        assert_eq!(resp.into_bytes().unwrap(), test_body(seed as u64, 1000 + seed));
    }
    let refused = block_on(pool.send_async(Request::get("not a url")));
    assert_eq!(refused.unwrap_err().code(), ErrorCode::InvalidUrl);
}

#[test]
fn dropping_a_future_cancels_its_request() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let mut fut = pool.send_async(Request::get(&server.url("/?delay_ms=5000")));
    assert!(poll_once(&mut fut).is_pending());
    wait_until("the stream to open", || {
        pool.stats().unwrap().pool.streams_active == 1
    });
    let start = Instant::now();
    drop(fut);
    wait_until("the cancellation", || {
        let s = pool.stats().unwrap().pool;
        s.requests_failed == 1 && s.streams_active == 0
    });
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        start.elapsed()
    );
    // The connection stays usable.
    assert_eq!(
        pool.send(Request::get(&server.url("/"))).unwrap().status(),
        200
    );
}

#[test]
fn cancel_by_id_completes_with_cancelled() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    let id = pool
        .send_with(Request::get(&server.url("/?delay_ms=5000")), move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    pool.cancel(id).unwrap();
    let err = rx
        .recv_timeout(Duration::from_secs(3))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
}

#[test]
fn dropping_the_pool_completes_requests_in_flight() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new().max_connections_per_endpoint(1)).unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..20 {
        let tx = tx.clone();
        pool.send_with(Request::get(&server.url("/?delay_ms=5000")), move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    }
    let fut = pool.send_async(Request::get(&server.url("/?delay_ms=5000")));
    wait_until("all requests in flight", || {
        let s = pool.stats().unwrap().pool;
        s.streams_active + s.requests_queued == 21
    });
    let start = Instant::now();
    drop(pool);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "drop took {:?}",
        start.elapsed()
    );
    for i in 0..20 {
        // Already delivered: drop returns after every callback ran.
        let r = rx
            .try_recv()
            .unwrap_or_else(|e| panic!("callback {} missing: {}", i, e));
        assert_eq!(r.unwrap_err().code(), ErrorCode::PoolClosed);
    }
    assert_eq!(block_on(fut).unwrap_err().code(), ErrorCode::PoolClosed);
}

#[test]
fn panic_in_a_callback_is_caught() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    pool.send_with(Request::get(&server.url("/")), |_| {
        panic!("deliberate panic in a callback")
    })
    .unwrap();
    // The pool keeps working after the panic.
    let mut fut = pool.send_async(Request::get(&server.url("/?size=10")));
    let first = poll_once(&mut fut);
    let resp = match first {
        Poll::Ready(r) => r,
        Poll::Pending => block_on(fut),
    };
    assert_eq!(resp.unwrap().into_bytes().unwrap(), test_body(0, 10));
    wait_until("the panic to be counted", || pool.caught_panics() == 1);
    assert_eq!(
        pool.send(Request::get(&server.url("/"))).unwrap().status(),
        200
    );
}

#[test]
fn blocking_send_inside_a_callback_is_refused() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Arc::new(Pool::new(Config::new()).unwrap());
    let (tx, rx) = mpsc::channel();
    let inner_pool = pool.clone();
    let url = server.url("/");
    pool.send_with(Request::get(&url), move |_| {
        let blocking = inner_pool.send(Request::get(&url)).map(|_| ());
        // Chaining without blocking works.
        let tx2 = tx.clone();
        let chained = inner_pool.send_with(Request::get(&url), move |r| {
            let _ = tx2.send(("chained", r.map(|_| ())));
        });
        let _ = tx.send(("blocking", blocking));
        assert!(chained.is_ok());
    })
    .unwrap();
    let mut got = [
        rx.recv_timeout(WAIT).unwrap(),
        rx.recv_timeout(WAIT).unwrap(),
    ];
    got.sort_by_key(|(what, _)| *what);
    assert_eq!(
        got[0].1.as_ref().unwrap_err().code(),
        ErrorCode::WrongThread
    );
    assert!(got[1].1.is_ok(), "{:?}", got[1]);
}

#[test]
fn dropping_the_last_pool_handle_inside_a_callback_does_not_deadlock() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Arc::new(Pool::new(Config::new()).unwrap());
    let (tx, rx) = mpsc::channel();
    let held = pool.clone();
    pool.send_with(Request::get(&server.url("/?delay_ms=100")), move |r| {
        let _ = tx.send(r.map(|resp| resp.status()));
        drop(held); // the last handle: the pool shuts down from here
    })
    .unwrap();
    drop(pool);
    assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap(), 200);
}

#[test]
fn errors_carry_codes_and_messages() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let cases = [
        (Request::get("/relative"), ErrorCode::InvalidUrl),
        (Request::get(&server.url("/\0x")), ErrorCode::InvalidUrl),
        (
            Request::get("ftp://127.0.0.1/"),
            ErrorCode::UnsupportedScheme,
        ),
        (
            Request::new("BAD METHOD", &server.url("/")),
            ErrorCode::InvalidMethod,
        ),
        (
            Request::get(&server.url("/")).header("connection", "close"),
            ErrorCode::InvalidHeader,
        ),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let err = pool.send(req).unwrap_err();
        assert_eq!(err.code(), want, "case {}: {}", i, err);
        assert!(err.to_string().starts_with(want.description()), "{}", err);
    }
    let err = pool
        .send(Request::get(&server.url("/?delay_ms=5000")).timeout(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert!(err.is_timeout());
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(!boxed.to_string().is_empty());

    // Nothing listens on a port just released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = pool
        .send(Request::get(&format!("http://{}/", addr)))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect);
    assert_eq!(err.stream_id(), None);
    assert_eq!(err.http2_code(), None);
}

#[test]
fn config_errors_are_reported_by_new() {
    let err = Pool::new(Config::new().max_connections_per_endpoint(0)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = Pool::new(Config::new().loop_threads(65)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = Pool::new(Config::new().tls_ca_file("/nonexistent/h2pool-ca.pem")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TlsConfig);
    assert!(err.code().is_tls());
    let err =
        Pool::new(Config::new().request_timeout(Duration::from_secs(100 * 86400))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn out_of_range_flow_control_windows_are_refused() {
    const MAX: u32 = (1 << 31) - 1;
    for (stream, connection) in [
        (0, 64 << 20),
        (MAX + 1, 64 << 20),
        (8 << 20, 65534),
        (8 << 20, MAX + 1),
        (u32::MAX, u32::MAX),
    ] {
        let err = Pool::new(Config::new().flow_control_windows(stream, connection)).unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::InvalidArgument,
            "windows {} and {}: {}",
            stream,
            connection,
            err
        );
    }
}

#[test]
fn flow_control_windows_get_byte_exact_bodies() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    // Bodies several times the windows, so the download only completes if
    // the pool keeps replenishing the windows it advertised.
    let size = (1 << 20) + 7;
    for (i, &(stream, connection)) in [(16384, 65535), (1000, 64 << 20), (8 << 20, (1 << 31) - 1)]
        .iter()
        .enumerate()
    {
        let pool = Pool::new(Config::new().flow_control_windows(stream, connection)).unwrap();
        let seed = 100 + i as u64;
        let resp = pool
            .send(Request::get(
                &server.url(&format!("/?size={}&seed={}", size, seed)),
            ))
            .unwrap_or_else(|e| panic!("windows {} and {}: {}", stream, connection, e));
        assert_eq!(resp.status(), 200);
        let body = resp.into_bytes().unwrap();
        assert!(
            body == test_body(seed, size),
            "windows {} and {}: {} bytes, body differs",
            stream,
            connection,
            body.len()
        );
    }
}

#[test]
fn log_callback_receives_the_insecure_warning() {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let sink = messages.clone();
    let pool = Pool::new(
        Config::new()
            .tls_insecure_skip_verify(true)
            .log(LogLevel::Warn, move |level, msg| {
                sink.lock().unwrap().push((level, msg.to_string()))
            }),
    )
    .unwrap();
    drop(pool); // no log call after drop returns
    let messages = messages.lock().unwrap();
    assert!(
        messages.iter().any(|(level, _)| *level == LogLevel::Warn),
        "{:?}",
        *messages
    );
}

#[test]
fn stats_describe_each_endpoint() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    // Read to its end: a response dropped before that is cancelled.
    pool.send(Request::get(&server.url("/")))
        .unwrap()
        .into_bytes()
        .unwrap();
    let stats = pool.stats().unwrap();
    assert_eq!(stats.endpoints.len(), 1);
    assert_eq!(stats.endpoints[0].name, server.url);
    assert_eq!(stats.endpoints[0].counters.requests_completed, 1);
    assert_eq!(stats.pool.connections_created, 1);
}

#[test]
fn version_is_consistent() {
    let (num, s) = h2pool::version();
    assert_eq!(
        s,
        format!("{}.{}.{}", num >> 16, (num >> 8) & 0xff, num & 0xff)
    );
}

#[test]
fn response_header_timeout_fails_a_slow_response() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(
        Config::new()
            .response_header_timeout(Duration::from_millis(100))
            .max_retries(0),
    )
    .unwrap();
    let err = pool
        .send(Request::get(&server.url("/?delay_ms=5000")))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResponseHeadersTimeout);
    assert!(err.is_timeout());
    assert!(err.stream_id().is_some());
}

#[test]
fn streaming_delivers_the_body_in_chunks() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let received = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let sink = received.clone();
    let (tx, rx) = mpsc::channel();
    pool.send_streaming(
        Request::get(&server.url("/?size=1000000&seed=5")),
        move |chunk| {
            let mut r = sink.lock().unwrap();
            r.0.extend_from_slice(chunk);
            r.1 += 1;
            std::ops::ControlFlow::Continue(())
        },
        move |result| {
            let _ = tx.send(result);
        },
    )
    .unwrap();
    let resp = rx.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_encoding(), None);
    assert_eq!(resp.trailers(), Some(&[][..]));
    assert!(resp.into_bytes().unwrap().is_empty(), "streamed body was also buffered");
    let r = received.lock().unwrap();
    assert!(r.1 > 1, "1 MB arrived in {} chunk(s)", r.1);
    assert!(r.0 == test_body(5, 1_000_000), "streamed body differs");
}

#[test]
fn streaming_callback_can_abort_the_request() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    pool.send_streaming(
        Request::get(&server.url("/?size=1000000")),
        move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::ops::ControlFlow::Break(())
        },
        move |result| {
            let _ = tx.send(result);
        },
    )
    .unwrap();
    let err = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Aborted);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A panicking data callback aborts too, and is counted.
    let (tx, rx) = mpsc::channel();
    pool.send_streaming(
        Request::get(&server.url("/?size=1000")),
        |_| panic!("deliberate panic in a data callback"),
        move |result| {
            let _ = tx.send(result);
        },
    )
    .unwrap();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap().unwrap_err().code(),
        ErrorCode::Aborted
    );
    assert_eq!(pool.caught_panics(), 1);
    assert_eq!(
        pool.send(Request::get(&server.url("/")).auto_decompress(false))
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn every_callback_box_is_reclaimed() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    // Each closure holds a clone of `token`; once every box is reclaimed,
    // only the test's own reference is left.
    let token = Arc::new(());
    let pool = Pool::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    let (t, tx1) = (token.clone(), tx.clone());
    pool.send_with(Request::get(&server.url("/")), move |r| {
        let _ = tx1.send(r.is_ok());
        drop(t);
    })
    .unwrap(); // completes
    assert!(rx.recv_timeout(WAIT).unwrap());
    let t = token.clone();
    let refused = pool.send_with(Request::get("not a url"), move |_| drop(t));
    assert_eq!(refused.unwrap_err().code(), ErrorCode::InvalidUrl);
    let t = token.clone();
    pool.send_with(Request::get(&server.url("/?delay_ms=5000")), move |_| {
        drop(t)
    })
    .unwrap(); // still in flight when the pool is dropped
    drop(pool.send_async(Request::get(&server.url("/?delay_ms=5000")))); // cancelled
    wait_until("the in-flight requests", || {
        let s = pool.stats().unwrap().pool;
        s.streams_active + s.requests_queued + s.requests_failed >= 2
    });
    drop(pool);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a callback box was not reclaimed"
    );
}

/// resolve and connect_to reach the server under names no DNS knows
/// (dns_servers points at a UDP socket that never answers); bad entries
/// fail Pool::new with InvalidArgument.
#[test]
fn resolve_and_connect_to_overrides() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pool = Pool::new(
        Config::new()
            .dns_servers(&silent.local_addr().unwrap().to_string())
            .resolve(&format!("app.test:{}:127.0.0.1", port))
            .connect_to(&format!("other.test:80:127.0.0.1:{}", port))
            .tcp_keepalive(Duration::from_secs(30), Duration::from_secs(10), 3)
            .happy_eyeballs_delay(Duration::from_millis(100)),
    )
    .unwrap();
    for url in [
        format!("http://app.test:{}/?size=9&seed=2", port),
        "http://other.test/?size=9&seed=2".to_string(),
    ] {
        let resp = pool
            .send(Request::get(&url))
            .unwrap_or_else(|e| panic!("{}: {}", url, e));
        assert_eq!(resp.into_bytes().unwrap(), test_body(2, 9), "{}", url);
    }
    for cfg in [
        Config::new().resolve("app.test:1"),
        Config::new().connect_to("a:b:c:d"),
        Config::new().dns_servers("dns.example"),
        Config::new().local_address("eth0"),
        Config::new().local_port_range(10, 5),
    ] {
        let err = Pool::new(cfg).err().expect("refused");
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }
}
