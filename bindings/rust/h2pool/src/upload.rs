//! Request bodies: in memory (owned or `'static`) or streamed from a `Read`.
//!
//! In-memory bodies are never copied whole: small ones go with the request,
//! larger ones are written into libh2pool's bounded upload buffer as it
//! drains, from WRITABLE events on the pool's drainer thread (see
//! `events.rs`).
//!
//! A `Read` may block, which neither the loop thread nor the drainer may
//! do, so each streamed upload has a helper thread ("pump") that reads a
//! block and writes it with `h2pool_request_write_body`; when the upload
//! buffer is full it sleeps until the drainer sees the request's WRITABLE
//! event. Memory is bounded by the block and the upload buffer, whatever
//! the body's size, and the upload runs at the pace of the flow-control
//! window.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex};

use crate::events::Trailers;
use crate::{lock, Error, ErrorCode, Inner, RequestId};

/// One `read` call of the pump.
const PUMP_BLOCK: usize = 64 << 10;

/// A request body. Built with `From` (`Vec<u8>`, `String`, `&'static [u8]`,
/// `&'static str`, `&'static [u8; N]`), none of which is copied, or with
/// [`RequestBody::from_reader`].
pub struct RequestBody(pub(crate) Kind);

pub(crate) enum Kind {
    Empty,
    Owned(Vec<u8>),
    Static(&'static [u8]),
    Reader {
        reader: Box<dyn Read + Send + 'static>,
        content_length: Option<u64>,
    },
}

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody(Kind::Empty)
    }

    /// A body streamed from `reader` as the HTTP/2 flow-control window
    /// opens, read on a helper thread a bounded amount ahead (so `reader`
    /// may block, and may even wait for the response). `content_length`,
    /// when given, is sent as content-length and must then be exact: a
    /// reader that ends early or gives more fails the request. An error
    /// from `reader`
    /// fails the request with [`crate::ErrorCode::BodySource`], its message
    /// included. The body is not replayed, so the request is retried only if
    /// no byte of it was read.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        content_length: Option<u64>,
    ) -> RequestBody {
        RequestBody(Kind::Reader {
            reader: Box::new(reader),
            content_length,
        })
    }

    /// The body's length, when known.
    pub fn len(&self) -> Option<u64> {
        match &self.0 {
            Kind::Empty => Some(0),
            Kind::Owned(v) => Some(v.len() as u64),
            Kind::Static(s) => Some(s.len() as u64),
            Kind::Reader { content_length, .. } => *content_length,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl Default for RequestBody {
    fn default() -> RequestBody {
        RequestBody::empty()
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> RequestBody {
        RequestBody(Kind::Owned(v))
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> RequestBody {
        RequestBody(Kind::Owned(s.into_bytes()))
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(s: &'static [u8]) -> RequestBody {
        RequestBody(Kind::Static(s))
    }
}

impl<const N: usize> From<&'static [u8; N]> for RequestBody {
    fn from(s: &'static [u8; N]) -> RequestBody {
        RequestBody(Kind::Static(&s[..]))
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> RequestBody {
        RequestBody(Kind::Static(s.as_bytes()))
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Empty => f.write_str("RequestBody(empty)"),
            Kind::Owned(v) => write!(f, "RequestBody({} bytes, owned)", v.len()),
            Kind::Static(s) => write!(f, "RequestBody({} bytes, static)", s.len()),
            Kind::Reader {
                content_length: Some(n),
                ..
            } => write!(f, "RequestBody(reader, {} bytes)", n),
            Kind::Reader { .. } => f.write_str("RequestBody(reader, length unknown)"),
        }
    }
}

struct FeedState {
    /// A WRITABLE event came since the pump's last write.
    writable: bool,
    /// The request completed: the pump stops.
    closed: bool,
    /// Why the upload failed (the reader, or a refused trailer).
    failed: Option<Error>,
}

/// What a pump thread and the drainer share about one streamed upload.
pub(crate) struct Feed {
    state: Mutex<FeedState>,
    wake: Condvar,
    trailers: Trailers,
}

impl Feed {
    pub(crate) fn new(trailers: Trailers) -> Arc<Feed> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                writable: false,
                closed: false,
                failed: None,
            }),
            wake: Condvar::new(),
            trailers,
        })
    }

    /// Drainer: the upload buffer has room again.
    pub(crate) fn writable(&self) {
        lock(&self.state).writable = true;
        self.wake.notify_one();
    }

    /// Drainer: the request completed. Returns why the reader failed it.
    pub(crate) fn close(&self) -> Option<Error> {
        let mut st = lock(&self.state);
        st.closed = true;
        self.wake.notify_one();
        st.failed.clone()
    }

    /// Starts the pump for request `id`. If no thread can be started the
    /// upload fails (and with it the request).
    pub(crate) fn start(
        self: &Arc<Feed>,
        reader: Box<dyn Read + Send + 'static>,
        content_length: Option<u64>,
        pool: Arc<Inner>,
        id: RequestId,
    ) {
        let feed = self.clone();
        let pump_pool = pool.clone();
        let spawned = std::thread::Builder::new()
            .name("h2pool-upload".into())
            .spawn(move || feed.pump(reader, content_length, &pump_pool, id));
        if let Err(e) = spawned {
            self.fail(format!("cannot start the upload thread: {}", e), &pool, id);
        }
    }

    /// Fails the upload: records why, then cancels the request, whose
    /// completion then reports `BodySource` with this message.
    fn fail(&self, why: String, pool: &Inner, id: RequestId) {
        lock(&self.state).failed = Some(Error::new(ErrorCode::BodySource, why));
        let _ = pool.cancel(id);
    }

    /// Writes all of `bytes`, sleeping while the upload buffer is full.
    /// False when the request is over (or the pool closing).
    fn write_all(&self, mut bytes: &[u8], pool: &Inner, id: RequestId) -> bool {
        while !bytes.is_empty() {
            {
                let mut st = lock(&self.state);
                if st.closed {
                    return false;
                }
                // Cleared before the write: a WRITABLE that follows a short
                // write sets it again, even if it comes before we sleep.
                st.writable = false;
            }
            let n = match pool.write_body(id, bytes) {
                Ok(n) => n.min(bytes.len()),
                Err(_) => return false,
            };
            bytes = &bytes[n..];
            if !bytes.is_empty() {
                let mut st = lock(&self.state);
                while !st.writable && !st.closed {
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        true
    }

    fn pump(
        &self,
        mut reader: Box<dyn Read + Send + 'static>,
        content_length: Option<u64>,
        pool: &Inner,
        id: RequestId,
    ) {
        let mut block = vec![0u8; PUMP_BLOCK];
        let mut total = 0u64;
        loop {
            if lock(&self.state).closed {
                return;
            }
            // A panicking reader fails the upload instead of killing the
            // pump silently (which would leave the request waiting).
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.read(&mut block)
            }));
            match got {
                Ok(Ok(0)) => {
                    match content_length {
                        Some(cl) if total < cl => self.fail(
                            format!(
                                "request body reader ended after {} of the {} bytes of its content length",
                                total, cl
                            ),
                            pool,
                            id,
                        ),
                        // Fails when the request is over already, or for a
                        // refused trailer (which cancelled the request).
                        _ => {
                            if let Err(e) = pool.end_body(id, &self.trailers) {
                                if e.code == ErrorCode::InvalidHeader {
                                    // Recorded before the cancellation
                                    // whose completion reads it.
                                    lock(&self.state).failed = Some(e);
                                    let _ = pool.cancel(id);
                                }
                            }
                        }
                    }
                    return;
                }
                Ok(Ok(n)) => {
                    let n = n.min(block.len()); // a lying reader is not UB
                    total += n as u64;
                    if let Some(cl) = content_length.filter(|&cl| total > cl) {
                        let why = format!(
                            "request body reader gave more than the {} bytes of its content length",
                            cl
                        );
                        self.fail(why, pool, id);
                        return;
                    }
                    if !self.write_all(&block[..n], pool, id) {
                        return;
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    self.fail(format!("request body reader: {}", e), pool, id);
                    return;
                }
                Err(_) => {
                    self.fail("request body reader panicked".into(), pool, id);
                    return;
                }
            }
        }
    }
}
