//! Request bodies: in memory (owned or `'static`, lent to libh2pool without
//! a copy) or streamed from a `Read`.
//!
//! A `Read` may block, and the pool asks for body bytes on its loop thread,
//! which must never block; so a helper thread per streamed upload ("pump")
//! reads ahead into a bounded pipe, and the loop thread only takes from the
//! pipe. When the pipe is empty the upload waits (`H2POOL_BODY_WAIT`) and
//! the pump resumes it once it has bytes again: memory is bounded by the
//! pipe, whatever the body's size, and the upload runs at the pace of the
//! flow-control window.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex};

use crate::{lock, Inner, RequestId};

/// Bytes the pump may read ahead of the flow-control window.
const PIPE_CAPACITY: usize = 256 << 10;
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

struct PipeState {
    buf: VecDeque<u8>,
    eof: bool,
    failed: Option<String>,
    /// The loop thread found the pipe empty and answered "wait".
    waiting: bool,
    /// The request completed: the pump stops.
    closed: bool,
}

/// The bounded pipe between a pump thread and the loop thread.
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
    space: Condvar,
}

/// What the loop thread gets from the pipe.
pub(crate) enum Fill {
    Bytes { n: usize, eof: bool },
    Wait,
    Abort,
}

impl Pipe {
    pub(crate) fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                buf: VecDeque::with_capacity(PIPE_CAPACITY),
                eof: false,
                failed: None,
                waiting: false,
                closed: false,
            }),
            space: Condvar::new(),
        })
    }

    /// Loop thread: copies up to `out.len()` bytes into `out`.
    pub(crate) fn fill(&self, out: &mut [u8]) -> Fill {
        let mut st = lock(&self.state);
        if st.failed.is_some() {
            return Fill::Abort;
        }
        let n = st.buf.len().min(out.len());
        if n > 0 {
            let (a, b) = st.buf.as_slices();
            let from_a = a.len().min(n);
            out[..from_a].copy_from_slice(&a[..from_a]);
            out[from_a..n].copy_from_slice(&b[..n - from_a]);
            st.buf.drain(..n);
            self.space.notify_one();
        }
        let eof = st.eof && st.buf.is_empty();
        if n == 0 && !eof {
            st.waiting = true;
            return Fill::Wait;
        }
        Fill::Bytes { n, eof }
    }

    /// Loop thread: the request completed.
    pub(crate) fn close(&self) -> Option<String> {
        let mut st = lock(&self.state);
        st.closed = true;
        st.buf = VecDeque::new();
        self.space.notify_one();
        st.failed.clone()
    }

    /// Starts the pump for request `id`. If no thread can be started the
    /// upload fails (and with it the request).
    pub(crate) fn start(
        self: &Arc<Pipe>,
        reader: Box<dyn Read + Send + 'static>,
        content_length: Option<u64>,
        pool: Arc<Inner>,
        id: RequestId,
    ) {
        let pipe = self.clone();
        let pump_pool = pool.clone();
        let spawned = std::thread::Builder::new()
            .name("h2pool-upload".into())
            .spawn(move || pipe.pump(reader, content_length, &pump_pool, id));
        if let Err(e) = spawned {
            self.push(
                Err(format!("cannot start the upload thread: {}", e)),
                Some((&pool, id)),
            );
        }
    }

    /// Records what the reader gave and resumes a waiting upload.
    fn push(&self, got: Result<&[u8], String>, pool_id: Option<(&Inner, RequestId)>) {
        let resume = {
            let mut st = lock(&self.state);
            match got {
                Ok([]) => st.eof = true,
                Ok(bytes) => st.buf.extend(bytes),
                Err(why) => st.failed = Some(why),
            }
            std::mem::replace(&mut st.waiting, false)
        };
        if resume {
            if let Some((pool, id)) = pool_id {
                // Fails only when the pool closes, which ends the request.
                let _ = pool.resume_upload(id);
            }
        }
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
            {
                let mut st = lock(&self.state);
                while !st.closed && st.buf.len() + PUMP_BLOCK > PIPE_CAPACITY {
                    st = self.space.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.closed {
                    return;
                }
            }
            // A panicking reader fails the upload instead of killing the
            // pump silently (which would leave the request waiting).
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.read(&mut block)
            }));
            match got {
                Ok(Ok(0)) => {
                    let got = match content_length {
                        Some(cl) if total < cl => Err(format!(
                            "request body reader ended after {} of the {} bytes of its content length",
                            total, cl
                        )),
                        _ => Ok(&[][..]),
                    };
                    self.push(got, Some((pool, id)));
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
                        self.push(Err(why), Some((pool, id)));
                        return;
                    }
                    self.push(Ok(&block[..n]), Some((pool, id)));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    self.push(Err(format!("request body reader: {}", e)), Some((pool, id)));
                    return;
                }
                Err(_) => {
                    self.push(Err("request body reader panicked".into()), Some((pool, id)));
                    return;
                }
            }
        }
    }
}
