//! Memory stays bounded by buffers and flow-control windows, never by the
//! size of a body: a slow reader, a large upload from a reader, and lent
//! (uncopied) in-memory bodies. Peak RSS is this process's VmHWM, reset
//! before each test; the tests take turns so that they measure only
//! themselves.

mod common;

use std::io::Read;
use std::sync::Mutex;

use common::{
    peak_rss_mib, reset_peak_rss, rss_mib, wait_until, Server, TestBodyChecker, TestBodyReader,
    WAIT,
};
use h2pool::{Config, Pool, Request, RequestBody};

/// A paused stream costs about its flow-control window two or three times
/// over (libh2pool holds what arrived while paused, then hands it over in
/// one call, which the binding copies), so these tests use a 1 MiB window
/// to measure with a margin that would catch a body-sized leak.
fn pool() -> Pool {
    Pool::new(
        Config::new()
            .request_timeout(WAIT * 6)
            .flow_control_windows(1 << 20, 16 << 20),
    )
    .unwrap()
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Each test holds its turn throughout, allocations included.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` with the peak RSS reset, returning how far the peak rose above
/// the resident set at the start, in MiB; None (the memory check skips)
/// where the kernel does not let us reset the peak.
fn peak_growth(f: impl FnOnce()) -> Option<u64> {
    let resettable = reset_peak_rss();
    let base = rss_mib();
    f();
    if !resettable {
        eprintln!("cannot reset VmHWM: memory not checked");
        return None;
    }
    let growth = peak_rss_mib().saturating_sub(base);
    eprintln!("peak RSS {} MiB above the start", growth);
    Some(growth)
}

/// Reads `r` to its end in reads of `step` bytes, checking that every byte
/// is zero; returns how many there were.
fn read_zeros(r: &mut impl Read, step: usize) -> u64 {
    let mut buf = vec![0u8; step];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return total;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        total += n as u64;
    }
}

#[test]
fn a_slow_reader_holds_back_the_server_in_bounded_memory() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let _turn = turn();
    let size: u64 = 256 << 20;
    let limit = 1 << 20;
    let growth = peak_growth(|| {
        let pool = pool();
        let mut resp = pool
            .send(Request::get(server.url(&format!("/?zeros={}", size))).read_buffer(limit))
            .unwrap();
        // Not reading: the buffer fills to its limit and the download pauses.
        wait_until("the read buffer to fill", || resp.body().buffered() >= limit);
        let held = resp.body().buffered();
        // A full exchange with the same server on the same connection: the
        // paused stream received nothing meanwhile.
        let other = pool.send(Request::get(server.url("/?size=100"))).unwrap();
        assert_eq!(other.connection_id(), resp.connection_id());
        assert_eq!(other.into_bytes().unwrap().len(), 100);
        assert_eq!(resp.body().buffered(), held, "data arrived while paused");
        assert!(held < limit + (64 << 10), "{} bytes buffered", held);
        // Now read it all, slowly: small reads, each checked.
        assert_eq!(read_zeros(&mut resp, 4096), size);
    });
    if let Some(mib) = growth {
        // The read buffer, the stream's window held in libh2pool while
        // paused and its copy, and slack; never the 256 MiB body.
        assert!(mib < 16, "peak RSS grew by {} MiB for a {} MiB body", mib, size >> 20);
    }
}

#[test]
fn a_64_mib_upload_from_a_reader_echoes_in_bounded_memory() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let _turn = turn();
    let size: u64 = 64 << 20;
    let growth = peak_growth(|| {
        let pool = pool();
        let reader = TestBodyReader {
            seed: 21,
            offset: 0,
            len: size,
        };
        let mut resp = pool
            .send(Request::post(
                server.url("/echo"),
                RequestBody::from_reader(reader, Some(size)),
            ))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut checker = TestBodyChecker::new(21);
        while let Some(chunk) = resp.chunk() {
            checker.check(&chunk.unwrap());
        }
        assert_eq!(checker.offset, size);
    });
    if let Some(mib) = growth {
        assert!(mib < 16, "peak RSS grew by {} MiB for a {} MiB echo", mib, size >> 20);
    }
}

/// POSTs `body` (to a path that discards it) and checks its length arrived.
fn post_discarded(server: &Server, body: RequestBody, len: usize) {
    let pool = pool();
    let resp = pool
        .send(Request::post(server.url("/?size=0"), body))
        .unwrap();
    let expected = len.to_string();
    assert_eq!(
        resp.header_str("x-request-body-length"),
        Some(expected.as_str())
    );
}

#[test]
fn owned_and_static_bodies_are_lent_not_copied() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let _turn = turn();
    let len = 96 << 20;
    // Written to, so that every page is resident before the measurement.
    let owned = vec![7u8; len];
    let growth = peak_growth(|| post_discarded(&server, owned.into(), len));
    if let Some(mib) = growth {
        assert!(mib < 24, "a {} MiB Vec body raised the peak by {} MiB", len >> 20, mib);
    }
    let leaked: &'static [u8] = Box::leak(vec![9u8; len].into_boxed_slice());
    let growth = peak_growth(|| post_discarded(&server, leaked.into(), len));
    if let Some(mib) = growth {
        assert!(mib < 24, "a {} MiB 'static body raised the peak by {} MiB", len >> 20, mib);
    }
}

#[test]
fn a_slow_reader_with_the_default_window_and_buffer_stays_bounded() {
    let server = match Server::start() {
        Some(s) => s,
        None => return,
    };
    let _turn = turn();
    let size: u64 = 256 << 20;
    let growth = peak_growth(|| {
        // Defaults throughout: the pool's windows, the 1 MiB read buffer.
        let pool = Pool::new(Config::new().request_timeout(WAIT * 6)).unwrap();
        let mut resp = pool
            .send(Request::get(server.url(&format!("/?zeros={}", size))))
            .unwrap();
        // Unread DATA events fill the download buffer, then the stream
        // stops being read: what is held stops growing.
        wait_until("the read buffer to fill", || resp.body().buffered() >= 1 << 20);
        let held = resp.body().buffered();
        let other = pool.send(Request::get(server.url("/?size=100"))).unwrap();
        assert_eq!(other.into_bytes().unwrap().len(), 100);
        assert!(resp.body().buffered() < (1 << 20) + (256 << 10), "{} held", held);
        // A slow reader: small reads, each checked.
        assert_eq!(read_zeros(&mut resp, 1000), size);
    });
    if let Some(mib) = growth {
        // The 1 MiB read buffer plus what the server may send into the
        // default 8 MiB stream window while the stream is not read, with
        // slack for the allocator; never the 256 MiB body.
        assert!(mib < 32, "peak RSS grew by {} MiB for a {} MiB body", mib, size >> 20);
    }
}
