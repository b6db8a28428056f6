//! Per-request timings (`Response::timings`, `Error::timings`) against
//! `h2pool serve` (named by H2POOL_CLI; skipped when it is not set).

mod common;

use std::time::Duration;

use common::Server;

use h2pool::{Config, ErrorCode, Pool, Request};

#[test]
fn a_server_delay_shows_between_pretransfer_and_starttransfer() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let pool = Pool::new(Config::new()).unwrap();
    let resp = pool
        .send(Request::get(&format!("{}/?delay_ms=120", server.url)))
        .unwrap();
    let t = *resp.timings();
    let pre = t.pretransfer.expect("pretransfer");
    let start = t.starttransfer.expect("starttransfer");
    assert!(start - pre >= Duration::from_millis(120), "{:?}", t);
    assert!(t.namelookup.unwrap() <= t.connect.unwrap(), "{:?}", t);
    assert!(t.connect.unwrap() <= pre, "{:?}", t);
    assert!(start <= t.total.unwrap(), "{:?}", t);
    assert_eq!(t.appconnect, None, "cleartext has no TLS");
    assert!(!t.reused);
    assert_eq!(t.num_connects, 1);
    let addr = t.remote_addr.expect("remote address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");

    let again = pool.send(Request::get(&format!("{}/", server.url))).unwrap();
    let t2 = *again.timings();
    assert!(t2.reused, "{:?}", t2);
    assert_eq!(t2.connect, Some(Duration::ZERO));
    assert_eq!(t2.num_connects, 0);
    assert_eq!(t2.remote_addr, Some(addr));
}

#[test]
fn a_refused_connection_has_error_timings_without_connect() {
    // Port 1 on loopback: nothing listens there in a test environment.
    let pool = Pool::new(Config::new()).unwrap();
    let err = pool
        .send(Request::get("http://127.0.0.1:1/"))
        .expect_err("nothing listens on port 1");
    assert_eq!(err.code(), ErrorCode::Connect, "{}", err);
    let t = err.timings().expect("timings of a failed request");
    assert_eq!(t.connect, None);
    assert_eq!(t.starttransfer, None);
    assert!(t.total.is_some());
    assert!(t.namelookup.is_some());
}
