//! Where a request's events come from, and what handles them.
//!
//! Every request goes through libh2pool's completion queue
//! (`h2pool_queue_request`): no Rust code runs on the pool's loop thread
//! for it. One drainer thread per pool blocks in `h2pool_queue_next`, takes
//! the events in batches and hands each to its request's [`Handler`] (the
//! event's `user_data`): response head, body chunk, "the upload buffer has
//! room", completion. Completion callbacks, wakers and `on_data` closures
//! therefore run on the drainer thread ("h2pool-events").
//!
//! Download backpressure is the queue's: a DATA event is kept, not copied,
//! until the reader has consumed it, and libh2pool stops reading the
//! stream while the bytes of DATA events not yet freed reach the request's
//! download buffer (`Request::read_buffer`).
//!
//! Uploads are pushed with `h2pool_request_write_body`: in-memory bodies
//! larger than [`DIRECT_BODY_MAX`] by the submitting thread and then by the
//! drainer on each WRITABLE event (no thread of their own), readers by a
//! pump thread each (see `upload.rs`: a `Read` may block, so it cannot run
//! on the drainer).

use std::ops::ControlFlow;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::body::Exchange;
use crate::upload::Feed;
use crate::{
    error_from_raw, head_from_raw, lock, response_parts_from_raw, run_caught, sys, CallbackScope,
    Error, ErrorCode, Fields, Inner, RequestId, Response, ResponseHead,
};

pub(crate) type CompletionFn = Box<dyn FnOnce(Result<Response, Error>) + Send + 'static>;
pub(crate) type DataFn = Box<dyn FnMut(&[u8]) -> ControlFlow<()> + Send + 'static>;

/// In-memory bodies up to this size are handed to `h2pool_queue_request`
/// (which copies them, and can replay them on a retry); larger ones are
/// written into the request's bounded upload buffer as it drains, so they
/// are never copied whole.
pub(crate) const DIRECT_BODY_MAX: usize = 64 << 10;

/// libh2pool's default download and upload buffers.
pub(crate) const DEFAULT_BUFFER: u32 = 256 << 10;

/// Trailer fields to send after a streamed body.
pub(crate) type Trailers = Arc<Vec<(Vec<u8>, Vec<u8>)>>;

/// Events taken per `h2pool_queue_next` call.
const BATCH: usize = 64;

/// Where the response goes.
pub(crate) enum Sink {
    /// Buffered by libh2pool; one call with the complete response.
    Buffered(CompletionFn),
    /// Each chunk to `on_data`, then `done` with an empty body.
    Callbacks { on_data: DataFn, done: CompletionFn },
    /// Head and chunks into an [`Exchange`] read by a `ResponseBody`.
    Stream(Arc<Exchange>),
}

/// An in-memory body written through `h2pool_request_write_body`.
pub(crate) enum Bytes {
    Owned(Vec<u8>),
    Static(&'static [u8]),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Static(s) => s,
        }
    }
}

/// The part of an in-memory upload not yet in libh2pool's upload buffer.
pub(crate) struct Outgoing {
    bytes: Bytes,
    offset: usize,
    ended: bool,
    id: u64,
    trailers: Trailers,
    /// Why ending the body failed (a refused trailer).
    failed: Option<Error>,
    pool: Arc<Inner>,
}

impl Outgoing {
    pub(crate) fn new(bytes: Bytes, trailers: Trailers, pool: Arc<Inner>) -> Arc<Mutex<Outgoing>> {
        Arc::new(Mutex::new(Outgoing {
            bytes,
            offset: 0,
            ended: false,
            id: 0,
            trailers,
            failed: None,
            pool,
        }))
    }

    /// Writes what the upload buffer takes; ends the body once all of it
    /// is in. A short write means a WRITABLE event will call this again.
    /// Any failure means the request is over (or the pool closing), which
    /// its COMPLETE event reports.
    fn push(&mut self) {
        if self.ended || self.id == 0 {
            return;
        }
        let id = RequestId(self.id);
        let total = self.bytes.as_slice().len();
        while self.offset < total {
            let rest = &self.bytes.as_slice()[self.offset..];
            match self.pool.write_body(id, rest) {
                Ok(n) => {
                    self.offset += n.min(rest.len());
                    if n < rest.len() {
                        return;
                    }
                }
                Err(_) => {
                    self.ended = true;
                    return;
                }
            }
        }
        self.ended = true;
        if let Err(e) = self.pool.end_body(id, &self.trailers) {
            if e.code == ErrorCode::InvalidHeader {
                // Recorded first: the completion this causes reads it
                // (under the lock we hold).
                self.failed = Some(e);
                let _ = self.pool.cancel(id);
            }
        }
    }
}

/// Starts pushing an accepted request's in-memory body (on the submitting
/// thread; later pushes come from WRITABLE events on the drainer).
pub(crate) fn start_push(out: &Mutex<Outgoing>, id: RequestId) {
    let mut o = lock(out);
    o.id = id.0;
    o.push();
}

/// Where the request body comes from, as far as the handler is concerned.
pub(crate) enum Upload {
    /// No body, or one libh2pool copied at submission.
    Nothing,
    /// An in-memory body pushed on WRITABLE events.
    Memory(Arc<Mutex<Outgoing>>),
    /// A streamed body, pushed by a pump thread that WRITABLE events wake.
    Pump(Arc<Feed>),
}

pub(crate) struct Handler {
    pub(crate) sink: Sink,
    pub(crate) upload: Upload,
    pub(crate) panics: Arc<AtomicU64>,
    /// For cancelling (abort from `on_data`, a head nobody wants).
    pub(crate) pool: Arc<Inner>,
    /// `on_data` asked to stop (or panicked): the request was cancelled,
    /// and its completion reports `Aborted`.
    aborted: bool,
}

impl Handler {
    pub(crate) fn new(sink: Sink, upload: Upload, pool: Arc<Inner>) -> Handler {
        Handler {
            panics: pool.panics.clone(),
            sink,
            upload,
            pool,
            aborted: false,
        }
    }

    fn count_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    fn cancel(&self, id: u64) {
        // Fails only when the request is over or the pool closing; either
        // way its COMPLETE event follows.
        let _ = self.pool.cancel(RequestId(id));
    }

    fn head(&mut self, head: ResponseHead, id: u64) {
        if let Sink::Stream(ex) = &self.sink {
            if !ex.on_head(head) {
                self.cancel(id);
            }
        }
    }

    /// A DATA event: kept by a streamed body, else read and freed.
    fn data(&mut self, ev: Event, id: u64) {
        match &mut self.sink {
            Sink::Stream(ex) => {
                if !ex.on_data(ev) {
                    self.cancel(id);
                }
            }
            Sink::Callbacks { on_data, .. } => {
                if self.aborted {
                    return;
                }
                let mut flow = ControlFlow::Break(());
                let panicked = run_caught(|| flow = on_data(ev.bytes()));
                if panicked {
                    self.panics.fetch_add(1, Ordering::Relaxed);
                }
                if let ControlFlow::Break(()) = flow {
                    self.aborted = true;
                    self.cancel(id);
                }
            }
            Sink::Buffered(_) => {}
        }
    }

    fn writable(&mut self) {
        match &self.upload {
            Upload::Memory(out) => lock(out).push(),
            Upload::Pump(feed) => feed.writable(),
            Upload::Nothing => {}
        }
    }

    /// The request completed; consumes the handler.
    fn complete(self, result: Result<Completed, Error>) {
        let Handler {
            sink,
            upload,
            panics,
            aborted,
            pool,
            ..
        } = self;
        let mut result = result;
        if aborted {
            // Whatever came after the cancellation (it is asynchronous: the
            // response may even have been complete by then).
            result = Err(Error::new(ErrorCode::Aborted, "aborted by the data callback"));
        }
        let failure = match &upload {
            Upload::Pump(feed) => feed.close(),
            Upload::Memory(out) => lock(out).failed.take(),
            Upload::Nothing => None,
        };
        if let (Err(e), Some(why)) = (&mut result, failure) {
            // The cancellation that the failure caused, or the reader's
            // error as libh2pool reports it.
            if matches!(e.code, ErrorCode::Cancelled | ErrorCode::BodySource) {
                *e = why;
            }
        }
        drop(upload);
        drop(pool);
        let panicked = run_caught(move || match sink {
            Sink::Buffered(f) => f(result.map(|c| Response::finished(c.head, c.body, c.trailers))),
            Sink::Callbacks { done, .. } => {
                done(result.map(|c| Response::finished(c.head, Vec::new(), c.trailers)))
            }
            Sink::Stream(ex) => ex.on_complete(result.map(|c| (c.head, c.trailers))),
        });
        if panicked {
            panics.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One request's completion, as copied out of its COMPLETE event.
struct Completed {
    head: ResponseHead,
    body: Vec<u8>,
    trailers: Fields,
}

/// An event taken from the queue, freed when dropped (on any thread, also
/// after the pool and the queue are gone, as `h2pool_event_free` allows).
pub(crate) struct Event(*mut sys::h2pool_event);

// The event is owned (taken from h2pool_queue_next) and readable from any
// thread; it is freed only by Drop, which has it exclusively.
unsafe impl Send for Event {}
unsafe impl Sync for Event {}

impl Event {
    /// The bytes of a DATA event (empty for other kinds).
    pub(crate) fn bytes(&self) -> &[u8] {
        let mut len = 0usize;
        // self.0 is a live event; the bytes are owned by it and live until
        // it is freed, which needs `self` by value (Drop).
        unsafe {
            let p = sys::h2pool_event_data(self.0, &mut len);
            if p.is_null() || len == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p, len)
            }
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // Owned by this wrapper and freed once; giving a DATA event's bytes
        // back may resume its download.
        unsafe { sys::h2pool_event_free(self.0) }
    }
}

/// The queue handle, shared by the submitters (under the pool's lock) and
/// the drainer, which destroys it after `H2POOL_ERR_QUEUE_CLOSED`.
#[derive(Clone, Copy)]
pub(crate) struct QueuePtr(pub(crate) *mut sys::h2pool_queue);

// h2pool_queue_request, _next and _shutdown are thread-safe; _destroy is
// called once, by the drainer, after the queue reported that it is closed
// and drained (no submitter can reach it then: see Inner::close).
unsafe impl Send for QueuePtr {}
unsafe impl Sync for QueuePtr {}

/// The drainer: takes batches until the queue is shut down and empty, then
/// destroys it.
pub(crate) fn drain(queue: QueuePtr) {
    // Everything below runs user code (completions, wakers, on_data);
    // blocking calls check this mark (a blocking send here would wait for
    // this very thread).
    let _scope = CallbackScope::enter();
    let mut evs: Vec<*mut sys::h2pool_event> = vec![ptr::null_mut(); BATCH];
    loop {
        // `evs` has room for BATCH pointers; the queue is live until this
        // loop ends (only this thread destroys it).
        let n = unsafe { sys::h2pool_queue_next(queue.0, evs.as_mut_ptr(), BATCH, -1) };
        if n < 0 {
            // QUEUE_CLOSED: shut down and drained. (Any other error would
            // repeat forever; stopping is all that can be done.)
            break;
        }
        for &raw in &evs[..n as usize] {
            dispatch(Event(raw));
        }
    }
    // Shut down and drained: no request of this queue is under way and no
    // submitter can reach it (Inner::close shuts it down after the pool).
    unsafe { sys::h2pool_queue_destroy(queue.0) };
}

fn dispatch(ev: Event) {
    // ev.0 is a live event taken by this thread; its user_data is the
    // Box<Handler> that Inner::submit leaked for the accepted request.
    // Events of one request come in order and only this thread handles
    // them, COMPLETE last and exactly once: a &mut Handler for one event
    // aliases nothing, and COMPLETE may take the box back.
    unsafe {
        let user_data = sys::h2pool_event_user_data(ev.0) as *mut Handler;
        if user_data.is_null() {
            return;
        }
        let id = sys::h2pool_event_request_id(ev.0);
        match sys::h2pool_event_kind(ev.0) {
            sys::H2POOL_EVENT_HEADERS => {
                let handler = &mut *user_data;
                // Copied out of the event, which is then freed.
                let head = head_from_raw(sys::h2pool_event_response(ev.0));
                drop(ev);
                let panicked = run_caught(|| handler.head(head, id));
                if panicked {
                    handler.count_panic();
                }
            }
            sys::H2POOL_EVENT_DATA => {
                let handler = &mut *user_data;
                let panicked = run_caught(|| handler.data(ev, id));
                if panicked {
                    handler.count_panic();
                }
            }
            sys::H2POOL_EVENT_WRITABLE => {
                let handler = &mut *user_data;
                drop(ev);
                let panicked = run_caught(|| handler.writable());
                if panicked {
                    handler.count_panic();
                }
            }
            sys::H2POOL_EVENT_COMPLETE => {
                let handler = Box::from_raw(user_data);
                let err = sys::h2pool_event_error(ev.0);
                let resp = sys::h2pool_event_response(ev.0);
                // Both owned by the event: copied before it is freed.
                let result = if err.is_null() {
                    let (head, body, trailers) = response_parts_from_raw(resp);
                    Ok(Completed {
                        head,
                        body,
                        trailers,
                    })
                } else {
                    Err(error_from_raw(err, resp))
                };
                drop(ev);
                let panics = handler.panics.clone();
                if run_caught(move || handler.complete(result)) {
                    panics.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// The `content_length` argument of `h2pool_request_opts_set_queue_upload`.
pub(crate) fn upload_length(len: Option<u64>) -> Result<i64, Error> {
    match len {
        None => Ok(-1),
        Some(n) => i64::try_from(n)
            .map_err(|_| Error::new(ErrorCode::InvalidArgument, "content length out of range")),
    }
}
