//! The README's example: `h2pool serve --port 8080` in another terminal,
//! then `cargo run --example tour [BASE_URL]`.

use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use h2pool::{Config, ErrorCode, Pool, Request, RequestBody, Response};

// Any executor works; this one parks the thread until the waker fires.
struct ThreadWaker(thread::Thread);
impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = Box::pin(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

// The next chunk of a body, as a future (poll_chunk is a Stream's poll_next).
struct NextChunk<'a>(&'a mut Response);
impl Future for NextChunk<'_> {
    type Output = Option<Result<Vec<u8>, h2pool::Error>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_chunk(cx)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let pool = Pool::new(
        Config::new()
            .max_connections_per_endpoint(4)
            .request_timeout(Duration::from_secs(5)),
    )?;

    // Blocking: send returns at the head; the body is a Read.
    let mut resp = pool.send(
        Request::post(format!("{}/echo", base), "hello over HTTP/2")
            .header("content-type", "text/plain"),
    )?;
    let mut text = String::new();
    resp.read_to_string(&mut text)?;
    println!(
        "{} {:?} (stream {}, connection {})",
        resp.status(),
        text,
        resp.stream_id(),
        resp.connection_id()
    );

    // A 404 is a response, and its body reads like any other.
    let resp = pool.send(Request::get(format!("{}/missing?status=404&size=20", base)))?;
    println!("{} with {} bytes", resp.status(), resp.into_bytes()?.len());

    // 100 MiB up from a reader, 100 MiB down through io::copy: a few MiB of
    // memory, whatever the size.
    let size: u64 = 100 << 20;
    let up = pool.send(Request::post(
        format!("{}/?size=0", base),
        RequestBody::from_reader(io::repeat(b'x').take(size), Some(size)),
    ))?;
    println!("uploaded {:?} bytes", up.header_str("x-request-body-length"));
    let mut down = pool.send(Request::get(format!("{}/?zeros={}", base, size)))?;
    println!("downloaded {} bytes", io::copy(&mut down, &mut io::sink())?);

    // Every value of a repeated header.
    let resp = pool.send(Request::get(format!(
        "{}/?header=x-tag:a&header=x-tag:b",
        base
    )))?;
    let tags: Vec<_> = resp.headers_all("x-tag").map(String::from_utf8_lossy).collect();
    println!("x-tag: {:?}, first {:?}", tags, resp.header_str("x-tag"));

    // Callback, on the pool's event thread, with the complete response.
    let (tx, rx) = mpsc::channel();
    pool.send_with(Request::get(format!("{}/?size=1000", base)), move |result| {
        let _ = tx.send(result.and_then(|r| r.into_bytes()).map(|b| b.len()));
    })?;
    println!("callback got {} bytes", rx.recv()??);

    // Futures: both requests are in flight at once; bodies are polled.
    let a = pool.send_async(Request::get(format!("{}/?size=100000&seed=1", base)));
    let b = pool.send_async(Request::get(format!("{}/?size=100000&seed=2", base)));
    let total = block_on(async {
        let mut total = 0;
        for fut in [a, b] {
            let mut resp = fut.await?;
            while let Some(chunk) = NextChunk(&mut resp).await {
                total += chunk?.len();
            }
        }
        Ok::<_, h2pool::Error>(total)
    })?;
    println!("futures: {} bytes", total);

    // Errors carry a code, the HTTP/2 details and a message; {:?} shows
    // sizes, never bodies.
    let slow = Request::get(format!("{}/?delay_ms=5000", base)).timeout(Duration::from_millis(100));
    match pool.send(slow) {
        Err(e) if e.code() == ErrorCode::Timeout => println!("timed out: {} / {:?}", e, e),
        other => println!("unexpected: {:?}", other.map(|r| r.status())),
    }

    let stats = pool.stats()?;
    println!(
        "connections created {}, requests completed {}, failed {}",
        stats.pool.connections_created, stats.pool.requests_completed, stats.pool.requests_failed
    );
    Ok(()) // dropping the pool closes it
}
