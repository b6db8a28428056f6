//! Response bodies: the DATA events of a streamed response, kept between
//! the pool's drainer thread (the producer) and a reader on any thread
//! (blocking `Read`, or `poll_read`/`poll_chunk` with a `Waker`).
//!
//! Backpressure is libh2pool's: the bytes of a DATA event count against the
//! request's download buffer (`Request::read_buffer`) until the event is
//! freed, which happens here once the reader has consumed it; at the limit
//! the pool stops reading the stream (its flow-control window closes and
//! the server is held back) and it resumes on its own when the reader has
//! brought it down to half. What a slow reader costs is therefore bounded
//! by the buffer plus the stream's window, whatever the body's size.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::events::Event;
use crate::{in_callback, lock, Error, ErrorCode, Fields, Inner, RequestId, ResponseHead};

/// Body bytes waiting to be read: a DATA event (freed once read, which
/// gives its bytes back to the download buffer) or owned bytes.
pub(crate) enum Chunk {
    Event(Event),
    Owned(Vec<u8>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Event(ev) => ev.bytes(),
            Chunk::Owned(v) => v,
        }
    }
}

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
    chunks: VecDeque<Chunk>,
    /// Bytes of `chunks.front()` already read.
    offset: usize,
    /// Unread bytes in `chunks`.
    buffered: usize,
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

impl Exchange {
    pub(crate) fn new() -> Arc<Exchange> {
        Arc::new(Exchange {
            state: Mutex::new(State {
                head: HeadSlot::Waiting,
                chunks: VecDeque::new(),
                offset: 0,
                buffered: 0,
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
        let ex = Exchange::new();
        {
            let mut st = lock(&ex.state);
            st.head = HeadSlot::Taken;
            st.buffered = body.len();
            if !body.is_empty() {
                st.chunks.push_back(Chunk::Owned(body));
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

    // ---- producer side (the drainer thread) ----

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

    /// A DATA event arrived: kept until read. Returns false (and frees
    /// it) when nobody reads any more.
    pub(crate) fn on_data(&self, ev: Event) -> bool {
        let waker = {
            let mut st = lock(&self.state);
            if st.abandoned {
                drop(st);
                drop(ev);
                return false;
            }
            let n = ev.bytes().len();
            if n == 0 {
                return true;
            }
            st.chunks.push_back(Chunk::Event(ev));
            st.buffered += n;
            Exchange::to_wake(&mut st)
        };
        self.notify(waker);
        true
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
        let chunks = std::mem::take(&mut st.chunks);
        st.buffered = 0;
        let running = st.end.is_none();
        drop(st);
        drop(chunks); // frees the events outside the lock
        running
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
        take: impl FnOnce(&mut State) -> (T, usize, Option<Chunk>),
    ) -> (Step<T>, Option<Chunk>) {
        if !st.chunks.is_empty() {
            let (item, n, used) = take(st);
            st.buffered -= n;
            self.read += n as u64;
            return (Step::Got(item), used);
        }
        match &st.end {
            None => (Step::Empty, None),
            Some(Ok(trailers)) => {
                self.trailers = Some(trailers.clone());
                self.done = true;
                (Step::Eof, None)
            }
            Some(Err(e)) => (Step::Failed(e.clone()), None),
        }
    }

    /// After taking bytes: unlock, then free the chunk that was used up
    /// (outside the lock: freeing a DATA event may resume the download).
    fn taken(&self, st: MutexGuard<'_, State>, used: Option<Chunk>) {
        drop(st);
        drop(used);
    }

    fn read_step(&mut self, st: &mut State, buf: &mut [u8]) -> (Step<usize>, Option<Chunk>) {
        self.step(st, |st| {
            let front = st.chunks[0].bytes();
            let avail = &front[st.offset.min(front.len())..];
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            let left = avail.len() - n;
            st.offset += n;
            let used = if left == 0 {
                st.offset = 0;
                st.chunks.pop_front()
            } else {
                None
            };
            (n, n, used)
        })
    }

    fn chunk_step(&mut self, st: &mut State) -> (Step<Vec<u8>>, Option<Chunk>) {
        self.step(st, |st| {
            let offset = std::mem::replace(&mut st.offset, 0);
            match st.chunks.pop_front() {
                Some(Chunk::Owned(mut v)) => {
                    v.drain(..offset.min(v.len()));
                    let n = v.len();
                    (v, n, None)
                }
                Some(Chunk::Event(ev)) => {
                    let bytes = ev.bytes();
                    let v = bytes[offset.min(bytes.len())..].to_vec();
                    let n = v.len();
                    (v, n, Some(Chunk::Event(ev)))
                }
                None => (Vec::new(), 0, None),
            }
        })
    }

    /// Runs `f` under the lock until it finds something; blocks while the
    /// buffer is empty. Refuses to block on the pool's drainer thread,
    /// which is the thread that would fill the buffer.
    fn blocking<T>(
        &mut self,
        mut f: impl FnMut(&mut Self, &mut State) -> (Step<T>, Option<Chunk>),
    ) -> Result<Option<T>, Error> {
        let ex = self.ex.clone();
        let mut st = lock(&ex.state);
        loop {
            let (step, used) = f(self, &mut st);
            match step {
                Step::Got(item) => {
                    self.taken(st, used);
                    return Ok(Some(item));
                }
                Step::Eof => return Ok(None),
                Step::Failed(e) => return Err(e),
                Step::Empty => {
                    if in_callback() {
                        return Err(Error::new(
                            ErrorCode::WrongThread,
                            "a blocking body read on the pool's event thread would never end; use poll_read",
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
        f: impl FnOnce(&mut Self, &mut State) -> (Step<T>, Option<Chunk>),
    ) -> Poll<Result<Option<T>, Error>> {
        let ex = self.ex.clone();
        let mut st = lock(&ex.state);
        let (step, used) = f(self, &mut st);
        match step {
            Step::Got(item) => {
                self.taken(st, used);
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
