//! Safe Rust bindings to libh2pool, an HTTP/2 client connection pool with a
//! C ABI.
//!
//! A [`Pool`] multiplexes requests as streams over a few pooled HTTP/2
//! connections per origin, on its own event-loop thread. A request is sent
//! in one of these forms:
//!
//! - [`Pool::send`] blocks until the response's status and headers have
//!   arrived and returns a [`Response`] whose body streams: it implements
//!   `std::io::Read`, with backpressure (a bounded buffer; the download
//!   pauses while the reader lags), so a body of any size is read in
//!   bounded memory;
//! - [`Pool::send_async`] is a [`std::future::Future`] of the same
//!   [`Response`], for any executor, whose body then offers
//!   [`Response::poll_chunk`] and [`Response::poll_read`]; dropping the
//!   future before it resolves cancels the request;
//! - [`Pool::send_with`] calls a closure on the pool's event thread with
//!   the complete (buffered) response.
//!
//! Request bodies are owned or `'static` bytes (never copied whole: beyond
//! 64 KiB they are written into libh2pool's bounded upload buffer as it
//! drains), or streamed from any `Read` as the flow-control window opens
//! ([`RequestBody::from_reader`]).
//!
//! Every request goes through libh2pool's completion queue: no Rust code
//! runs on the pool's loop thread. One thread per pool ("h2pool-events")
//! takes the queue's events in batches and runs what they call for:
//! completion closures, wakers, `send_streaming`'s `on_data`.
//!
//! ```no_run
//! use std::io::Read;
//! use std::time::Duration;
//!
//! let pool = h2pool::Pool::new(
//!     h2pool::Config::new()
//!         .max_connections_per_endpoint(4)
//!         .request_timeout(Duration::from_secs(5)),
//! )?;
//! let mut resp = pool.send(h2pool::Request::get("http://127.0.0.1:8080/?size=16"))?;
//! let mut body = Vec::new();
//! resp.read_to_end(&mut body)?;
//! println!("{} {} bytes", resp.status(), body.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything libh2pool lends is copied out before any user code sees it.
//! Every callback into user code runs under `catch_unwind`: a panic never
//! unwinds into C (see [`Pool::caught_panics`]).

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::thread::{JoinHandle, ThreadId};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

pub use h2pool_sys as sys;

mod body;
mod events;
mod upload;

pub use body::ResponseBody;
pub use upload::RequestBody;

use body::Exchange;
use events::{Handler, QueuePtr, Sink, Upload};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $raw:path,)*) => {
        /// libh2pool's stable error codes (`H2POOL_ERR_*`).
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this version of the binding does not know.
            Other(i32),
        }

        impl ErrorCode {
            /// The code for a raw (negative) `H2POOL_ERR_*` value.
            pub fn from_raw(raw: i32) -> ErrorCode {
                match raw {
                    $(x if x == $raw => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other),
                }
            }

            /// The raw `H2POOL_ERR_*` value.
            pub fn raw(self) -> i32 {
                match self {
                    $(ErrorCode::$variant => $raw,)*
                    ErrorCode::Other(raw) => raw,
                }
            }
        }
    };
}

error_codes! {
    /// An argument was unusable.
    InvalidArgument = sys::H2POOL_ERR_INVALID_ARGUMENT,
    /// Memory allocation failed.
    NoMem = sys::H2POOL_ERR_NOMEM,
    /// The URL is not an absolute http:// or https:// URL with a host.
    InvalidUrl = sys::H2POOL_ERR_INVALID_URL,
    /// The URL's scheme is neither http nor https.
    UnsupportedScheme = sys::H2POOL_ERR_UNSUPPORTED_SCHEME,
    /// A header is invalid or not allowed in HTTP/2.
    InvalidHeader = sys::H2POOL_ERR_INVALID_HEADER,
    /// The method is not an HTTP token.
    InvalidMethod = sys::H2POOL_ERR_INVALID_METHOD,
    /// Too many requests are waiting for a stream.
    QueueFull = sys::H2POOL_ERR_QUEUE_FULL,
    /// The pool is shutting down or was dropped.
    PoolClosed = sys::H2POOL_ERR_POOL_CLOSED,
    /// The host name could not be resolved.
    Resolve = sys::H2POOL_ERR_RESOLVE,
    /// No address of the host accepted the TCP connection.
    Connect = sys::H2POOL_ERR_CONNECT,
    /// The TCP connection timed out.
    ConnectTimeout = sys::H2POOL_ERR_CONNECT_TIMEOUT,
    /// The server sent no SETTINGS in time.
    SettingsTimeout = sys::H2POOL_ERR_SETTINGS_TIMEOUT,
    /// The request did not complete within its timeout.
    Timeout = sys::H2POOL_ERR_TIMEOUT,
    /// The request was cancelled.
    Cancelled = sys::H2POOL_ERR_CANCELLED,
    /// The connection closed or failed during the request.
    ConnectionLost = sys::H2POOL_ERR_CONNECTION_LOST,
    /// GOAWAY with an error, or refused until the retry limit.
    Goaway = sys::H2POOL_ERR_GOAWAY,
    /// The server reset the stream.
    StreamReset = sys::H2POOL_ERR_STREAM_RESET,
    /// The server refused the stream beyond the retry limit.
    RefusedStream = sys::H2POOL_ERR_REFUSED_STREAM,
    /// The server violated HTTP/2.
    Protocol = sys::H2POOL_ERR_PROTOCOL,
    /// Not supported by this build or version.
    NotSupported = sys::H2POOL_ERR_NOT_SUPPORTED,
    /// The response exceeded a configured limit.
    ResponseTooLarge = sys::H2POOL_ERR_RESPONSE_TOO_LARGE,
    /// Called from a thread where it is not allowed (for example a blocking
    /// send from a completion callback).
    WrongThread = sys::H2POOL_ERR_WRONG_THREAD,
    /// An operating-system call failed.
    System = sys::H2POOL_ERR_SYSTEM,
    /// An unexpected internal failure.
    Internal = sys::H2POOL_ERR_INTERNAL,
    /// A CA, certificate or key could not be loaded.
    TlsConfig = sys::H2POOL_ERR_TLS_CONFIG,
    /// The TLS handshake failed.
    TlsHandshake = sys::H2POOL_ERR_TLS_HANDSHAKE,
    /// The server's certificate failed verification.
    TlsVerify = sys::H2POOL_ERR_TLS_VERIFY,
    /// The server did not select "h2" in ALPN.
    TlsAlpn = sys::H2POOL_ERR_TLS_ALPN,
    /// The TLS handshake timed out.
    TlsHandshakeTimeout = sys::H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT,
    /// The response headers did not arrive in time.
    ResponseHeadersTimeout = sys::H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT,
    /// Decoding the content-encoding exceeded a limit.
    DecompressionBomb = sys::H2POOL_ERR_DECOMPRESSION_BOMB,
    /// The content-encoding could not be decoded.
    Decode = sys::H2POOL_ERR_DECODE,
    /// A streaming callback asked to abort.
    Aborted = sys::H2POOL_ERR_ABORTED,
    /// The request body source failed.
    BodySource = sys::H2POOL_ERR_BODY_SOURCE,
    /// The proxy could not be reached.
    ProxyConnect = sys::H2POOL_ERR_PROXY_CONNECT,
    /// The proxy wants other credentials (407, SOCKS5 auth rejected).
    ProxyAuth = sys::H2POOL_ERR_PROXY_AUTH,
    /// The proxy would not open the tunnel (non-2xx, SOCKS5 failure reply).
    ProxyRefused = sys::H2POOL_ERR_PROXY_REFUSED,
    /// The proxy closed the connection while the tunnel was set up.
    ProxyClosed = sys::H2POOL_ERR_PROXY_CLOSED,
    /// The proxy's answer was not HTTP/1.1 or SOCKS5.
    ProxyProtocol = sys::H2POOL_ERR_PROXY_PROTOCOL,
    /// The server does not allow extended CONNECT (RFC 8441), or speaks
    /// HTTP/1.1.
    ConnectProtocolUnsupported = sys::H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED,
}

impl ErrorCode {
    /// libh2pool's static description (`h2pool_strerror`).
    pub fn description(self) -> &'static str {
        // Static strings, never NULL.
        let s = unsafe { CStr::from_ptr(sys::h2pool_strerror(self.raw())) };
        s.to_str().unwrap_or("unknown error")
    }

    /// Whether the code is one of the timeouts.
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            ErrorCode::Timeout
                | ErrorCode::ConnectTimeout
                | ErrorCode::SettingsTimeout
                | ErrorCode::TlsHandshakeTimeout
                | ErrorCode::ResponseHeadersTimeout
        )
    }

    /// Whether the code is one of the TLS errors.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            ErrorCode::TlsConfig
                | ErrorCode::TlsHandshake
                | ErrorCode::TlsVerify
                | ErrorCode::TlsAlpn
                | ErrorCode::TlsHandshakeTimeout
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A request libh2pool refused, or one that completed with an error.
///
/// Its `Debug` shows sizes, never body bytes, so that `fn main() ->
/// Result<(), Box<dyn std::error::Error>>` prints a line, not a body.
#[derive(Clone)]
pub struct Error {
    pub(crate) code: ErrorCode,
    http2_code: Option<u32>,
    stream_id: Option<u32>,
    goaway_last_stream_id: Option<u32>,
    pub(crate) message: String,
    partial: Option<Box<(ResponseHead, Vec<u8>)>>,
    timings: Option<Box<Timings>>,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            http2_code: None,
            stream_id: None,
            goaway_last_stream_id: None,
            message: message.into(),
            partial: None,
            timings: None,
        }
    }

    /// The phases the request reached before it failed (`None` for an
    /// error that did not come from a request's completion).
    pub fn timings(&self) -> Option<&Timings> {
        self.timings.as_deref()
    }

    fn from_raw_code(rc: c_int, message: impl Into<String>) -> Error {
        Error::new(ErrorCode::from_raw(rc), message)
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP/2 error code (RFC 9113 section 7) of the RST_STREAM or
    /// GOAWAY behind the error, if any.
    pub fn http2_code(&self) -> Option<u32> {
        self.http2_code
    }

    /// The HTTP/2 stream the request was on, if it got one.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// The last-stream-id of the GOAWAY that ended the connection, if any.
    pub fn goaway_last_stream_id(&self) -> Option<u32> {
        self.goaway_last_stream_id
    }

    /// The details (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The head (status, headers) that had arrived when a buffered request
    /// ([`Pool::send_with`]) failed after its response headers. Streamed
    /// responses already handed their head to the caller.
    pub fn partial_response(&self) -> Option<&ResponseHead> {
        self.partial.as_ref().map(|p| &p.0)
    }

    /// The part of a buffered body that had arrived (empty otherwise).
    pub fn partial_body(&self) -> &[u8] {
        self.partial.as_ref().map_or(&[][..], |p| p.1.as_slice())
    }

    /// Whether the error is a timeout.
    pub fn is_timeout(&self) -> bool {
        self.code.is_timeout()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code).field("message", &self.message);
        if let Some(c) = self.http2_code {
            d.field("http2_code", &c);
        }
        if let Some(s) = self.stream_id {
            d.field("stream_id", &s);
        }
        if let Some(s) = self.goaway_last_stream_id {
            d.field("goaway_last_stream_id", &s);
        }
        if let Some(p) = &self.partial {
            d.field("partial_status", &p.0.status)
                .field("partial_header_fields", &p.0.headers.len())
                .field("partial_body_bytes", &p.1.len());
        }
        d.finish()
    }
}

/// For `Read` implementations: the kind follows the code
/// (timeouts are `TimedOut`), and `get_ref()` downcasts to the [`Error`].
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match e.code {
            c if c.is_timeout() => ErrorKind::TimedOut,
                        ErrorCode::ConnectionLost | ErrorCode::StreamReset => ErrorKind::ConnectionReset,
            ErrorCode::WrongThread => ErrorKind::WouldBlock,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let description = self.code.description();
        if self.message.is_empty() || self.message == description {
            write!(f, "{}", description)
        } else {
            write!(f, "{}: {}", description, self.message)
        }
    }
}

impl std::error::Error for Error {}

// ---------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------

/// Header or trailer fields in the order received (names lower-case).
pub(crate) type Fields = Vec<(String, Vec<u8>)>;

/// An HTTP request, built with chained methods:
///
/// ```
/// let req = h2pool::Request::post("http://127.0.0.1:8080/echo", "hello")
///     .header("content-type", "text/plain")
///     .timeout(std::time::Duration::from_secs(2));
/// ```
///
/// URLs and methods are anything `Into<String>` (`&str`, `String`,
/// `&String`, ...). A body is anything `Into<RequestBody>`: an owned
/// `Vec<u8>` or `String`, or a `&'static` byte string, none of them copied,
/// or a [`RequestBody::from_reader`] stream.
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: RequestBody,
    timeout: Option<Duration>,
    auto_decompress: Option<bool>,
    priority: Option<(u8, bool)>,
    read_buffer: Option<usize>,
    upload_buffer: Option<usize>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Request {
    /// A request with any method (an HTTP token such as "GET").
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: RequestBody::empty(),
            timeout: None,
            auto_decompress: None,
            priority: None,
            read_buffer: None,
            upload_buffer: None,
            trailers: Vec::new(),
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// A POST request with a body.
    pub fn post(url: impl Into<String>, body: impl Into<RequestBody>) -> Request {
        Request::new("POST", url).body(body)
    }

    /// A PUT request with a body.
    pub fn put(url: impl Into<String>, body: impl Into<RequestBody>) -> Request {
        Request::new("PUT", url).body(body)
    }

    /// Adds a header field (repeat it for several values). Names are sent
    /// lower-cased; connection-specific headers are refused by HTTP/2
    /// ([`ErrorCode::InvalidHeader`]). A "host" header replaces the URL's
    /// authority.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body. Content-length is sent when its length is known.
    pub fn body(mut self, body: impl Into<RequestBody>) -> Request {
        self.body = body.into();
        self
    }

    /// Streams the body from `reader` (see [`RequestBody::from_reader`]).
    pub fn body_reader<R: std::io::Read + Send + 'static>(
        self,
        reader: R,
        content_length: Option<u64>,
    ) -> Request {
        self.body(RequestBody::from_reader(reader, content_length))
    }

    /// The total time allowed for this request, queueing included,
    /// overriding the pool's request timeout. `Duration::ZERO`: no limit.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Automatic decoding, on by default: unless the request sets
    /// accept-encoding, [`supported_encodings`] is sent as its value ("gzip,
    /// deflate, br, zstd" with br and zstd built in), and bodies in those
    /// codings are decoded.
    pub fn auto_decompress(mut self, enable: bool) -> Request {
        self.auto_decompress = Some(enable);
        self
    }

    /// The RFC 9218 priority: `urgency` 0 (most urgent) to 7, and whether
    /// the response is useful in parts (`incremental`). Default 3, not
    /// incremental. Sent as the priority header (unless the request has
    /// one) and used to order the pool's queue when streams are scarce;
    /// the server decides whether it answers more urgent requests first.
    /// An urgency above 7 makes the request fail with
    /// [`ErrorCode::InvalidArgument`] when sent.
    pub fn priority(mut self, urgency: u8, incremental: bool) -> Request {
        self.priority = Some((urgency, incremental));
        self
    }

    /// How many response body bytes may wait unread (for [`Pool::send`]
    /// and [`Pool::send_async`]) before the download pauses until the
    /// reader catches up; at least 1, default 1 MiB. Memory per slow
    /// response is about this plus the stream's flow-control window
    /// ([`Config::flow_control_windows`]).
    pub fn read_buffer(mut self, bytes: usize) -> Request {
        self.read_buffer = Some(bytes);
        self
    }

    /// How many request body bytes libh2pool holds ahead of the
    /// flow-control window, for a body streamed from a reader or an
    /// in-memory body larger than 64 KiB (those are written into this
    /// buffer as it drains, never copied whole); 1 byte to 1 GiB, default
    /// 256 KiB.
    pub fn upload_buffer(mut self, bytes: usize) -> Request {
        self.upload_buffer = Some(bytes);
        self
    }

    /// Adds a trailer field, sent after the body (repeat it for several
    /// values). Checked as headers are, and "host" and "content-length"
    /// are refused: a bad trailer fails the request with
    /// [`ErrorCode::InvalidHeader`] once the body has been written.
    pub fn trailer(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Request {
        self.trailers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// The trailer fields added so far.
    pub fn trailers(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.trailers
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The header fields added so far.
    pub fn headers(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.headers
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_fields", &self.headers.len())
            .field("body", &self.body)
            .field("trailer_fields", &self.trailers.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn find_first<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn find_all<'a>(fields: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The HTTP version a response came over: HTTP/2, or HTTP/1.1 (or 1.0)
/// where the server speaks nothing newer (see the C API's
/// `h2pool_config_set_http_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// A version this binding does not know (a newer library).
    Unknown,
}

impl Protocol {
    fn from_raw(p: c_int) -> Protocol {
        match p {
            sys::H2POOL_PROTOCOL_HTTP_1_0 => Protocol::Http10,
            sys::H2POOL_PROTOCOL_HTTP_1_1 => Protocol::Http11,
            sys::H2POOL_PROTOCOL_HTTP_2 => Protocol::Http2,
            _ => Protocol::Unknown,
        }
    }

    /// As in a status line: "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "unknown".
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
            Protocol::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request spent its time, as libcurl's `CURLINFO_*_TIME_T`
/// report it (see `h2pool_timing` in h2pool.h): every duration counts from
/// the request's submission and they are cumulative (`namelookup <=
/// connect <= appconnect <= pretransfer <= starttransfer <= total`).
/// `None`: the phase was never reached (`appconnect` on a cleartext
/// connection). On a reused connection the connection phases are zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Until the request was placed on a connection.
    pub queued: Option<Duration>,
    /// Until the host name was resolved.
    pub namelookup: Option<Duration>,
    /// Until the TCP connection was up.
    pub connect: Option<Duration>,
    /// Until the TLS handshake finished.
    pub appconnect: Option<Duration>,
    /// Until the request's headers were handed to the socket.
    pub pretransfer: Option<Duration>,
    /// Until the first byte of the response arrived.
    pub starttransfer: Option<Duration>,
    /// Until the request completed (for a streamed response's head: until
    /// the head was delivered).
    pub total: Option<Duration>,
    /// The connection was reused rather than set up for this request.
    pub reused: bool,
    /// New connections the request waited for (curl's `num_connects`).
    pub num_connects: u32,
    /// The peer the connection reached, also for a reused one.
    pub remote_addr: Option<std::net::SocketAddr>,
}

impl Timings {
    unsafe fn read(
        timing: impl Fn(sys::h2pool_timing) -> i64,
        reused: c_int,
        connects: c_int,
        ip: *const c_char,
        port: c_int,
    ) -> Timings {
        let at = |w| u64::try_from(timing(w)).ok().map(Duration::from_micros);
        let ip = if ip.is_null() { "" } else { CStr::from_ptr(ip).to_str().unwrap_or("") };
        let remote_addr = ip
            .parse::<std::net::IpAddr>()
            .ok()
            .zip(u16::try_from(port).ok())
            .map(|(ip, port)| std::net::SocketAddr::new(ip, port));
        Timings {
            queued: at(sys::H2POOL_TIMING_QUEUED),
            namelookup: at(sys::H2POOL_TIMING_NAMELOOKUP),
            connect: at(sys::H2POOL_TIMING_CONNECT),
            appconnect: at(sys::H2POOL_TIMING_APPCONNECT),
            pretransfer: at(sys::H2POOL_TIMING_PRETRANSFER),
            starttransfer: at(sys::H2POOL_TIMING_STARTTRANSFER),
            total: at(sys::H2POOL_TIMING_TOTAL),
            reused: reused == 1,
            num_connects: u32::try_from(connects).unwrap_or(0),
            remote_addr,
        }
    }

    pub(crate) unsafe fn from_response(resp: *const sys::h2pool_response) -> Timings {
        Timings::read(
            |w| sys::h2pool_response_timing_us(resp, w),
            sys::h2pool_response_connection_reused(resp),
            sys::h2pool_response_num_connects(resp),
            sys::h2pool_response_remote_ip(resp),
            sys::h2pool_response_remote_port(resp),
        )
    }

    pub(crate) unsafe fn from_error(err: *const sys::h2pool_error) -> Timings {
        Timings::read(
            |w| sys::h2pool_error_timing_us(err, w),
            sys::h2pool_error_connection_reused(err),
            sys::h2pool_error_num_connects(err),
            sys::h2pool_error_remote_ip(err),
            sys::h2pool_error_remote_port(err),
        )
    }
}

/// A response's status line and header fields, with where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHead {
    status: u16,
    protocol: Protocol,
    headers: Fields,
    content_encoding: Option<String>,
    stream_id: u32,
    connection_id: u64,
    request_id: u64,
    timings: Timings,
}

impl ResponseHead {
    /// Where the request spent its time: final for a buffered response;
    /// for a streamed one, as of the moment its head arrived.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The HTTP version the response came over.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The header fields in the order received (names lower-case).
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_first(&self.headers, name)
    }

    /// The first field named `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every field named `name` (ASCII case-insensitive), in the order
    /// received: a repeated header gives one item per field line.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        find_all(&self.headers, name)
    }

    /// The content-encoding the server sent when h2pool decoded the body
    /// (for example "gzip"); `None` when the body is as received.
    pub fn content_encoding(&self) -> Option<&str> {
        self.content_encoding.as_deref()
    }

    /// The HTTP/2 stream the response arrived on.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The pooled connection that carried it: equal ids mean reuse.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// The request's id.
    pub fn request_id(&self) -> RequestId {
        RequestId(self.request_id)
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_bytes: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        f.debug_struct("ResponseHead")
            .field("status", &self.status)
            .field("protocol", &self.protocol)
            .field("header_fields", &self.headers.len())
            .field("header_bytes", &header_bytes)
            .field("content_encoding", &self.content_encoding)
            .field("stream_id", &self.stream_id)
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

/// A response: its head (status and headers) as soon as they arrive, and
/// its body as a stream. Any status (4xx and 5xx included) is a response,
/// not an error, and its body is readable like any other.
///
/// `Response` implements `std::io::Read` (blocking) and offers
/// [`poll_read`](Response::poll_read) and
/// [`poll_chunk`](Response::poll_chunk) for executors; see
/// [`ResponseBody`]. Dropping it before the end of the body cancels the
/// request.
pub struct Response {
    head: ResponseHead,
    body: ResponseBody,
}

impl Response {
    /// A response whose body is complete (buffered).
    pub(crate) fn finished(head: ResponseHead, body: Vec<u8>, trailers: Fields) -> Response {
        let id = RequestId(head.request_id);
        let mut body = ResponseBody::new(Exchange::finished(body, trailers.clone()), None, Some(id));
        body.set_trailers(trailers);
        Response { head, body }
    }

    /// The status and header fields.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The header fields in the order received (names lower-case).
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.head.headers
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The first field named `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// Every field named `name`, in the order received.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.head.headers_all(name)
    }

    /// The trailer fields: for a buffered response ([`Pool::send_with`],
    /// [`Pool::send_streaming`]) at once, otherwise once the body has been
    /// read to its end.
    pub fn trailers(&self) -> Option<&[(String, Vec<u8>)]> {
        self.body.trailers()
    }

    /// The first trailer named `name`, once the body has been read.
    pub fn trailer(&self, name: &str) -> Option<&[u8]> {
        self.body
            .trailers()
            .and_then(|t| find_first(t, name))
    }

    /// The content-encoding h2pool decoded, if any.
    pub fn content_encoding(&self) -> Option<&str> {
        self.head.content_encoding()
    }

    /// The HTTP version the response came over.
    pub fn protocol(&self) -> Protocol {
        self.head.protocol
    }

    /// The HTTP/2 stream the response arrived on (0 over HTTP/1.1).
    pub fn stream_id(&self) -> u32 {
        self.head.stream_id
    }

    /// The pooled connection that carried it: equal ids mean reuse.
    pub fn connection_id(&self) -> u64 {
        self.head.connection_id
    }

    /// The request's id.
    pub fn request_id(&self) -> RequestId {
        self.head.request_id()
    }

    /// Where the request spent its time (see [`ResponseHead::timings`]).
    pub fn timings(&self) -> &Timings {
        self.head.timings()
    }

    /// The body.
    pub fn body_mut(&mut self) -> &mut ResponseBody {
        &mut self.body
    }

    /// The body, for reading.
    pub fn body(&self) -> &ResponseBody {
        &self.body
    }

    /// The body alone (the head is dropped).
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// Splits into head and body.
    pub fn into_parts(self) -> (ResponseHead, ResponseBody) {
        (self.head, self.body)
    }

    /// Reads the rest of the body into memory (blocking).
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        self.body.into_bytes()
    }

    /// The next chunk of the body (blocking); `None` at the end.
    pub fn chunk(&mut self) -> Option<Result<Vec<u8>, Error>> {
        self.body.chunk()
    }

    /// See [`ResponseBody::poll_chunk`].
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, Error>>> {
        self.body.poll_chunk(cx)
    }

    /// See [`ResponseBody::poll_read`].
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        self.body.poll_read(cx, buf)
    }
}

impl std::io::Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("head", &self.head)
            .field("body", &self.body)
            .finish()
    }
}

/// A request's id, for [`Pool::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The raw id (never 0).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Copies `len` borrowed bytes at `p` (which may be NULL when `len` is 0).
/// Safety: `p` points to `len` readable bytes (or `len` is 0).
unsafe fn copy_bytes(p: *const c_char, len: usize) -> Vec<u8> {
    if p.is_null() || len == 0 {
        Vec::new()
    } else {
        std::slice::from_raw_parts(p as *const u8, len).to_vec()
    }
}

/// Copies borrowed fields out of libh2pool. `resp` is a response borrowed
/// for the current callback.
unsafe fn fields_from_raw(
    resp: *const sys::h2pool_response,
    count: usize,
    at: unsafe extern "C" fn(*const sys::h2pool_response, usize, *mut sys::h2pool_header) -> c_int,
) -> Fields {
    let mut fields = Vec::with_capacity(count.min(4096));
    for i in 0..count {
        let mut h = sys::h2pool_header {
            name: ptr::null(),
            name_len: 0,
            value: ptr::null(),
            value_len: 0,
        };
        if at(resp, i, &mut h) != 0 {
            continue;
        }
        let name = String::from_utf8_lossy(&copy_bytes(h.name, h.name_len)).into_owned();
        fields.push((name, copy_bytes(h.value, h.value_len)));
    }
    fields
}

/// Copies a borrowed response's head.
pub(crate) unsafe fn head_from_raw(resp: *const sys::h2pool_response) -> ResponseHead {
    let headers = fields_from_raw(
        resp,
        sys::h2pool_response_header_count(resp),
        sys::h2pool_response_header_at,
    );
    let encoding = sys::h2pool_response_content_encoding(resp);
    let content_encoding = if encoding.is_null() {
        None
    } else {
        Some(CStr::from_ptr(encoding).to_string_lossy().into_owned())
    };
    ResponseHead {
        status: u16::try_from(sys::h2pool_response_status(resp)).unwrap_or(0),
        protocol: Protocol::from_raw(sys::h2pool_response_protocol(resp)),
        headers,
        content_encoding,
        stream_id: u32::try_from(sys::h2pool_response_stream_id(resp)).unwrap_or(0),
        connection_id: sys::h2pool_response_connection_id(resp),
        request_id: sys::h2pool_response_request_id(resp),
        timings: Timings::from_response(resp),
    }
}

/// Copies a borrowed response: head, body, trailers.
pub(crate) unsafe fn response_parts_from_raw(
    resp: *const sys::h2pool_response,
) -> (ResponseHead, Vec<u8>, Fields) {
    let head = head_from_raw(resp);
    let trailers = fields_from_raw(
        resp,
        sys::h2pool_response_trailer_count(resp),
        sys::h2pool_response_trailer_at,
    );
    let mut len = 0usize;
    let body = sys::h2pool_response_body(resp, &mut len);
    (head, copy_bytes(body as *const c_char, len), trailers)
}

/// Copies a borrowed error (and partial response) out of libh2pool.
pub(crate) unsafe fn error_from_raw(
    err: *const sys::h2pool_error,
    resp: *const sys::h2pool_response,
) -> Error {
    let msg = sys::h2pool_error_message(err);
    let message = if msg.is_null() {
        String::new()
    } else {
        CStr::from_ptr(msg).to_string_lossy().into_owned()
    };
    let http2 = sys::h2pool_error_http2_code(err);
    let stream = sys::h2pool_error_stream_id(err);
    let goaway = sys::h2pool_error_goaway_last_stream_id(err);
    Error {
        code: ErrorCode::from_raw(sys::h2pool_error_code(err)),
        http2_code: u32::try_from(http2).ok(),
        stream_id: u32::try_from(stream).ok().filter(|&s| s > 0),
        goaway_last_stream_id: u32::try_from(goaway).ok(),
        message,
        timings: Some(Box::new(Timings::from_error(err))),
        partial: if resp.is_null() {
            None
        } else {
            let (head, body, _) = response_parts_from_raw(resp);
            Some(Box::new((head, body)))
        },
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl LogLevel {
    fn from_raw(level: c_int) -> LogLevel {
        match level {
            sys::H2POOL_LOG_ERROR => LogLevel::Error,
            sys::H2POOL_LOG_WARN => LogLevel::Warn,
            sys::H2POOL_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

/// Lowest TLS version to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

type LogFn = dyn Fn(LogLevel, &str) + Send + Sync + 'static;

/// The HTTP version a pool speaks ([`Config::http_version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// Over TLS, ALPN offers h2 and http/1.1 and the server chooses;
    /// `http://` is HTTP/2 with prior knowledge.
    Negotiate,
    /// HTTP/1.1 only, over TLS and cleartext alike.
    Http11,
    /// HTTP/2 only: a TLS server that does not select h2 is an error.
    Http2,
}

/// Pool configuration. Options not set keep libh2pool's defaults (see
/// include/h2pool.h).
#[derive(Clone, Default)]
pub struct Config {
    max_connections_per_endpoint: Option<u32>,
    loop_threads: Option<u32>,
    max_concurrent_streams: Option<u32>,
    max_pending_requests: Option<u32>,
    connect_timeout: Option<Duration>,
    settings_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    max_response_body_bytes: Option<u64>,
    flow_control_windows: Option<(u32, u32)>,
    adaptive_window: Option<bool>,
    response_header_timeout: Option<Duration>,
    ping: Option<(Duration, Duration)>,
    max_requests_per_connection: Option<u32>,
    max_retries: Option<u32>,
    retry_idempotent: Option<bool>,
    max_response_headers: Option<(u32, u32)>,
    decompression_limits: Option<(u64, u32)>,
    tls_ca_file: Option<CString>,
    tls_ca_dir: Option<CString>,
    tls_client_cert: Option<(CString, CString)>,
    tls_min_version: Option<TlsVersion>,
    tls_insecure_skip_verify: Option<bool>,
    tls_handshake_timeout: Option<Duration>,
    http_version: Option<HttpVersion>,
    proxy: Option<CString>,
    proxy_credentials: Option<(CString, CString)>,
    noproxy: Option<CString>,
    proxy_from_environment: Option<bool>,
    log: Option<(LogLevel, Arc<LogFn>)>,
    dns_servers: Option<CString>,
    resolve: Vec<CString>,
    connect_to: Vec<CString>,
    unix_socket: Option<(CString, bool)>,
    local_address: Option<CString>,
    local_port_range: Option<(u32, u32)>,
    interface: Option<CString>,
    tcp_keepalive: Option<(u32, u32, u32)>,
    happy_eyeballs_delay: Option<Duration>,
    invalid: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "max_connections_per_endpoint",
                &self.max_connections_per_endpoint,
            )
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("request_timeout", &self.request_timeout)
            .field("log", &self.log.as_ref().map(|(level, _)| *level))
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn path_cstring(path: &Path) -> Result<CString, String> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{:?} contains NUL", path))
}

#[cfg(not(unix))]
fn path_cstring(path: &Path) -> Result<CString, String> {
    let s = path
        .to_str()
        .ok_or_else(|| format!("{:?} is not UTF-8", path))?;
    CString::new(s).map_err(|_| format!("{:?} contains NUL", path))
}

/// Milliseconds for a C setter, rounded up.
fn millis(d: Duration, what: &str) -> Result<u32, Error> {
    let mut ms = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        ms += 1;
    }
    u32::try_from(ms).map_err(|_| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("{} of {:?} is out of range", what, d),
        )
    })
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Config {
            self.$name = Some(value);
            self
        }
    };
}

impl Config {
    /// A configuration with every default.
    pub fn new() -> Config {
        Config::default()
    }

    setter!(
        /// Connections per endpoint (scheme, host, port). Default 10.
        max_connections_per_endpoint: u32);
    setter!(
        /// Local cap on streams per connection. Default: the server's limit.
        max_concurrent_streams: u32);
    setter!(
        /// Event-loop threads, 1 (the default) to 64. Requests spread over
        /// the loops, each with its own connections (the per-endpoint limit
        /// is shared out between them), and callbacks of different requests
        /// may then run at the same time on different threads. See
        /// h2pool_config_set_loop_threads() in include/h2pool.h.
        loop_threads: u32);
    setter!(
        /// Requests waiting for a stream before [`ErrorCode::QueueFull`].
        max_pending_requests: u32);
    setter!(
        /// TCP connect timeout per address. Default 10 s.
        connect_timeout: Duration);
    setter!(
        /// Wait for the server's first SETTINGS. Default 10 s.
        settings_timeout: Duration);
    setter!(
        /// Default total time per request, queueing included. Default: none.
        request_timeout: Duration);
    setter!(
        /// Close connections idle this long; `Duration::ZERO` never. Default 60 s.
        idle_timeout: Duration);
    setter!(
        /// Drain connections older than this; `Duration::ZERO` no limit.
        max_lifetime: Duration);
    setter!(
        /// Largest response body kept. Default 1 GiB.
        max_response_body_bytes: u64);
    setter!(
        /// Time from sending a request to its response headers. Default: none.
        response_header_timeout: Duration);
    setter!(
        /// Streams a connection carries before it is replaced. Default: no limit.
        max_requests_per_connection: u32);
    setter!(
        /// Retries of requests the server provably did not process. Default 3.
        max_retries: u32);
    setter!(
        /// Also retry idempotent requests after a lost connection.
        retry_idempotent: bool);
    setter!(
        /// Lowest TLS version accepted. Default TLS 1.2.
        tls_min_version: TlsVersion);
    setter!(
        /// Skip server certificate verification. Tests only.
        tls_insecure_skip_verify: bool);
    setter!(
        /// TLS handshake timeout. Default 10 s.
        tls_handshake_timeout: Duration);
    setter!(
        /// Which HTTP version the pool speaks. Default
        /// [`HttpVersion::Negotiate`].
        http_version: HttpVersion);

    /// Health-check PINGs after `interval` without reads, failing the
    /// connection after `timeout` without ACK. `interval` zero disables.
    pub fn ping(mut self, interval: Duration, timeout: Duration) -> Config {
        self.ping = Some((interval, timeout));
        self
    }

    /// HTTP/2 flow-control windows advertised for response data, per
    /// stream and per connection: how much the server may send before the
    /// pool has taken it. Larger windows keep bulk downloads from stalling
    /// on round trips; smaller ones bound what a slow consumer can be sent.
    /// Defaults 8 MiB and 64 MiB. `stream_bytes` from 1, `connection_bytes`
    /// from 65535, both at most 2^31 - 1; [`Pool::new`] fails with
    /// [`ErrorCode::InvalidArgument`] otherwise.
    pub fn flow_control_windows(mut self, stream_bytes: u32, connection_bytes: u32) -> Config {
        self.flow_control_windows = Some((stream_bytes, connection_bytes));
        self
    }

    /// Adaptive flow-control windows (on by default): windows start small
    /// and grow, up to [`Config::flow_control_windows`], to the
    /// bandwidth-delay product the pool measures with PINGs. `false`
    /// advertises the configured windows from the start.
    pub fn adaptive_window(mut self, enabled: bool) -> Config {
        self.adaptive_window = Some(enabled);
        self
    }

    /// Limits on a response's header block: bytes and fields.
    pub fn max_response_headers(mut self, max_bytes: u32, max_fields: u32) -> Config {
        self.max_response_headers = Some((max_bytes, max_fields));
        self
    }

    /// Limits on automatic decompression: decoded bytes, and decoded bytes
    /// per received byte once past 1 MiB. Defaults 100 MiB and 100.
    pub fn decompression_limits(mut self, max_bytes: u64, max_ratio: u32) -> Config {
        self.decompression_limits = Some((max_bytes, max_ratio));
        self
    }

    fn path_option(&mut self, path: &Path) -> Option<CString> {
        match path_cstring(path) {
            Ok(s) => Some(s),
            Err(e) => {
                self.invalid = Some(e);
                None
            }
        }
    }

    fn str_option(&mut self, s: &str, what: &str) -> Option<CString> {
        match CString::new(s) {
            Ok(c) => Some(c),
            Err(_) => {
                self.invalid = Some(format!("{} contains NUL", what));
                None
            }
        }
    }

    /// DNS servers to ask instead of /etc/resolv.conf's, as curl's
    /// --dns-servers: "127.0.0.1:5353,[::1]:53".
    pub fn dns_servers(mut self, list: &str) -> Config {
        self.dns_servers = self.str_option(list, "dns_servers");
        self
    }

    /// Adds a curl --resolve entry, "host:port:addr[,addr]": connections
    /// for host:port go to these addresses; TLS and :authority keep host.
    pub fn resolve(mut self, entry: &str) -> Config {
        if let Some(c) = self.str_option(entry, "resolve") {
            self.resolve.push(c);
        }
        self
    }

    /// Adds a curl --connect-to entry, "host1:port1:host2:port2".
    pub fn connect_to(mut self, entry: &str) -> Config {
        if let Some(c) = self.str_option(entry, "connect_to") {
            self.connect_to.push(c);
        }
        self
    }

    /// Every connection goes to this Unix domain socket (curl's
    /// --unix-socket); `abstract_namespace`: a Linux abstract name.
    pub fn unix_socket(mut self, path: impl AsRef<Path>, abstract_namespace: bool) -> Config {
        self.unix_socket = self
            .path_option(path.as_ref())
            .map(|p| (p, abstract_namespace));
        self
    }

    /// The local IP address TCP connections are made from.
    pub fn local_address(mut self, address: &str) -> Config {
        self.local_address = self.str_option(address, "local_address");
        self
    }

    /// The local port range TCP connections bind to (curl's --local-port).
    pub fn local_port_range(mut self, min: u16, max: u16) -> Config {
        self.local_port_range = Some((u32::from(min), u32::from(max)));
        self
    }

    /// A network device to bind TCP connections to (SO_BINDTODEVICE).
    pub fn interface(mut self, name: &str) -> Config {
        self.interface = self.str_option(name, "interface");
        self
    }

    /// TCP keepalive: probes after `idle` without traffic, every
    /// `interval`, `count` of them (0: the kernel's defaults).
    pub fn tcp_keepalive(mut self, idle: Duration, interval: Duration, count: u32) -> Config {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        self.tcp_keepalive = Some((secs(idle), secs(interval), count));
        self
    }

    /// Happy Eyeballs attempt delay (RFC 8305); zero: one address at a
    /// time. Default 250 ms.
    pub fn happy_eyeballs_delay(mut self, d: Duration) -> Config {
        self.happy_eyeballs_delay = Some(d);
        self
    }

    /// PEM file of CA certificates to trust instead of the system's.
    pub fn tls_ca_file(mut self, path: impl AsRef<Path>) -> Config {
        self.tls_ca_file = self.path_option(path.as_ref());
        self
    }

    /// Hashed CA directory to trust instead of the system's.
    pub fn tls_ca_dir(mut self, path: impl AsRef<Path>) -> Config {
        self.tls_ca_dir = self.path_option(path.as_ref());
        self
    }

    /// Client certificate chain and key (PEM) for mutual TLS.
    pub fn tls_client_cert(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Config {
        let cert = self.path_option(cert.as_ref());
        let key = self.path_option(key.as_ref());
        if let (Some(c), Some(k)) = (cert, key) {
            self.tls_client_cert = Some((c, k));
        }
        self
    }

    fn string_option(&mut self, what: &str, value: &str) -> Option<CString> {
        match CString::new(value) {
            Ok(s) => Some(s),
            Err(_) => {
                self.invalid = Some(format!("{} contains NUL", what));
                None
            }
        }
    }

    /// Sends every connection through a proxy: `http://[user:pass@]host:port`,
    /// `https://...` (TLS to the proxy, verified with the pool's CA
    /// settings), `socks5://...` or `socks5h://...` (the proxy resolves
    /// names). Through an HTTP proxy every request is a CONNECT tunnel,
    /// `http://` included. `""`: no proxy, whatever the environment says.
    /// [`Pool::new`] fails with [`ErrorCode::InvalidArgument`] for a
    /// malformed URL.
    pub fn proxy(mut self, url: &str) -> Config {
        self.proxy = self.string_option("proxy", url);
        self
    }

    /// The proxy's credentials, replacing those in its URL.
    pub fn proxy_credentials(mut self, user: &str, password: &str) -> Config {
        let user = self.string_option("proxy user", user);
        let password = self.string_option("proxy password", password);
        if let (Some(u), Some(p)) = (user, password) {
            self.proxy_credentials = Some((u, p));
        }
        self
    }

    /// Origins that bypass the proxy, in `NO_PROXY` syntax
    /// (`"localhost,.example.com,10.0.0.0/8"`, `"*"` for all).
    pub fn noproxy(mut self, list: &str) -> Config {
        self.noproxy = self.string_option("noproxy", list);
        self
    }

    setter!(
        /// Read `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (lower
        /// case first) when the pool is created, as libcurl does; explicit
        /// proxy settings win. Default off.
        proxy_from_environment: bool);

    /// Receives the pool's log messages at `level` and above. Runs on the
    /// pool's loop thread (or the thread creating or dropping the pool): it
    /// must not block. A panic in it is caught and dropped.
    pub fn log<F>(mut self, level: LogLevel, f: F) -> Config
    where
        F: Fn(LogLevel, &str) + Send + Sync + 'static,
    {
        self.log = Some((level, Arc::new(f)));
        self
    }

    /// Builds the C configuration; `log` receives the log callback's state.
    fn to_raw(&self, log: *mut LogState) -> Result<RawConfig, Error> {
        if let Some(why) = &self.invalid {
            return Err(Error::new(ErrorCode::InvalidArgument, why.clone()));
        }
        let mut raw = ptr::null_mut();
        // Writes a new config (or nothing) through a valid out pointer.
        let rc = unsafe { sys::h2pool_config_new(&mut raw) };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, "h2pool_config_new"));
        }
        let cfg = RawConfig(raw);
        let check = |rc: c_int, what: &str| -> Result<(), Error> {
            if rc == 0 {
                Ok(())
            } else {
                Err(Error::from_raw_code(rc, format!("Config::{}", what)))
            }
        };
        // `raw` is the live config `cfg` owns; strings passed are CStrings
        // of `self`, which outlive the calls (the setters copy them).
        unsafe {
            if let Some(n) = self.max_connections_per_endpoint {
                check(
                    sys::h2pool_config_set_max_connections_per_endpoint(raw, n),
                    "max_connections_per_endpoint",
                )?;
            }
            if let Some(n) = self.loop_threads {
                check(sys::h2pool_config_set_loop_threads(raw, n), "loop_threads")?;
            }
            if let Some(n) = self.max_concurrent_streams {
                check(
                    sys::h2pool_config_set_max_concurrent_streams(raw, n),
                    "max_concurrent_streams",
                )?;
            }
            if let Some(n) = self.max_pending_requests {
                check(
                    sys::h2pool_config_set_max_pending_requests(raw, n),
                    "max_pending_requests",
                )?;
            }
            let durations: [(
                Option<Duration>,
                &str,
                unsafe extern "C" fn(*mut sys::h2pool_config, u32) -> c_int,
            ); 7] = [
                (
                    self.connect_timeout,
                    "connect_timeout",
                    sys::h2pool_config_set_connect_timeout_ms,
                ),
                (
                    self.settings_timeout,
                    "settings_timeout",
                    sys::h2pool_config_set_settings_timeout_ms,
                ),
                (
                    self.request_timeout,
                    "request_timeout",
                    sys::h2pool_config_set_request_timeout_ms,
                ),
                (
                    self.idle_timeout,
                    "idle_timeout",
                    sys::h2pool_config_set_idle_timeout_ms,
                ),
                (
                    self.max_lifetime,
                    "max_lifetime",
                    sys::h2pool_config_set_max_lifetime_ms,
                ),
                (
                    self.response_header_timeout,
                    "response_header_timeout",
                    sys::h2pool_config_set_response_header_timeout_ms,
                ),
                (
                    self.tls_handshake_timeout,
                    "tls_handshake_timeout",
                    sys::h2pool_config_set_tls_handshake_timeout_ms,
                ),
            ];
            for (value, what, set) in durations.iter() {
                if let Some(d) = value {
                    check(set(raw, millis(*d, what)?), what)?;
                }
            }
            if let Some(n) = self.max_response_body_bytes {
                check(
                    sys::h2pool_config_set_max_response_body_bytes(raw, n),
                    "max_response_body_bytes",
                )?;
            }
            if let Some((stream, connection)) = self.flow_control_windows {
                check(
                    sys::h2pool_config_set_flow_control_windows(raw, stream, connection),
                    "flow_control_windows",
                )?;
            }
            if let Some(enabled) = self.adaptive_window {
                check(
                    sys::h2pool_config_set_adaptive_window(raw, c_int::from(enabled)),
                    "adaptive_window",
                )?;
            }
            if let Some((interval, timeout)) = self.ping {
                check(
                    sys::h2pool_config_set_ping(
                        raw,
                        millis(interval, "ping")?,
                        millis(timeout, "ping")?,
                    ),
                    "ping",
                )?;
            }
            if let Some(n) = self.max_requests_per_connection {
                check(
                    sys::h2pool_config_set_max_requests_per_connection(raw, n),
                    "max_requests_per_connection",
                )?;
            }
            if let Some(n) = self.max_retries {
                check(sys::h2pool_config_set_max_retries(raw, n), "max_retries")?;
            }
            if let Some(v) = self.http_version {
                let raw_version = match v {
                    HttpVersion::Negotiate => sys::H2POOL_HTTP_VERSION_DEFAULT,
                    HttpVersion::Http11 => sys::H2POOL_HTTP_VERSION_1_1,
                    HttpVersion::Http2 => sys::H2POOL_HTTP_VERSION_2,
                };
                check(
                    sys::h2pool_config_set_http_version(raw, raw_version),
                    "http_version",
                )?;
            }
            if let Some(on) = self.retry_idempotent {
                check(
                    sys::h2pool_config_set_retry_idempotent(raw, on as c_int),
                    "retry_idempotent",
                )?;
            }
            if let Some((bytes, fields)) = self.max_response_headers {
                check(
                    sys::h2pool_config_set_max_response_headers(raw, bytes, fields),
                    "max_response_headers",
                )?;
            }
            if let Some((bytes, ratio)) = self.decompression_limits {
                check(
                    sys::h2pool_config_set_decompression_limits(raw, bytes, ratio),
                    "decompression_limits",
                )?;
            }
            if let Some(list) = &self.dns_servers {
                check(
                    sys::h2pool_config_set_dns_servers(raw, list.as_ptr()),
                    "dns_servers",
                )?;
            }
            for entry in &self.resolve {
                check(
                    sys::h2pool_config_add_resolve(raw, entry.as_ptr()),
                    "resolve",
                )?;
            }
            for entry in &self.connect_to {
                check(
                    sys::h2pool_config_add_connect_to(raw, entry.as_ptr()),
                    "connect_to",
                )?;
            }
            if let Some((path, abstract_namespace)) = &self.unix_socket {
                let rc = if *abstract_namespace {
                    sys::h2pool_config_set_abstract_unix_socket(raw, path.as_ptr())
                } else {
                    sys::h2pool_config_set_unix_socket(raw, path.as_ptr())
                };
                check(rc, "unix_socket")?;
            }
            if let Some(a) = &self.local_address {
                check(
                    sys::h2pool_config_set_local_address(raw, a.as_ptr()),
                    "local_address",
                )?;
            }
            if let Some((min, max)) = self.local_port_range {
                check(
                    sys::h2pool_config_set_local_port_range(raw, min, max),
                    "local_port_range",
                )?;
            }
            if let Some(name) = &self.interface {
                check(
                    sys::h2pool_config_set_interface(raw, name.as_ptr()),
                    "interface",
                )?;
            }
            if let Some((idle, interval, count)) = self.tcp_keepalive {
                check(
                    sys::h2pool_config_set_tcp_keepalive(raw, idle, interval, count),
                    "tcp_keepalive",
                )?;
            }
            if let Some(d) = self.happy_eyeballs_delay {
                check(
                    sys::h2pool_config_set_happy_eyeballs_delay_ms(
                        raw,
                        millis(d, "happy_eyeballs_delay")?,
                    ),
                    "happy_eyeballs_delay",
                )?;
            }
            if let Some(path) = &self.tls_ca_file {
                check(
                    sys::h2pool_config_set_tls_ca_file(raw, path.as_ptr()),
                    "tls_ca_file",
                )?;
            }
            if let Some(path) = &self.tls_ca_dir {
                check(
                    sys::h2pool_config_set_tls_ca_dir(raw, path.as_ptr()),
                    "tls_ca_dir",
                )?;
            }
            if let Some((cert, key)) = &self.tls_client_cert {
                check(
                    sys::h2pool_config_set_tls_client_cert(raw, cert.as_ptr(), key.as_ptr()),
                    "tls_client_cert",
                )?;
            }
            if let Some(v) = self.tls_min_version {
                let v = match v {
                    TlsVersion::Tls12 => sys::H2POOL_TLS_VERSION_1_2,
                    TlsVersion::Tls13 => sys::H2POOL_TLS_VERSION_1_3,
                };
                check(
                    sys::h2pool_config_set_tls_min_version(raw, v),
                    "tls_min_version",
                )?;
            }
            if let Some(on) = self.tls_insecure_skip_verify {
                check(
                    sys::h2pool_config_set_tls_insecure_skip_verify(raw, on as c_int),
                    "tls_insecure_skip_verify",
                )?;
            }
            if let Some(url) = &self.proxy {
                check(sys::h2pool_config_set_proxy(raw, url.as_ptr()), "proxy")?;
            }
            if let Some((user, password)) = &self.proxy_credentials {
                check(
                    sys::h2pool_config_set_proxy_credentials(raw, user.as_ptr(), password.as_ptr()),
                    "proxy_credentials",
                )?;
            }
            if let Some(list) = &self.noproxy {
                check(sys::h2pool_config_set_noproxy(raw, list.as_ptr()), "noproxy")?;
            }
            if let Some(on) = self.proxy_from_environment {
                check(
                    sys::h2pool_config_use_proxy_env(raw, on as c_int),
                    "proxy_from_environment",
                )?;
            }
            if let Some((level, _)) = &self.log {
                check(
                    sys::h2pool_config_set_log(
                        raw,
                        Some(on_log),
                        *level as c_int,
                        log as *mut c_void,
                    ),
                    "log",
                )?;
            }
        }
        Ok(cfg)
    }
}

/// Frees a C configuration on every path.
struct RawConfig(*mut sys::h2pool_config);

impl Drop for RawConfig {
    fn drop(&mut self) {
        // Owned, freed once; h2pool_config_free accepts NULL.
        unsafe { sys::h2pool_config_free(self.0) }
    }
}

// ---------------------------------------------------------------------------
// Trampolines
// ---------------------------------------------------------------------------

thread_local! {
    /// Set on threads that run user code for the pool (its drainer thread,
    /// and the loop thread while a log callback runs), where blocking on
    /// the pool would wait for the thread itself.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

/// Marks the current thread as running a callback until dropped.
pub(crate) struct CallbackScope(bool);

impl CallbackScope {
    pub(crate) fn enter() -> CallbackScope {
        CallbackScope(IN_CALLBACK.with(|c| c.replace(true)))
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        let previous = self.0;
        IN_CALLBACK.with(|c| c.set(previous));
    }
}

/// Runs `f`, catching a panic (and a panic while dropping its payload) so
/// that nothing unwinds into C. Returns whether `f` panicked.
pub(crate) fn run_caught<F: FnOnce()>(f: F) -> bool {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => false,
        Err(payload) => {
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            true
        }
    }
}

/// The user data of the log callback, freed after `h2pool_destroy`.
struct LogState {
    f: Arc<LogFn>,
    panics: Arc<AtomicU64>,
}

/// Safety: `user_data` is the `LogState` Pool::new leaked, freed only after
/// h2pool_destroy (so never during a call); `msg` is a NUL-terminated
/// string borrowed for the call.
unsafe extern "C" fn on_log(level: c_int, msg: *const c_char, user_data: *mut c_void) {
    let state = &*(user_data as *const LogState);
    let _scope = CallbackScope::enter();
    let panicked = run_caught(|| {
        let text = CStr::from_ptr(msg).to_string_lossy();
        (state.f)(LogLevel::from_raw(level), &text);
    });
    if panicked {
        state.panics.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// The pool
// ---------------------------------------------------------------------------

/// The C handle; null once the pool is closed.
struct RawPool(*mut sys::h2pool);

// h2pool_request, h2pool_cancel and h2pool_stats_get are thread-safe; the
// RwLock around the handle keeps them from racing with h2pool_destroy.
unsafe impl Send for RawPool {}
unsafe impl Sync for RawPool {}

pub(crate) struct Inner {
    raw: RwLock<RawPool>,
    /// The pool's completion queue: live while `raw` is not null (it is
    /// shut down after the pool is destroyed, and the drainer destroys it
    /// once drained).
    queue: QueuePtr,
    /// The drainer thread, joined by `close` (unless it is the caller).
    drainer: Mutex<Option<JoinHandle<()>>>,
    drainer_id: ThreadId,
    log: AtomicPtr<LogState>,
    pub(crate) panics: Arc<AtomicU64>,
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RawPool> {
        self.raw.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Destroys the C pool (which completes every outstanding request into
    /// the queue), shuts the queue down and waits for the drainer to have
    /// handled every event; once.
    fn close(&self) {
        let raw = {
            let mut guard = self.raw.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut guard.0, ptr::null_mut())
        };
        if raw.is_null() {
            return;
        }
        // `raw` was taken out under the write lock: no other call can start
        // on it, and calls under way finished before the lock was granted.
        unsafe { sys::h2pool_destroy(raw) };
        // No submitter can reach the queue any more (they check `raw`
        // under the lock); the drainer destroys it once drained.
        unsafe { sys::h2pool_queue_shutdown(self.queue.0) };
        if std::thread::current().id() != self.drainer_id {
            let handle = lock(&self.drainer).take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        let log = self.log.swap(ptr::null_mut(), Ordering::AcqRel);
        if !log.is_null() {
            // The destroyed pool calls the log callback no more; the box
            // was leaked by Pool::new and is reclaimed only here (swap).
            drop(unsafe { Box::from_raw(log) });
        }
    }

    /// Submits `req`, whose events go to `sink`. On refusal the handler
    /// (and with it `sink` and the body) is dropped and the error returned.
    fn submit(self: &Arc<Inner>, req: Request, sink: Sink) -> Result<RequestId, Error> {
        let Request {
            method,
            url,
            headers,
            body,
            timeout,
            auto_decompress,
            priority,
            read_buffer,
            upload_buffer,
            trailers,
        } = req;
        if upload_buffer == Some(0) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "Request::upload_buffer must be at least 1 byte",
            ));
        }
        // Trailers follow a streamed body: then every body is streamed.
        let direct_max = if trailers.is_empty() {
            events::DIRECT_BODY_MAX
        } else {
            0
        };
        let trailers = Arc::new(trailers);
        let describe = format!("{} {}", method, url);
        let method = CString::new(method)
            .map_err(|_| Error::new(ErrorCode::InvalidMethod, "method contains NUL"))?;
        let url = CString::new(url)
            .map_err(|_| Error::new(ErrorCode::InvalidUrl, "URL contains NUL"))?;
        let raw_headers = raw_fields(&headers);
        let body_length = body.len();
        let streams_response = !matches!(sink, Sink::Buffered(_));
        let download_buffer = match &sink {
            Sink::Stream(_) => Some(read_buffer.unwrap_or(body::DEFAULT_BUFFER_LIMIT)),
            _ => None,
        };
        // What h2pool_queue_request gets as `body`: small in-memory bodies,
        // which it copies; larger ones and readers are written afterwards.
        let mut direct: Option<Vec<u8>> = None;
        let body = match body.0 {
            upload::Kind::Empty if direct_max == 0 => upload::Kind::Static(&[]),
            other => other,
        };
        let written = |bytes| {
            Upload::Memory(events::Outgoing::new(bytes, trailers.clone(), self.clone()))
        };
        let (body_ptr, body_len, upload, reader) = match body {
            upload::Kind::Empty => (ptr::null(), 0, Upload::Nothing, None),
            upload::Kind::Static(s) if s.len() <= direct_max && direct_max > 0 => {
                let p = if s.is_empty() { ptr::null() } else { s.as_ptr() };
                (p, s.len(), Upload::Nothing, None)
            }
            upload::Kind::Owned(v) if v.len() <= direct_max && direct_max > 0 => {
                let (p, n) = if v.is_empty() {
                    (ptr::null(), 0)
                } else {
                    (v.as_ptr(), v.len())
                };
                // Kept alive (and unmoved on the heap) until submitted.
                direct = Some(v);
                (p, n, Upload::Nothing, None)
            }
            upload::Kind::Static(s) => (ptr::null(), 0, written(events::Bytes::Static(s)), None),
            upload::Kind::Owned(v) => (ptr::null(), 0, written(events::Bytes::Owned(v)), None),
            upload::Kind::Reader { reader, .. } => {
                let feed = upload::Feed::new(trailers.clone());
                (ptr::null(), 0, Upload::Pump(feed.clone()), Some((feed, reader)))
            }
        };
        let streams_upload = !matches!(upload, Upload::Nothing);
        let memory = match &upload {
            Upload::Memory(out) => Some(out.clone()),
            _ => None,
        };
        let handler = Handler::new(sink, upload, self.clone());
        let opts = if timeout.is_some()
            || auto_decompress.is_some()
            || priority.is_some()
            || streams_response
            || streams_upload
        {
            let opts = RawOpts::new()?;
            // opts.0 is the live options object RawOpts owns.
            if let Some(t) = timeout {
                opts.check(
                    unsafe {
                        sys::h2pool_request_opts_set_timeout_ms(
                            opts.0,
                            millis(t, "Request::timeout")?,
                        )
                    },
                    "Request::timeout",
                )?;
            }
            if let Some(on) = auto_decompress {
                opts.check(
                    unsafe { sys::h2pool_request_opts_set_auto_decompress(opts.0, on as c_int) },
                    "Request::auto_decompress",
                )?;
            }
            if let Some((urgency, incremental)) = priority {
                opts.check(
                    unsafe {
                        sys::h2pool_request_opts_set_priority(
                            opts.0,
                            c_int::from(urgency),
                            c_int::from(incremental),
                        )
                    },
                    "Request::priority",
                )?;
            }
            if streams_response {
                opts.check(
                    unsafe { sys::h2pool_request_opts_set_queue_streaming(opts.0, 1) },
                    "queue streaming",
                )?;
            }
            if streams_upload {
                let length = events::upload_length(body_length)?;
                opts.check(
                    unsafe { sys::h2pool_request_opts_set_queue_upload(opts.0, 1, length) },
                    "queue upload",
                )?;
            }
            if download_buffer.is_some() || upload_buffer.is_some() {
                // libh2pool takes 1 to 2^30 bytes each.
                let clamp = |n: usize| n.clamp(1, 1 << 30) as u32;
                opts.check(
                    unsafe {
                        sys::h2pool_request_opts_set_queue_buffers(
                            opts.0,
                            download_buffer.map_or(events::DEFAULT_BUFFER, clamp),
                            upload_buffer.map_or(events::DEFAULT_BUFFER, clamp),
                        )
                    },
                    "Request::read_buffer / upload_buffer",
                )?;
            }
            Some(opts)
        } else {
            None
        };
        let user_data = Box::into_raw(Box::new(handler));
        let mut id = 0u64;
        let rc = {
            let guard = self.read();
            if guard.0.is_null() {
                sys::H2POOL_ERR_POOL_CLOSED
            } else {
                // The pool and its queue are live while the read lock is
                // held (see close). Method, URL, headers, body and options
                // are copied before h2pool_queue_request returns.
                unsafe {
                    sys::h2pool_queue_request(
                        guard.0,
                        self.queue.0,
                        method.as_ptr(),
                        url.as_ptr(),
                        if raw_headers.is_empty() {
                            ptr::null()
                        } else {
                            raw_headers.as_ptr()
                        },
                        raw_headers.len(),
                        body_ptr,
                        body_len,
                        opts.as_ref().map_or(ptr::null(), |o| o.0 as *const _),
                        user_data as *mut c_void,
                        &mut id,
                    )
                }
            }
        };
        drop(direct);
        if rc != 0 {
            // Refused: no event will come, so the handler, and the body it
            // holds, are ours again.
            drop(unsafe { Box::from_raw(user_data) });
            let what = if rc == sys::H2POOL_ERR_POOL_CLOSED || rc == sys::H2POOL_ERR_QUEUE_CLOSED {
                return Err(Error::new(ErrorCode::PoolClosed, "the pool is closed"));
            } else {
                describe
            };
            return Err(Error::from_raw_code(rc, what));
        }
        let id = RequestId(id);
        if let Some(out) = memory {
            events::start_push(&out, id);
        }
        if let Some((feed, reader)) = reader {
            feed.start(reader, body_length, self.clone(), id);
        }
        Ok(id)
    }

    /// `h2pool_request_write_body`: how many bytes the upload buffer took.
    pub(crate) fn write_body(&self, id: RequestId, data: &[u8]) -> Result<usize, Error> {
        let guard = self.read();
        if guard.0.is_null() {
            return Err(Error::new(ErrorCode::PoolClosed, "the pool is closed"));
        }
        let mut accepted = 0usize;
        // Live handle under the read lock; `data` is read (copied) during
        // the call only.
        let rc = unsafe {
            sys::h2pool_request_write_body(guard.0, id.0, data.as_ptr(), data.len(), &mut accepted)
        };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, "h2pool_request_write_body"));
        }
        Ok(accepted)
    }

    /// `h2pool_request_end_body`. After a refused trailer the body stays
    /// open: the caller records why, then cancels the request.
    pub(crate) fn end_body(&self, id: RequestId, trailers: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Error> {
        let raw = raw_fields(trailers);
        let rc = {
            let guard = self.read();
            if guard.0.is_null() {
                return Err(Error::new(ErrorCode::PoolClosed, "the pool is closed"));
            }
            // Live handle under the read lock; the trailers point into
            // `trailers`, alive for the call, and are copied by it.
            unsafe {
                sys::h2pool_request_end_body(
                    guard.0,
                    id.0,
                    if raw.is_empty() { ptr::null() } else { raw.as_ptr() },
                    raw.len(),
                )
            }
        };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, "request trailers refused"));
        }
        Ok(())
    }

    /// Calls one of the thread-safe per-request functions (cancel).
    fn call(
        &self,
        id: RequestId,
        f: unsafe extern "C" fn(*mut sys::h2pool, u64) -> c_int,
        what: &str,
    ) -> Result<(), Error> {
        // On the pool's own threads (a future or body dropped in a
        // callback), do not queue behind a writer. A waiting writer means
        // the pool is closing, which completes the request anyway, so
        // giving up then loses nothing.
        let guard = if in_callback() {
            match self.raw.try_read() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(Error::new(ErrorCode::WrongThread, "pool busy (closing)"))
                }
            }
        } else {
            self.read()
        };
        if guard.0.is_null() {
            return Err(Error::new(ErrorCode::PoolClosed, "the pool is closed"));
        }
        // The handle is live while the read lock is held (close() takes
        // the write lock before h2pool_destroy).
        let rc = unsafe { f(guard.0, id.0) };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, what));
        }
        Ok(())
    }

    fn cancel(&self, id: RequestId) -> Result<(), Error> {
        self.call(id, sys::h2pool_cancel, "h2pool_cancel")
    }
}

/// C views of header or trailer fields, pointing into `fields` (valid
/// while it is neither dropped nor changed).
fn raw_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<sys::h2pool_header> {
    fields
        .iter()
        .map(|(n, v)| sys::h2pool_header {
            name: n.as_ptr() as *const c_char,
            name_len: n.len(),
            value: v.as_ptr() as *const c_char,
            value_len: v.len(),
        })
        .collect()
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// Request options for one request.
pub(crate) struct RawOpts(pub(crate) *mut sys::h2pool_request_opts);

impl RawOpts {
    fn new() -> Result<RawOpts, Error> {
        let mut raw = ptr::null_mut();
        // Writes new options (or nothing) through a valid out pointer.
        let rc = unsafe { sys::h2pool_request_opts_new(&mut raw) };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, "h2pool_request_opts_new"));
        }
        Ok(RawOpts(raw))
    }

    pub(crate) fn check(&self, rc: c_int, what: &str) -> Result<(), Error> {
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::from_raw_code(rc, what))
        }
    }
}

impl Drop for RawOpts {
    fn drop(&mut self) {
        // Owned, freed once (h2pool_request copied what it needed).
        unsafe { sys::h2pool_request_opts_free(self.0) }
    }
}

/// An HTTP/2 connection pool with its own event-loop thread. `Send + Sync`:
/// share it between threads with `Arc` or scoped borrows.
///
/// Dropping the pool shuts it down: every request still outstanding
/// completes with [`ErrorCode::PoolClosed`] (its callback runs, its future
/// resolves) before `drop` returns, and the pool's event thread exits.
/// Dropped from inside a completion callback (on that thread), the
/// remaining completions run right after that callback returns.
pub struct Pool {
    inner: Arc<Inner>,
}

/// Counters and gauges of a pool or one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections_open: u64,
    pub connections_idle: u64,
    pub connections_created: u64,
    pub connections_reused: u64,
    pub connections_closed: u64,
    pub streams_active: u64,
    pub requests_queued: u64,
    pub requests_completed: u64,
    pub requests_failed: u64,
    pub requests_retried: u64,
    pub peak_streams_per_connection: u64,
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
}

impl Counters {
    fn read(get: impl Fn(sys::h2pool_stat) -> u64) -> Counters {
        Counters {
            connections_open: get(sys::H2POOL_STAT_CONNECTIONS_OPEN),
            connections_idle: get(sys::H2POOL_STAT_CONNECTIONS_IDLE),
            connections_created: get(sys::H2POOL_STAT_CONNECTIONS_CREATED),
            connections_reused: get(sys::H2POOL_STAT_CONNECTIONS_REUSED),
            connections_closed: get(sys::H2POOL_STAT_CONNECTIONS_CLOSED),
            streams_active: get(sys::H2POOL_STAT_STREAMS_ACTIVE),
            requests_queued: get(sys::H2POOL_STAT_REQUESTS_QUEUED),
            requests_completed: get(sys::H2POOL_STAT_REQUESTS_COMPLETED),
            requests_failed: get(sys::H2POOL_STAT_REQUESTS_FAILED),
            requests_retried: get(sys::H2POOL_STAT_REQUESTS_RETRIED),
            peak_streams_per_connection: get(sys::H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION),
            tls_handshakes: get(sys::H2POOL_STAT_TLS_HANDSHAKES),
            tls_resumed: get(sys::H2POOL_STAT_TLS_RESUMED),
        }
    }
}

/// One endpoint's statistics; `name` is "scheme://host:port".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    pub name: String,
    pub counters: Counters,
}

/// A consistent snapshot of a pool's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub pool: Counters,
    pub endpoints: Vec<EndpointStats>,
}

impl Pool {
    /// Creates a pool and starts its loop thread and its event thread.
    pub fn new(config: Config) -> Result<Pool, Error> {
        let panics = Arc::new(AtomicU64::new(0));
        let log = match &config.log {
            Some((_, f)) => Box::into_raw(Box::new(LogState {
                f: f.clone(),
                panics: panics.clone(),
            })),
            None => ptr::null_mut(),
        };
        // Until the pool owns `log`, free it on every error path.
        let free_log = |log: *mut LogState| {
            if !log.is_null() {
                // Leaked just above and not yet handed to a pool.
                drop(unsafe { Box::from_raw(log) });
            }
        };
        let cfg = match config.to_raw(log) {
            Ok(cfg) => cfg,
            Err(e) => {
                free_log(log);
                return Err(e);
            }
        };
        let mut queue = ptr::null_mut();
        // Valid out pointer; the queue is ours until handed to the drainer.
        let rc = unsafe { sys::h2pool_queue_create(&mut queue) };
        if rc != 0 {
            free_log(log);
            return Err(Error::from_raw_code(rc, "cannot create the completion queue"));
        }
        let mut raw = ptr::null_mut();
        // cfg.0 is a live config (copied by h2pool_create); valid out pointer.
        let rc = unsafe { sys::h2pool_create(cfg.0, &mut raw) };
        drop(cfg);
        if rc != 0 {
            // No request ever used the queue.
            unsafe { sys::h2pool_queue_destroy(queue) };
            free_log(log);
            return Err(Error::from_raw_code(rc, "cannot create the pool"));
        }
        let q = QueuePtr(queue);
        let spawned = std::thread::Builder::new()
            .name("h2pool-events".into())
            .spawn(move || events::drain(q));
        let drainer = match spawned {
            Ok(h) => h,
            Err(e) => {
                // No request was submitted: nothing is in the queue and no
                // thread holds it.
                unsafe {
                    sys::h2pool_destroy(raw);
                    sys::h2pool_queue_destroy(queue);
                }
                free_log(log);
                return Err(Error::new(
                    ErrorCode::System,
                    format!("cannot start the pool's event thread: {}", e),
                ));
            }
        };
        Ok(Pool {
            inner: Arc::new(Inner {
                raw: RwLock::new(RawPool(raw)),
                queue: q,
                drainer_id: drainer.thread().id(),
                drainer: Mutex::new(Some(drainer)),
                log: AtomicPtr::new(log),
                panics,
            }),
        })
    }

    /// Sends `req` and blocks until its response or error. Fails with
    /// [`ErrorCode::WrongThread`] when called from a callback, where blocking
    /// would stall the pool's event thread.
    pub fn send(&self, req: Request) -> Result<Response, Error> {
        if in_callback() {
            return Err(Error::new(
                ErrorCode::WrongThread,
                "Pool::send would block the pool's event thread; use send_with or send_async",
            ));
        }
        let (ex, id) = self.submit_streaming(req)?;
        let head = ex.wait_head()?;
        Ok(Response {
            head,
            body: ResponseBody::new(ex, Some(self.inner.clone()), Some(id)),
        })
    }

    fn submit_streaming(&self, req: Request) -> Result<(Arc<Exchange>, RequestId), Error> {
        if req.read_buffer == Some(0) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "Request::read_buffer must be at least 1 byte",
            ));
        }
        let ex = Exchange::new();
        let id = self.inner.submit(req, Sink::Stream(ex.clone()))?;
        Ok((ex, id))
    }

    /// Sends `req` and calls `f` exactly once with the result, on the pool's
    /// event thread, once the whole response has arrived (libh2pool buffers
    /// the body, up to [`Config::max_response_body_bytes`]; reading it in
    /// `f` does not block): `f` must not block (it may send more requests
    /// with `send_with` or `send_async`). A panic in `f` is caught and
    /// counted ([`Pool::caught_panics`]).
    ///
    /// When the request is refused synchronously (bad URL, queue full, pool
    /// closed) the error is returned here and `f` is dropped without being
    /// called.
    pub fn send_with<F>(&self, req: Request, f: F) -> Result<RequestId, Error>
    where
        F: FnOnce(Result<Response, Error>) + Send + 'static,
    {
        self.inner.submit(req, Sink::Buffered(Box::new(f)))
    }

    /// Sends `req` and streams its response body to callbacks on the pool's
    /// event thread: `on_data` receives each chunk (decoded, when
    /// auto-decompression applies) as it arrives, and returns
    /// `ControlFlow::Break(())` to abort the request ([`ErrorCode::Aborted`]);
    /// then `done` runs once, as for [`Pool::send_with`], with a response
    /// whose body is empty. A panic in `on_data` aborts the request and is
    /// counted. (For backpressure, read a [`Pool::send`] response instead.)
    pub fn send_streaming<D, F>(
        &self,
        req: Request,
        on_data: D,
        done: F,
    ) -> Result<RequestId, Error>
    where
        D: FnMut(&[u8]) -> ControlFlow<()> + Send + 'static,
        F: FnOnce(Result<Response, Error>) + Send + 'static,
    {
        self.inner.submit(
            req,
            Sink::Callbacks {
                on_data: Box::new(on_data),
                done: Box::new(done),
            },
        )
    }

    /// Sends `req` now and returns a future of its response head, for any
    /// executor: it resolves when the status and headers have arrived, and
    /// the body then streams through [`Response::poll_chunk`] or
    /// [`Response::poll_read`] (or blocking `Read`). Dropping the future
    /// before it resolves cancels the request.
    pub fn send_async(&self, req: Request) -> ResponseFuture {
        match self.submit_streaming(req) {
            Ok((ex, id)) => ResponseFuture {
                ex: Some(ex),
                refused: None,
                pool: Some(self.inner.clone()),
                id: Some(id),
                finished: false,
            },
            Err(e) => ResponseFuture {
                ex: None,
                refused: Some(e),
                pool: None,
                id: None,
                finished: false,
            },
        }
    }

    /// Asks the pool to cancel a request: it completes with
    /// [`ErrorCode::Cancelled`] unless it finishes first.
    pub fn cancel(&self, id: RequestId) -> Result<(), Error> {
        self.inner.cancel(id)
    }

    /// A snapshot of the pool's statistics.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut snap = ptr::null_mut();
        let rc = {
            let guard = self.inner.read();
            if guard.0.is_null() {
                sys::H2POOL_ERR_POOL_CLOSED
            } else {
                // Live handle while the read lock is held (see Inner::close).
                unsafe { sys::h2pool_stats_get(guard.0, &mut snap) }
            }
        };
        if rc != 0 {
            return Err(Error::from_raw_code(rc, "h2pool_stats_get"));
        }
        struct Snapshot(*mut sys::h2pool_stats);
        impl Drop for Snapshot {
            fn drop(&mut self) {
                // The snapshot h2pool_stats_get returned, freed once.
                unsafe { sys::h2pool_stats_free(self.0) }
            }
        }
        let snap = Snapshot(snap);
        let s = snap.0 as *const sys::h2pool_stats;
        // `s` lives until `snap` drops, after this block; names are
        // NUL-terminated strings owned by the snapshot, copied here.
        unsafe {
            let pool = Counters::read(|w| sys::h2pool_stats_value(s, w));
            let endpoints = (0..sys::h2pool_stats_endpoint_count(s))
                .map(|i| {
                    let name = sys::h2pool_stats_endpoint_name(s, i);
                    EndpointStats {
                        name: if name.is_null() {
                            String::new()
                        } else {
                            CStr::from_ptr(name).to_string_lossy().into_owned()
                        },
                        counters: Counters::read(|w| sys::h2pool_stats_endpoint_value(s, i, w)),
                    }
                })
                .collect();
            Ok(Stats { pool, endpoints })
        }
    }

    /// How many panics in callbacks (completion, log, waker) were caught.
    pub fn caught_panics(&self) -> u64 {
        self.inner.panics.load(Ordering::Relaxed)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // On the event thread (from a completion), close cannot wait for
        // that thread: the remaining completions run after this one.
        self.inner.close();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = !self.inner.read().0.is_null();
        f.debug_struct("Pool").field("open", &open).finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The future of [`Pool::send_async`]: resolves to the [`Response`] once
/// its head has arrived. The request is already in flight; the future only
/// waits. Dropping it before it resolves cancels the request
/// (`h2pool_cancel`).
#[must_use = "dropping the future cancels the request"]
pub struct ResponseFuture {
    ex: Option<Arc<Exchange>>,
    refused: Option<Error>,
    pool: Option<Arc<Inner>>,
    id: Option<RequestId>,
    finished: bool,
}

impl ResponseFuture {
    /// The request's id, unless it was refused.
    pub fn id(&self) -> Option<RequestId> {
        self.id
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.finished {
            return Poll::Ready(Err(Error::new(
                ErrorCode::InvalidArgument,
                "ResponseFuture polled after it resolved",
            )));
        }
        if let Some(e) = self.refused.take() {
            self.finished = true;
            return Poll::Ready(Err(e));
        }
        let ex = match &self.ex {
            Some(ex) => ex.clone(),
            None => {
                self.finished = true;
                return Poll::Ready(Err(Error::new(ErrorCode::Internal, "no request")));
            }
        };
        match ex.poll_head(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(head) => {
                self.finished = true;
                // The body takes over the exchange and the duty to cancel.
                self.ex = None;
                let pool = self.pool.take();
                let id = self.id;
                Poll::Ready(head.map(|head| Response {
                    head,
                    body: ResponseBody::new(ex, pool, id),
                }))
            }
        }
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        if let (Some(ex), Some(pool), Some(id)) = (&self.ex, &self.pool, self.id) {
            if ex.abandon() {
                // The completion still runs (with Cancelled) and is dropped.
                let _ = pool.cancel(id);
            }
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("id", &self.id)
            .field("finished", &self.finished)
            .finish()
    }
}

/// The content-encodings the libh2pool loaded at run time decodes, as it
/// sends them in accept-encoding: "gzip, deflate", then ", br" and ", zstd"
/// when it was built with libbrotlidec and libzstd.
pub fn supported_encodings() -> &'static str {
    // A static NUL-terminated string, never NULL.
    let s = unsafe { sys::h2pool_supported_encodings() };
    if s.is_null() {
        return "";
    }
    unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("")
}

/// The version of the libh2pool loaded at run time: 0xMMmmpp and
/// "MAJOR.MINOR.PATCH".
pub fn version() -> (u32, &'static str) {
    let mut s = ptr::null();
    // Writes a pointer to a static NUL-terminated string.
    let num = unsafe { sys::h2pool_version(&mut s) };
    let s = if s.is_null() {
        ""
    } else {
        unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("")
    };
    (num, s)
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Pool>();
    check::<Error>();
    check::<Response>();
    check::<ResponseBody>();
    check::<ResponseHead>();
    fn check_send<T: Send>() {}
    check_send::<ResponseFuture>();
    check_send::<Request>();
    check_send::<RequestBody>();
}
