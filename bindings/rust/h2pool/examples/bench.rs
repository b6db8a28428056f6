//! The Rust row of the bindings benchmark (bench/): the same load as
//! `h2pool bench`, through the safe Rust API, with CPU time and peak RSS.
//!
//! ```text
//! bench [-n N] [-c C] [--connections K] [--callbacks | --futures] [--insecure | --cacert FILE] URL
//! bench stream [--bytes B] [--insecure | --cacert FILE] UPLOAD_URL DOWNLOAD_URL
//! bench [--callbacks | --futures] -url URL -n N -c C      (as bench/bindings.sh runs it)
//! bench -upload B -url URL | -download B -url URL
//! ```
//!
//! The first form sends N GETs (default 10000) to URL with C in flight
//! (default 100): C threads each doing a blocking `Pool::send` and reading
//! the body; with `--callbacks`, C chains of `Pool::send_with` that each
//! submit the next request from the completion; with `--futures`, C tasks on
//! one executor thread, each awaiting `Pool::send_async` and polling the
//! body with `poll_chunk`. The second uploads B bytes
//! (default 1 GiB) streamed from a reader to UPLOAD_URL, then downloads
//! DOWNLOAD_URL through `Read` (against `h2pool serve`: `.../?size=0`,
//! whose response reports the length it received, and `.../?zeros=B`).
//!
//! The last line is a JSON object with the field names of `h2pool bench`
//! (requests, succeeded, failed, wall_s, user_s, sys_s, rps,
//! cpu_us_per_req) plus peak_rss_mib and, for `stream`, up_bytes,
//! down_bytes, up_mb_s, down_mb_s; also those bench/bindings.sh reads
//! (scenario, bytes, cpu_s, peak_rss_kib). The `-url` forms take the flags of
//! bench/go: `-upload B` streams B bytes up in one request, `-download B`
//! reads one response, with TLS certificates not checked (h2o's is
//! self-signed there). Exit status 1 if anything failed.

use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Instant;

use h2pool::{Config, Pool, Request, RequestBody};

/// `struct rusage` on Linux (64-bit): two timevals, then 14 longs.
#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss_kib: i64,
    rest: [i64; 13],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// (user seconds, system seconds, peak RSS MiB) of this process.
fn usage() -> (f64, f64, f64) {
    let mut ru = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss_kib: 0,
        rest: [0; 13],
    };
    // RUSAGE_SELF (0); `ru` is a writable struct of the kernel's layout.
    let rc = unsafe { getrusage(0, &mut ru) };
    if rc != 0 {
        return (0.0, 0.0, 0.0);
    }
    let secs = |tv: [i64; 2]| tv[0] as f64 + tv[1] as f64 / 1e6;
    (secs(ru.utime), secs(ru.stime), ru.maxrss_kib as f64 / 1024.0)
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {}", msg);
    exit(2)
}

struct Args {
    stream: bool,
    n: u64,
    c: u64,
    connections: Option<u32>,
    callbacks: bool,
    futures: bool,
    bytes: u64,
    insecure: bool,
    cacert: Option<String>,
    urls: Vec<String>,
    /// `-upload B` / `-download B`: one bulk request.
    upload: Option<u64>,
    download: Option<u64>,
}

fn parse_args() -> Args {
    let mut a = Args {
        stream: false,
        n: 10_000,
        c: 100,
        connections: None,
        callbacks: false,
        futures: false,
        bytes: 1 << 30,
        insecure: false,
        cacert: None,
        urls: Vec::new(),
        upload: None,
        download: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(|s| s.as_str()) == Some("stream") {
        a.stream = true;
        it.next();
    }
    let num = |v: Option<String>, what: &str| -> u64 {
        v.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| die(&format!("{} wants a number", what)))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-n" => a.n = num(it.next(), "-n"),
            "-c" => a.c = num(it.next(), "-c"),
            "--connections" => {
                a.connections = Some(u32::try_from(num(it.next(), "--connections")).unwrap_or(u32::MAX))
            }
            "--callbacks" => a.callbacks = true,
            "--futures" => a.futures = true,
            "--bytes" => a.bytes = num(it.next(), "--bytes"),
            // bench/go's flags, for bench/bindings.sh.
            "-url" => {
                a.urls.push(it.next().unwrap_or_else(|| die("-url wants a URL")));
                a.insecure = true;
            }
            "-upload" => a.upload = Some(num(it.next(), "-upload")),
            "-download" => a.download = Some(num(it.next(), "-download")),
            "-k" | "--insecure" => a.insecure = true,
            "--cacert" => a.cacert = Some(it.next().unwrap_or_else(|| die("--cacert wants a file"))),
            "-h" | "--help" => {
                eprintln!("usage: bench [-n N] [-c C] [--connections K] [--callbacks | --futures] [-k | --cacert FILE] URL");
                eprintln!("       bench stream [--bytes B] [-k | --cacert FILE] UPLOAD_URL DOWNLOAD_URL");
                exit(0)
            }
            s if s.starts_with('-') => die(&format!("unknown option {}", s)),
            _ => a.urls.push(arg),
        }
    }
    let want = if a.stream { 2 } else { 1 };
    if a.urls.len() != want {
        die(&format!("expected {} URL(s), see --help", want));
    }
    if a.callbacks && a.futures {
        die("--callbacks or --futures, not both");
    }
    if a.n == 0 || a.c == 0 {
        die("-n and -c must be at least 1");
    }
    a
}

fn pool(a: &Args) -> Pool {
    let mut cfg = Config::new();
    if let Some(k) = a.connections {
        cfg = cfg.max_connections_per_endpoint(k);
    }
    if a.insecure {
        cfg = cfg.tls_insecure_skip_verify(true);
    }
    if let Some(ca) = &a.cacert {
        cfg = cfg.tls_ca_file(ca);
    }
    Pool::new(cfg).unwrap_or_else(|e| die(&format!("cannot create the pool: {}", e)))
}

/// Counts what a run did.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn record(&self, result: Result<u64, String>, first_error: &mpsc::Sender<String>) {
        match result {
            Ok(n) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    let _ = first_error.send(e);
                }
            }
        }
    }
}

/// Reads a body to its end, counting bytes.
fn drain(mut r: impl Read) -> Result<u64, String> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Sends `req` and reads its body.
fn fetch(pool: &Pool, req: Request) -> Result<u64, String> {
    pool.send(req).map_err(|e| e.to_string()).and_then(drain)
}

/// A chain of requests: each completion submits the next, until `left`
/// runs out; `done` hears when the chain ends.
fn chain(
    pool: Arc<Pool>,
    url: Arc<String>,
    left: Arc<AtomicU64>,
    tally: Arc<Tally>,
    errors: mpsc::Sender<String>,
    done: mpsc::Sender<()>,
) {
    let claimed = left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
        .is_ok();
    if !claimed {
        let _ = done.send(());
        return;
    }
    let next = pool.clone();
    let (u, l, t, e, d) = (url.clone(), left, tally.clone(), errors.clone(), done.clone());
    let submitted = pool.send_with(Request::get(url.as_str()), move |result| {
        t.record(
            result
                .and_then(|r| r.into_bytes())
                .map(|b| b.len() as u64)
                .map_err(|e| e.to_string()),
            &e,
        );
        chain(next, u, l, t, e, d);
    });
    if let Err(e) = submitted {
        tally.record(Err(e.to_string()), &errors);
        let _ = done.send(());
    }
}

fn run_get(a: &Args) -> bool {
    let pool = Arc::new(pool(a));
    let url = Arc::new(a.urls[0].clone());
    // Warm-up: connect outside the measurement.
    if let Err(e) = fetch(&pool, Request::get(url.as_str())) {
        die(&format!("warm-up request failed: {}", e));
    }
    let tally = Arc::new(Tally::default());
    let (err_tx, err_rx) = mpsc::channel();
    let (u0, s0, _) = usage();
    let start = Instant::now();
    if a.callbacks {
        let left = Arc::new(AtomicU64::new(a.n));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..a.c {
            chain(
                pool.clone(),
                url.clone(),
                left.clone(),
                tally.clone(),
                err_tx.clone(),
                done_tx.clone(),
            );
        }
        for _ in 0..a.c {
            let _ = done_rx.recv();
        }
    } else if a.futures {
        run_tasks(&pool, &url, a.n, a.c, &tally, &err_tx);
    } else {
        let left = Arc::new(AtomicU64::new(a.n));
        let workers: Vec<_> = (0..a.c)
            .map(|_| {
                let (pool, url, left, tally, errs) =
                    (pool.clone(), url.clone(), left.clone(), tally.clone(), err_tx.clone());
                thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn(move || {
                        while left
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                            .is_ok()
                        {
                            let r = fetch(&pool, Request::get(url.as_str()));
                            tally.record(r, &errs);
                        }
                    })
                    .unwrap_or_else(|e| die(&format!("cannot start a thread: {}", e)))
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1, peak) = usage();
    let (ok, failed) = (tally.ok.load(Ordering::Relaxed), tally.failed.load(Ordering::Relaxed));
    if let Ok(e) = err_rx.try_recv() {
        eprintln!("first error: {}", e);
    }
    let (user, sys) = (u1 - u0, s1 - s0);
    println!(
        "{{\"binding\":\"rust\",\"scenario\":\"get\",\"cpu_s\":{:.6},\"bytes\":{},\"peak_rss_kib\":{:.0},\
         \"mode\":\"{}\",\"requests\":{},\"succeeded\":{},\"failed\":{},\
         \"concurrency\":{},\"wall_s\":{:.6},\"user_s\":{:.6},\"sys_s\":{:.6},\"rps\":{:.1},\
         \"cpu_us_per_req\":{:.3},\"body_bytes\":{},\"peak_rss_mib\":{:.1}}}",
        user + sys,
        tally.bytes.load(Ordering::Relaxed),
        peak * 1024.0,
        if a.callbacks {
            "callbacks"
        } else if a.futures {
            "futures"
        } else {
            "threads"
        },
        a.n,
        ok,
        failed,
        a.c,
        wall,
        user,
        sys,
        a.n as f64 / wall,
        (user + sys) * 1e6 / a.n as f64,
        tally.bytes.load(Ordering::Relaxed),
        peak
    );
    failed == 0
}

/// Wakes a task by queueing its index for the executor thread.
struct TaskWaker {
    index: usize,
    ready: Arc<Mutex<Vec<usize>>>,
    executor: thread::Thread,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).push(self.index);
        self.executor.unpark();
    }
}

/// The next chunk of a body, as a future.
struct NextChunk<'a>(&'a mut h2pool::Response);

impl Future for NextChunk<'_> {
    type Output = Option<Result<Vec<u8>, h2pool::Error>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_chunk(cx)
    }
}

/// `n` requests from `c` tasks on this thread, each polled only when woken.
fn run_tasks(pool: &Arc<Pool>, url: &Arc<String>, n: u64, c: u64, tally: &Arc<Tally>, errs: &mpsc::Sender<String>) {
    let left = Arc::new(AtomicU64::new(n));
    let mut tasks: Vec<Option<Pin<Box<dyn Future<Output = ()>>>>> = (0..c)
        .map(|_| {
            let (pool, url, left, tally, errs) =
                (pool.clone(), url.clone(), left.clone(), tally.clone(), errs.clone());
            let task: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                    .is_ok()
                {
                    let result = match pool.send_async(Request::get(url.as_str())).await {
                        Ok(mut resp) => {
                            let mut total = Ok(0u64);
                            while let Some(chunk) = NextChunk(&mut resp).await {
                                match chunk {
                                    Ok(c) => total = total.map(|t| t + c.len() as u64),
                                    Err(e) => total = Err(e.to_string()),
                                }
                            }
                            total
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    tally.record(result, &errs);
                }
            });
            Some(task)
        })
        .collect();
    let ready = Arc::new(Mutex::new((0..tasks.len()).collect::<Vec<_>>()));
    let wakers: Vec<Waker> = (0..tasks.len())
        .map(|index| {
            Waker::from(Arc::new(TaskWaker {
                index,
                ready: ready.clone(),
                executor: thread::current(),
            }))
        })
        .collect();
    let mut running = tasks.len();
    while running > 0 {
        let batch = std::mem::take(&mut *ready.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            thread::park();
            continue;
        }
        for index in batch {
            if let Some(task) = tasks[index].as_mut() {
                if task.as_mut().poll(&mut Context::from_waker(&wakers[index])).is_ready() {
                    tasks[index] = None;
                    running -= 1;
                }
            }
        }
    }
}

/// `len` bytes of a repeating pattern, never held in memory.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.left.min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = i as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn run_stream(a: &Args) -> bool {
    let pool = pool(a);
    let (u0, s0, _) = usage();
    let mut ok = true;

    let start = Instant::now();
    let up = pool
        .send(Request::post(
            a.urls[0].as_str(),
            RequestBody::from_reader(Pattern { left: a.bytes }, Some(a.bytes)),
        ))
        .map_err(|e| e.to_string())
        .and_then(|r| {
            let reported = r.header_str("x-request-body-length").map(|s| s.to_string());
            drain(r).map(|_| reported)
        });
    let up_s = start.elapsed().as_secs_f64();
    match up {
        Ok(Some(n)) if n != a.bytes.to_string() => {
            eprintln!("upload: the server received {} bytes, not {}", n, a.bytes);
            ok = false;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("upload failed: {}", e);
            ok = false;
        }
    }

    let start = Instant::now();
    let down = fetch(&pool, Request::get(a.urls[1].as_str()));
    let down_s = start.elapsed().as_secs_f64();
    let down_bytes = match down {
        Ok(n) => n,
        Err(e) => {
            eprintln!("download failed: {}", e);
            ok = false;
            0
        }
    };
    let (u1, s1, peak) = usage();
    let mb = |bytes: u64, s: f64| if s > 0.0 { bytes as f64 / s / 1e6 } else { 0.0 };
    println!(
        "{{\"binding\":\"rust\",\"mode\":\"stream\",\"requests\":2,\"succeeded\":{},\"failed\":{},\
         \"wall_s\":{:.6},\"user_s\":{:.6},\"sys_s\":{:.6},\"up_bytes\":{},\"down_bytes\":{},\
         \"up_mb_s\":{:.1},\"down_mb_s\":{:.1},\"peak_rss_mib\":{:.1}}}",
        if ok { 2 } else { 0 },
        if ok { 0 } else { 2 },
        up_s + down_s,
        u1 - u0,
        s1 - s0,
        a.bytes,
        down_bytes,
        mb(a.bytes, up_s),
        mb(down_bytes, down_s),
        peak
    );
    ok
}

/// One bulk request (`-upload` or `-download`), reported as bench/go does.
fn run_bulk(a: &Args) -> bool {
    let pool = pool(a);
    let (u0, s0, _) = usage();
    let start = Instant::now();
    let (scenario, bytes, result) = match (a.upload, a.download) {
        (Some(b), _) => (
            "upload",
            b,
            pool.send(Request::post(
                a.urls[0].as_str(),
                RequestBody::from_reader(Pattern { left: b }, Some(b)),
            ))
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let got = r.header_str("x-request-body-length").map(|s| s.to_string());
                drain(r)?;
                match got {
                    Some(n) if n != b.to_string() => Err(format!("the server received {} bytes", n)),
                    _ => Ok(b),
                }
            }),
        ),
        (None, Some(b)) => ("download", b, fetch(&pool, Request::get(a.urls[0].as_str()))),
        (None, None) => die("-upload or -download"),
    };
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1, peak) = usage();
    let ok = match &result {
        Ok(n) if *n == bytes => true,
        Ok(n) => {
            eprintln!("{}: {} bytes, not {}", scenario, n, bytes);
            false
        }
        Err(e) => {
            eprintln!("{} failed: {}", scenario, e);
            false
        }
    };
    let cpu = (u1 - u0) + (s1 - s0);
    println!(
        "{{\"binding\":\"rust\",\"scenario\":\"{}\",\"requests\":1,\"failed\":{},\"bytes\":{},\
         \"wall_s\":{:.6},\"cpu_s\":{:.6},\"cpu_us_per_req\":{:.3},\"peak_rss_kib\":{:.0}}}",
        scenario,
        if ok { 0 } else { 1 },
        bytes,
        wall,
        cpu,
        cpu * 1e6,
        peak * 1024.0
    );
    ok
}

fn main() {
    let a = parse_args();
    let ok = if a.stream {
        run_stream(&a)
    } else if a.upload.is_some() || a.download.is_some() {
        run_bulk(&a)
    } else {
        run_get(&a)
    };
    exit(if ok { 0 } else { 1 })
}
