//! Where a request's events come from, and what handles them.
//!
//! A [`Handler`] is one request's receiver of events: response head, body
//! chunk, "give me upload bytes", "the lent body is released", completion.
//! It knows nothing of where they come from. Today the source is
//! libh2pool's per-request callbacks, on the pool's loop thread (the
//! trampolines at the end of this file, which copy what the C side lends
//! and call the handler). A completion-queue source would drain events in
//! batches on a thread of the binding and call the same handler methods;
//! only [`install`] and the trampolines would change.

use std::ops::ControlFlow;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::body::{DataFlow, Exchange};
use crate::upload::{Fill, Pipe};
use crate::{
    error_from_raw, head_from_raw, response_parts_from_raw, run_caught, sys, CallbackScope, Error,
    ErrorCode, Fields, RawOpts, Response, ResponseHead,
};

pub(crate) type CompletionFn = Box<dyn FnOnce(Result<Response, Error>) + Send + 'static>;
pub(crate) type DataFn = Box<dyn FnMut(&[u8]) -> ControlFlow<()> + Send + 'static>;

/// Where the response goes.
pub(crate) enum Sink {
    /// Buffered by libh2pool; one callback with the complete response.
    Buffered(CompletionFn),
    /// Each chunk to `on_data`, then `done` with an empty body.
    Callbacks { on_data: DataFn, done: CompletionFn },
    /// Head and chunks into an [`Exchange`] read by a `ResponseBody`.
    Stream(Arc<Exchange>),
}

/// Where the request body comes from, as far as the handler is concerned.
pub(crate) enum Upload {
    /// No body, or a `'static` one (nothing to keep alive).
    Nothing,
    /// An owned body lent to libh2pool until its release event.
    Lent(Option<Vec<u8>>),
    /// A streamed body, taken from a pump's pipe.
    Pipe(Arc<Pipe>),
}

/// One request's events, as copied out of the source.
pub(crate) struct Completed {
    pub(crate) head: ResponseHead,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Fields,
}

pub(crate) struct Handler {
    pub(crate) sink: Sink,
    pub(crate) upload: Upload,
    pub(crate) panics: Arc<AtomicU64>,
}

impl Handler {
    fn count_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The response head arrived; false aborts the request.
    pub(crate) fn head(&mut self, head: ResponseHead) -> bool {
        match &self.sink {
            Sink::Stream(ex) => ex.on_head(head),
            _ => true,
        }
    }

    /// A body chunk arrived (borrowed for the call).
    pub(crate) fn data(&mut self, chunk: &[u8]) -> DataFlow {
        match &mut self.sink {
            Sink::Stream(ex) => ex.on_data(chunk),
            Sink::Callbacks { on_data, .. } => {
                let mut flow = ControlFlow::Break(());
                let panicked = run_caught(|| flow = on_data(chunk));
                if panicked {
                    self.count_panic();
                }
                match flow {
                    ControlFlow::Continue(()) => DataFlow::Continue,
                    ControlFlow::Break(()) => DataFlow::Abort,
                }
            }
            Sink::Buffered(_) => DataFlow::Continue,
        }
    }

    /// The upload wants up to `out.len()` bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> Fill {
        match &self.upload {
            Upload::Pipe(pipe) => pipe.fill(out),
            _ => Fill::Abort,
        }
    }

    /// libh2pool is done with the lent body.
    pub(crate) fn release(&mut self) {
        if let Upload::Lent(body) = &mut self.upload {
            *body = None;
        }
    }

    /// The request completed; consumes the handler.
    pub(crate) fn complete(self, result: Result<Completed, Error>) {
        let Handler {
            sink,
            upload,
            panics,
        } = self;
        let mut result = result;
        if let Upload::Pipe(pipe) = &upload {
            let failure = pipe.close();
            if let (Err(e), Some(why)) = (&mut result, failure) {
                if e.code == ErrorCode::BodySource {
                    e.message = why;
                }
            }
        }
        drop(upload);
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

/// Sets on `opts` the callbacks through which this source delivers the
/// handler's events.
pub(crate) fn install(opts: &RawOpts, handler: &Handler, body_length: Option<u64>) -> Result<(), Error> {
    unsafe {
        // opts.0 is a live h2pool_request_opts (RawOpts owns it).
        match handler.sink {
            Sink::Stream(_) => {
                opts.check(
                    sys::h2pool_request_opts_set_on_headers(opts.0, Some(on_headers)),
                    "on_headers",
                )?;
                opts.check(
                    sys::h2pool_request_opts_set_on_data(opts.0, Some(on_data)),
                    "on_data",
                )?;
            }
            Sink::Callbacks { .. } => {
                opts.check(
                    sys::h2pool_request_opts_set_on_data(opts.0, Some(on_data)),
                    "on_data",
                )?;
            }
            Sink::Buffered(_) => {}
        }
        match handler.upload {
            Upload::Nothing => {}
            Upload::Lent(_) => opts.check(
                sys::h2pool_request_opts_set_body_release(opts.0, Some(on_body_release)),
                "body release",
            )?,
            Upload::Pipe(_) => {
                let length = match body_length {
                    None => -1,
                    Some(n) => i64::try_from(n).map_err(|_| {
                        Error::new(ErrorCode::InvalidArgument, "content length out of range")
                    })?,
                };
                opts.check(
                    sys::h2pool_request_opts_set_body_reader(opts.0, Some(on_body_read), length),
                    "body reader",
                )?
            }
        }
    }
    Ok(())
}

/// Whether `install` sets anything, so that requests without needs skip the
/// options object.
pub(crate) fn needs_options(handler: &Handler) -> bool {
    !matches!(
        (&handler.sink, &handler.upload),
        (Sink::Buffered(_), Upload::Nothing)
    )
}

// ---------------------------------------------------------------------------
// The callback source: trampolines on the loop thread.
//
// Invariant for every `user_data` below: it is the `Box<Handler>` that
// `Inner::submit` leaked for an accepted request. libh2pool passes it to
// these callbacks, one at a time on its loop thread, and to `on_complete`
// last and exactly once; so a `&mut Handler` borrowed for one callback
// aliases nothing, and `on_complete` may take the box back.
// ---------------------------------------------------------------------------

pub(crate) unsafe extern "C" fn on_complete(
    resp: *const sys::h2pool_response,
    err: *const sys::h2pool_error,
    user_data: *mut c_void,
) {
    let handler = Box::from_raw(user_data as *mut Handler);
    let _scope = CallbackScope::enter();
    let panics = handler.panics.clone();
    let panicked = run_caught(move || {
        // resp and err are borrowed until we return: copy before user code.
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
        handler.complete(result);
    });
    if panicked {
        panics.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe extern "C" fn on_headers(resp: *const sys::h2pool_response, user_data: *mut c_void) -> c_int {
    let handler = &mut *(user_data as *mut Handler);
    let _scope = CallbackScope::enter();
    let mut go_on = false;
    // resp is borrowed for the call; head_from_raw copies it.
    if run_caught(|| go_on = handler.head(head_from_raw(resp))) {
        handler.count_panic();
    }
    if go_on {
        0
    } else {
        -1
    }
}

unsafe extern "C" fn on_data(data: *const u8, len: usize, user_data: *mut c_void) -> c_int {
    let handler = &mut *(user_data as *mut Handler);
    // Borrowed for the call only: the slice cannot outlive it.
    let chunk: &[u8] = if data.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(data, len)
    };
    let _scope = CallbackScope::enter();
    let mut flow = DataFlow::Abort;
    if run_caught(|| flow = handler.data(chunk)) {
        handler.count_panic();
    }
    match flow {
        DataFlow::Continue => 0,
        DataFlow::Pause => sys::H2POOL_DATA_PAUSE,
        DataFlow::Abort => -1, // not 0, not H2POOL_DATA_PAUSE
    }
}

unsafe extern "C" fn on_body_read(
    buf: *mut u8,
    len: usize,
    eof: *mut c_int,
    user_data: *mut c_void,
) -> i64 {
    let handler = &mut *(user_data as *mut Handler);
    // libh2pool lends `len` writable bytes at `buf` for the call.
    let out: &mut [u8] = if buf.is_null() || len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(buf, len)
    };
    let mut fill = Fill::Abort;
    if run_caught(|| fill = handler.fill(out)) {
        handler.count_panic();
    }
    match fill {
        Fill::Bytes { n, eof: last } => {
            if last && !eof.is_null() {
                *eof = 1;
            }
            n.min(len) as i64
        }
        Fill::Wait => sys::H2POOL_BODY_WAIT,
        Fill::Abort => sys::H2POOL_BODY_ABORT,
    }
}

unsafe extern "C" fn on_body_release(_body: *const u8, user_data: *mut c_void) {
    let handler = &mut *(user_data as *mut Handler);
    if run_caught(|| handler.release()) {
        handler.count_panic();
    }
}
