//! Requests through a proxy: a minimal HTTP CONNECT proxy on loopback
//! (std threads), in front of `h2pool serve` (H2POOL_CLI; skipped when
//! unset).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::Server;

use h2pool::{Config, ErrorCode, Pool, Request};

/// Answers CONNECT with 407 unless the request carries `want_auth`
/// (when set), then relays bytes both ways.
struct ConnectProxy {
    port: u16,
    connects: Arc<AtomicUsize>,
}

impl ConnectProxy {
    fn start(want_auth: Option<&'static str>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connects = Arc::new(AtomicUsize::new(0));
        let counter = connects.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let client = match client {
                    Ok(c) => c,
                    Err(_) => return,
                };
                let counter = counter.clone();
                thread::spawn(move || tunnel(client, want_auth, &counter));
            }
        });
        ConnectProxy { port, connects }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn tunnel(client: TcpStream, want_auth: Option<&str>, connects: &AtomicUsize) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    connects.fetch_add(1, Ordering::SeqCst);
    let mut client_w = client;
    if let Some(auth) = want_auth {
        let expected = format!("Proxy-Authorization: {}\r\n", auth);
        if !head.iter().any(|l| *l == expected) {
            let _ = client_w.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"rust\"\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
    }
    let target = head[0].split(' ').nth(1).unwrap_or("").to_string();
    let origin = match TcpStream::connect(target.as_str()) {
        Ok(o) => o,
        Err(_) => return,
    };
    let _ = client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let mut origin_r = origin.try_clone().unwrap();
    let upstream = thread::spawn(move || {
        let mut origin_w = origin;
        let _ = std::io::copy(&mut reader, &mut origin_w);
        let _ = origin_w.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16384];
    loop {
        match origin_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_w.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

#[test]
fn requests_go_through_the_proxy_with_its_credentials() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let proxy = ConnectProxy::start(Some("Basic cnM6cHc=")); // rs:pw
    let pool = Pool::new(
        Config::new()
            .proxy(&proxy.url())
            .proxy_credentials("rs", "pw"),
    )
    .unwrap();
    let resp = pool
        .send(Request::get(&format!("{}/?size=100", server.url)))
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.into_bytes().unwrap().len(), 100);
    assert_eq!(proxy.connects.load(Ordering::SeqCst), 1);
}

#[test]
fn a_407_is_proxy_auth() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let proxy = ConnectProxy::start(Some("Basic cnM6cHc="));
    let pool = Pool::new(Config::new().proxy(&proxy.url())).unwrap();
    let err = pool
        .send(Request::get(&format!("{}/", server.url)))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProxyAuth, "{}", err);
    assert!(err.to_string().contains("407"), "{}", err);
}

#[test]
fn a_malformed_proxy_url_is_invalid() {
    let err = Pool::new(Config::new().proxy("ftp://127.0.0.1:21")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}
