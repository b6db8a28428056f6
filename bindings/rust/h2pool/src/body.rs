//! Response bodies: a bounded buffer between the pool's event source (the
//! producer, on the loop thread) and a reader on any thread (blocking
//! `Read`, or `poll_read`/`poll_chunk` with a `Waker`).
//!
//! Backpressure: once `limit` bytes wait in the buffer the producer answers
//! "pause" (libh2pool stops consuming the stream, so its flow-control window
//! closes and the server is held back); when the reader has drained the
//! buffer to half of `limit` it resumes the download. What a slow reader
//! costs is therefore bounded by `limit` plus the stream's window, whatever
//! the body's size.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::{in_callback, lock, Error, ErrorCode, Fields, Inner, RequestId, ResponseHead};

/// Response body bytes a reader may leave unread before the download pauses.
pub(crate) const DEFAULT_BUFFER_LIMIT: usize = 1 << 20;

pub(crate) enum HeadSlot {
    Waiting,
    Ready(ResponseHead),
    Taken,
    Failed(Error),
}

pub(crate) struct State {
    head: HeadSlot,
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks.front()` already read.
    offset: usize,
    /// Unread bytes in `chunks`.
    buffered: usize,
    limit: usize,
    /// The producer answered "pause" and no resume was sent since.
    paused: bool,
    /// The reader is gone: further data aborts the request.
    abandoned: bool,
    /// The completion: trailers, or the error that ended the body.
    end: Option<Result<Fields, Error>>,
    /// The task waiting for the head or for body bytes (never both at once).
    waker: Option<Waker>,
    /// Threads blocked on `cond`: with none, a notification would be a
    /// wasted system call per event.
    sleepers: u32,
}

/// One request's state shared by its event source and its reader.
pub(crate) struct Exchange {
    state: Mutex<State>,
    cond: Condvar,
}

/// What the producer tells the event source after a chunk.
pub(crate) enum DataFlow {
    Continue,
    Pause,
    Abort,
}

impl Exchange {
    pub(crate) fn new(limit: usize) -> Arc<Exchange> {
        Arc::new(Exchange {
            state: Mutex::new(State {
                head: HeadSlot::Waiting,
                chunks: VecDeque::new(),
                offset: 0,
                buffered: 0,
                limit: limit.max(1),
                paused: false,
                abandoned: false,
                end: None,
                waker: None,
                sleepers: 0,
            }),
            cond: Condvar::new(),
        })
    }

    /// A body that is already complete (a buffered response).
    pub(crate) fn finished(body: Vec<u8>, trailers: Fields) -> Arc<Exchange> {
        let ex = Exchange::new(usize::MAX);
        {
            let mut st = lock(&ex.state);
            st.head = HeadSlot::Taken;
            st.buffered = body.len();
            if !body.is_empty() {
                st.chunks.push_back(body);
            }
            st.end = Some(Ok(trailers));
        }
        ex
    }

    /// Takes what must be woken; call `notify` with it after unlocking.
    fn to_wake(st: &mut State) -> (Option<Waker>, bool) {
        (st.waker.take(), st.sleepers > 0)
    }

    /// Wakes whoever waits, outside the lock (a waker may run any code).
    fn notify(&self, (waker, sleepers): (Option<Waker>, bool)) {
        if sleepers {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Blocks on `cond`, counted in `sleepers`.
    fn sleep<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.sleepers += 1;
        let mut st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        st.sleepers -= 1;
        st
    }

    // ---- producer side (the event source, on the loop thread) ----

    /// The response head arrived. Returns false when nobody wants it.
    pub(crate) fn on_head(&self, head: ResponseHead) -> bool {
        let waker = {
            let mut st = lock(&self.state);
            if st.abandoned {
                return false;
            }
            if let HeadSlot::Waiting = st.head {
                st.head = HeadSlot::Ready(head);
            }
            Exchange::to_wake(&mut st)
        };
        self.notify(waker);
        true
    }

    /// A body chunk arrived (borrowed: copied here).
    pub(crate) fn on_data(&self, chunk: &[u8]) -> DataFlow {
        let (flow, waker) = {
            let mut st = lock(&self.state);
            if st.abandoned {
                return DataFlow::Abort;
            }
            if !chunk.is_empty() {
                st.chunks.push_back(chunk.to_vec());
                st.buffered += chunk.len();
            }
            let flow = if st.buffered >= st.limit {
                st.paused = true;
                DataFlow::Pause
            } else {
                DataFlow::Continue
            };
            (flow, Exchange::to_wake(&mut st))
        };
        self.notify(waker);
        flow
    }

    /// The request completed: with its head (for a response whose head was
    /// not seen yet) and trailers, or with an error.
    pub(crate) fn on_complete(&self, result: Result<(ResponseHead, Fields), Error>) {
        let waker = {
            let mut st = lock(&self.state);
            match result {
                Ok((head, trailers)) => {
                    if let HeadSlot::Waiting = st.head {
                        st.head = HeadSlot::Ready(head);
                    }
                    st.end = Some(Ok(trailers));
                }
                Err(e) => {
                    if let HeadSlot::Waiting = st.head {
                        st.head = HeadSlot::Failed(e.clone());
                    }
                    st.end = Some(Err(e));
                }
            }
            Exchange::to_wake(&mut st)
        };
        self.notify(waker);
    }

    // ---- consumer side ----

    fn take_head(st: &mut State) -> Option<Result<ResponseHead, Error>> {
        match std::mem::replace(&mut st.head, HeadSlot::Taken) {
            HeadSlot::Waiting => {
                st.head = HeadSlot::Waiting;
                None
            }
            HeadSlot::Ready(h) => Some(Ok(h)),
            HeadSlot::Failed(e) => Some(Err(e)),
            HeadSlot::Taken => Some(Err(Error::new(
                ErrorCode::Internal,
                "the response head was already taken",
            ))),
        }
    }

    /// Blocks until the head (or the error that came instead).
    pub(crate) fn wait_head(&self) -> Result<ResponseHead, Error> {
        let mut st = lock(&self.state);
        loop {
            if let Some(r) = Exchange::take_head(&mut st) {
                return r;
            }
            st = self.sleep(st);
        }
    }

    pub(crate) fn poll_head(&self, cx: &mut Context<'_>) -> Poll<Result<ResponseHead, Error>> {
        let mut st = lock(&self.state);
        if let Some(r) = Exchange::take_head(&mut st) {
            return Poll::Ready(r);
        }
        set_waker(&mut st.waker, cx);
        Poll::Pending
    }

    /// Marks the exchange abandoned; returns whether the request is still
    /// running (and should be cancelled).
    pub(crate) fn abandon(&self) -> bool {
        let mut st = lock(&self.state);
        st.abandoned = true;
        st.waker = None;
        st.chunks.clear();
        st.buffered = 0;
        st.end.is_none()
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// What one step of reading found.
enum Step<T> {
    Got(T),
    Eof,
    Failed(Error),
    Empty,
}

/// A response body: `std::io::Read` (blocking), or
/// [`poll_read`](ResponseBody::poll_read) /
/// [`poll_chunk`](ResponseBody::poll_chunk) for any executor.
///
/// At most the request's read buffer ([`crate::Request::read_buffer`],
/// default 1 MiB) waits here unread; beyond that the download pauses until
/// the reader catches up. Dropping the body before its end cancels the
/// request. A failure after the head (reset, timeout, lost connection,
/// corrupt encoding) is returned by the read that reaches it, as an
/// `io::Error` wrapping an [`Error`].
pub struct ResponseBody {
    ex: Arc<Exchange>,
    pool: Option<Arc<Inner>>,
    id: Option<RequestId>,
    trailers: Option<Fields>,
    done: bool,
    read: u64,
}

impl ResponseBody {
    pub(crate) fn new(ex: Arc<Exchange>, pool: Option<Arc<Inner>>, id: Option<RequestId>) -> ResponseBody {
        ResponseBody {
            ex,
            pool,
            id,
            trailers: None,
            done: false,
            read: 0,
        }
    }

    pub(crate) fn set_trailers(&mut self, trailers: Fields) {
        self.trailers = Some(trailers);
    }

    /// Takes what is next under the lock: `take` consumes from the front
    /// chunk and returns the item and its size.
    fn step<T>(
        &mut self,
        st: &mut State,
        take: impl FnOnce(&mut State) -> (T, usize),
    ) -> (Step<T>, bool) {
        if !st.chunks.is_empty() {
            let (item, n) = take(st);
            st.buffered -= n;
            self.read += n as u64;
            let resume = st.paused && st.buffered <= st.limit / 2;
            if resume {
                st.paused = false;
            }
            return (Step::Got(item), resume);
        }
        match &st.end {
            None => (Step::Empty, false),
            Some(Ok(trailers)) => {
                self.trailers = Some(trailers.clone());
                self.done = true;
                (Step::Eof, false)
            }
            Some(Err(e)) => (Step::Failed(e.clone()), false),
        }
    }

    /// After taking bytes: unlock, then resume the download if `step` said
    /// so (outside the lock: the call may wait for the pool's lock).
    fn taken(&self, st: MutexGuard<'_, State>, resume: bool) {
        drop(st);
        if resume {
            self.resume();
        }
    }

    fn resume(&self) {
        if let (Some(pool), Some(id)) = (&self.pool, self.id) {
            // Fails only once the pool is closing, and then the request
            // completes with PoolClosed, which the reader will see.
            let _ = pool.resume_download(id);
        }
    }

    fn read_step(&mut self, st: &mut State, buf: &mut [u8]) -> (Step<usize>, bool) {
        self.step(st, |st| {
            let front = &st.chunks[0];
            let avail = &front[st.offset..];
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            st.offset += n;
            if st.offset == front.len() {
                st.chunks.pop_front();
                st.offset = 0;
            }
            (n, n)
        })
    }

    fn chunk_step(&mut self, st: &mut State) -> (Step<Vec<u8>>, bool) {
        self.step(st, |st| {
            let mut front = st.chunks.pop_front().unwrap_or_default();
            if st.offset > 0 {
                front.drain(..st.offset);
                st.offset = 0;
            }
            let n = front.len();
            (front, n)
        })
    }

    /// Runs `f` under the lock until it finds something; blocks while the
    /// buffer is empty. Refuses to block on the pool's loop thread, which
    /// is the thread that would fill the buffer.
    fn blocking<T>(
        &mut self,
        mut f: impl FnMut(&mut Self, &mut State) -> (Step<T>, bool),
    ) -> Result<Option<T>, Error> {
        let ex = self.ex.clone();
        let mut st = lock(&ex.state);
        loop {
            let (step, resume) = f(self, &mut st);
            match step {
                Step::Got(item) => {
                    self.taken(st, resume);
                    return Ok(Some(item));
                }
                Step::Eof => return Ok(None),
                Step::Failed(e) => return Err(e),
                Step::Empty => {
                    if in_callback() {
                        return Err(Error::new(
                            ErrorCode::WrongThread,
                            "a blocking body read on the pool's loop thread would never end; use poll_read",
                        ));
                    }
                    st = ex.sleep(st);
                }
            }
        }
    }

    fn polling<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Self, &mut State) -> (Step<T>, bool),
    ) -> Poll<Result<Option<T>, Error>> {
        let ex = self.ex.clone();
        let mut st = lock(&ex.state);
        let (step, resume) = f(self, &mut st);
        match step {
            Step::Got(item) => {
                self.taken(st, resume);
                Poll::Ready(Ok(Some(item)))
            }
            Step::Eof => Poll::Ready(Ok(None)),
            Step::Failed(e) => Poll::Ready(Err(e)),
            Step::Empty => {
                set_waker(&mut st.waker, cx);
                Poll::Pending
            }
        }
    }

    /// The next chunk as it arrived (blocking); `None` at the end.
    pub fn chunk(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if self.done {
            return None;
        }
        self.blocking(|b, st| b.chunk_step(st)).transpose()
    }

    /// The next chunk, or `Poll::Pending` after registering the waker;
    /// `Ready(None)` at the end (a stream in the style of
    /// `futures::Stream::poll_next`).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        self.polling(cx, |b, st| b.chunk_step(st)).map(|r| r.transpose())
    }

    /// Reads into `buf` like `Read::read`, but registers the waker instead
    /// of blocking (in the style of `AsyncRead::poll_read`). `Ok(0)` at the
    /// end (or for an empty `buf`).
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.done || buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.polling(cx, |b, st| b.read_step(st, buf))
            .map(|r| r.map(|n| n.unwrap_or(0)).map_err(io::Error::from))
    }

    /// Reads the rest of the body into memory.
    pub fn into_bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk() {
            let chunk = chunk?;
            if out.is_empty() {
                out = chunk;
            } else {
                out.extend_from_slice(&chunk);
            }
        }
        Ok(out)
    }

    /// Bytes that have arrived and wait here unread.
    pub fn buffered(&self) -> usize {
        lock(&self.ex.state).buffered
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Whether the end of the body has been read.
    pub fn is_end(&self) -> bool {
        self.done
    }

    /// The trailer fields, once the end of the body has been read (empty
    /// when the server sent none); `None` before.
    pub fn trailers(&self) -> Option<&[(String, Vec<u8>)]> {
        self.trailers.as_deref()
    }
}

impl io::Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        match self.blocking(|b, st| b.read_step(st, buf)) {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.ex.abandon() {
            if let (Some(pool), Some(id)) = (&self.pool, self.id) {
                // Resets the stream; its completion still runs and is dropped.
                let _ = pool.cancel(id);
            }
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (buffered, complete) = {
            let st = lock(&self.ex.state);
            (st.buffered, st.end.is_some())
        };
        f.debug_struct("ResponseBody")
            .field("bytes_read", &self.read)
            .field("buffered_bytes", &buffered)
            .field("complete", &complete)
            .field("end_read", &self.done)
            .finish()
    }
}
