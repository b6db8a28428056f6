//! Raw declarations of libh2pool's C API (`include/h2pool.h`), written by
//! hand with `std::os::raw` types. Everything here is `unsafe`; the `h2pool`
//! crate is the safe interface. The header documents every function: who owns
//! each buffer, which calls are thread-safe, and the exactly-once completion
//! contract.
//!
//! `build.rs` links the library through the `pkg-config` program (see there
//! for the `H2POOL_LIB_DIR` and `H2POOL_NO_PKG_CONFIG` overrides).
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_int, c_long, c_void};

macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// A connection pool (`h2pool`).
    h2pool;
    /// libevent's `struct event_base`, for `h2pool_create_on_base`.
    event_base;
    /// Pool configuration (`h2pool_config`).
    h2pool_config;
    /// Per-request options (`h2pool_request_opts`).
    h2pool_request_opts;
    /// A response, borrowed during a completion callback.
    h2pool_response;
    /// An error, borrowed during a completion callback.
    h2pool_error;
    /// A statistics snapshot.
    h2pool_stats;
    /// A completion queue (`h2pool_queue`).
    h2pool_queue;
    /// An event taken from a completion queue, owned until
    /// `h2pool_event_free`.
    h2pool_event;
}

/// `h2pool_code`: 0 or a negative error code.
pub type h2pool_code = c_int;
pub const H2POOL_OK: h2pool_code = 0;
pub const H2POOL_ERR_INVALID_ARGUMENT: h2pool_code = -1;
pub const H2POOL_ERR_NOMEM: h2pool_code = -2;
pub const H2POOL_ERR_INVALID_URL: h2pool_code = -3;
pub const H2POOL_ERR_UNSUPPORTED_SCHEME: h2pool_code = -4;
pub const H2POOL_ERR_INVALID_HEADER: h2pool_code = -5;
pub const H2POOL_ERR_INVALID_METHOD: h2pool_code = -6;
pub const H2POOL_ERR_QUEUE_FULL: h2pool_code = -7;
pub const H2POOL_ERR_POOL_CLOSED: h2pool_code = -8;
pub const H2POOL_ERR_RESOLVE: h2pool_code = -9;
pub const H2POOL_ERR_CONNECT: h2pool_code = -10;
pub const H2POOL_ERR_CONNECT_TIMEOUT: h2pool_code = -11;
pub const H2POOL_ERR_SETTINGS_TIMEOUT: h2pool_code = -12;
pub const H2POOL_ERR_TIMEOUT: h2pool_code = -13;
pub const H2POOL_ERR_CANCELLED: h2pool_code = -14;
pub const H2POOL_ERR_CONNECTION_LOST: h2pool_code = -15;
pub const H2POOL_ERR_GOAWAY: h2pool_code = -16;
pub const H2POOL_ERR_STREAM_RESET: h2pool_code = -17;
pub const H2POOL_ERR_REFUSED_STREAM: h2pool_code = -18;
pub const H2POOL_ERR_PROTOCOL: h2pool_code = -19;
pub const H2POOL_ERR_NOT_SUPPORTED: h2pool_code = -20;
pub const H2POOL_ERR_RESPONSE_TOO_LARGE: h2pool_code = -21;
pub const H2POOL_ERR_WRONG_THREAD: h2pool_code = -22;
pub const H2POOL_ERR_SYSTEM: h2pool_code = -23;
pub const H2POOL_ERR_INTERNAL: h2pool_code = -24;
pub const H2POOL_ERR_TLS_CONFIG: h2pool_code = -25;
pub const H2POOL_ERR_TLS_HANDSHAKE: h2pool_code = -26;
pub const H2POOL_ERR_TLS_VERIFY: h2pool_code = -27;
pub const H2POOL_ERR_TLS_ALPN: h2pool_code = -28;
pub const H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT: h2pool_code = -29;
pub const H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT: h2pool_code = -30;
pub const H2POOL_ERR_DECOMPRESSION_BOMB: h2pool_code = -31;
pub const H2POOL_ERR_DECODE: h2pool_code = -32;
pub const H2POOL_ERR_ABORTED: h2pool_code = -33;
pub const H2POOL_ERR_BODY_SOURCE: h2pool_code = -34;
pub const H2POOL_ERR_RESOLVE_TIMEOUT: h2pool_code = -35;
pub const H2POOL_ERR_QUEUE_CLOSED: h2pool_code = -36;
pub const H2POOL_ERR_NO_SUCH_REQUEST: h2pool_code = -37;

/// `h2pool_event_type`: what a completion-queue event reports.
pub type h2pool_event_type = c_int;
pub const H2POOL_EVENT_HEADERS: h2pool_event_type = 1;
pub const H2POOL_EVENT_DATA: h2pool_event_type = 2;
pub const H2POOL_EVENT_WRITABLE: h2pool_event_type = 3;
pub const H2POOL_EVENT_COMPLETE: h2pool_event_type = 4;
pub const H2POOL_ERR_MALFORMED_RESPONSE: h2pool_code = -38;
pub const H2POOL_ERR_HEADER_SECTION_TOO_LARGE: h2pool_code = -39;
pub const H2POOL_ERR_INCOMPLETE_RESPONSE: h2pool_code = -40;
pub const H2POOL_ERR_PROXY_CONNECT: h2pool_code = -41;
pub const H2POOL_ERR_PROXY_AUTH: h2pool_code = -42;
pub const H2POOL_ERR_PROXY_REFUSED: h2pool_code = -43;
pub const H2POOL_ERR_PROXY_CLOSED: h2pool_code = -44;
pub const H2POOL_ERR_PROXY_PROTOCOL: h2pool_code = -45;
pub const H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED: h2pool_code = -48;

/// `h2pool_log_level`.
pub type h2pool_log_level = c_int;
pub const H2POOL_LOG_NONE: h2pool_log_level = 0;
pub const H2POOL_LOG_ERROR: h2pool_log_level = 1;
pub const H2POOL_LOG_WARN: h2pool_log_level = 2;
pub const H2POOL_LOG_INFO: h2pool_log_level = 3;
pub const H2POOL_LOG_DEBUG: h2pool_log_level = 4;

/// `h2pool_tls_version`.
pub type h2pool_tls_version = c_int;
pub const H2POOL_TLS_VERSION_1_2: h2pool_tls_version = 0x0303;
pub const H2POOL_TLS_VERSION_1_3: h2pool_tls_version = 0x0304;

/// `h2pool_http_version`.
pub type h2pool_http_version = c_int;
pub const H2POOL_HTTP_VERSION_DEFAULT: h2pool_http_version = 0;
pub const H2POOL_HTTP_VERSION_1_1: h2pool_http_version = 1;
pub const H2POOL_HTTP_VERSION_2: h2pool_http_version = 2;

/// `h2pool_protocol`.
pub type h2pool_protocol = c_int;
pub const H2POOL_PROTOCOL_UNKNOWN: h2pool_protocol = 0;
pub const H2POOL_PROTOCOL_HTTP_1_0: h2pool_protocol = 10;
pub const H2POOL_PROTOCOL_HTTP_1_1: h2pool_protocol = 11;
pub const H2POOL_PROTOCOL_HTTP_2: h2pool_protocol = 20;

/// `h2pool_timing`.
pub type h2pool_timing = c_int;
pub const H2POOL_TIMING_QUEUED: h2pool_timing = 0;
pub const H2POOL_TIMING_NAMELOOKUP: h2pool_timing = 1;
pub const H2POOL_TIMING_CONNECT: h2pool_timing = 2;
pub const H2POOL_TIMING_APPCONNECT: h2pool_timing = 3;
pub const H2POOL_TIMING_PRETRANSFER: h2pool_timing = 4;
pub const H2POOL_TIMING_STARTTRANSFER: h2pool_timing = 5;
pub const H2POOL_TIMING_TOTAL: h2pool_timing = 6;

/// `h2pool_stat`.
pub type h2pool_stat = c_int;
pub const H2POOL_STAT_CONNECTIONS_OPEN: h2pool_stat = 0;
pub const H2POOL_STAT_CONNECTIONS_IDLE: h2pool_stat = 1;
pub const H2POOL_STAT_CONNECTIONS_CREATED: h2pool_stat = 2;
pub const H2POOL_STAT_CONNECTIONS_REUSED: h2pool_stat = 3;
pub const H2POOL_STAT_CONNECTIONS_CLOSED: h2pool_stat = 4;
pub const H2POOL_STAT_STREAMS_ACTIVE: h2pool_stat = 5;
pub const H2POOL_STAT_REQUESTS_QUEUED: h2pool_stat = 6;
pub const H2POOL_STAT_REQUESTS_COMPLETED: h2pool_stat = 7;
pub const H2POOL_STAT_REQUESTS_FAILED: h2pool_stat = 8;
pub const H2POOL_STAT_REQUESTS_RETRIED: h2pool_stat = 9;
pub const H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION: h2pool_stat = 10;
pub const H2POOL_STAT_TLS_HANDSHAKES: h2pool_stat = 11;
pub const H2POOL_STAT_TLS_RESUMED: h2pool_stat = 12;
pub const H2POOL_STAT_CONNECTIONS_FAILED: h2pool_stat = 13;
pub const H2POOL_STAT_REQUESTS_AWAITING_RETRY: h2pool_stat = 14;
pub const H2POOL_STAT_REQUESTS_COALESCED: h2pool_stat = 15;
pub const H2POOL_STAT_PEAK_STREAM_WINDOW: h2pool_stat = 16;

/// `h2pool_endpoint_state`.
pub type h2pool_endpoint_state = c_int;
pub const H2POOL_ENDPOINT_IDLE: h2pool_endpoint_state = 0;
pub const H2POOL_ENDPOINT_CONNECTING: h2pool_endpoint_state = 1;
pub const H2POOL_ENDPOINT_READY: h2pool_endpoint_state = 2;
pub const H2POOL_ENDPOINT_BACKING_OFF: h2pool_endpoint_state = 3;
pub const H2POOL_ENDPOINT_DRAINING: h2pool_endpoint_state = 4;

/// Return values of an `h2pool_body_read_cb`: no data yet / abort.
pub const H2POOL_BODY_WAIT: i64 = -1;
pub const H2POOL_BODY_ABORT: i64 = -2;
/// Return value of an `h2pool_data_cb` that pauses the response.
pub const H2POOL_DATA_PAUSE: c_int = 1;

/// Compile-time version of the header these declarations follow.
pub const H2POOL_VERSION_MAJOR: u32 = 0;
pub const H2POOL_VERSION_MINOR: u32 = 1;
pub const H2POOL_VERSION_PATCH: u32 = 0;
pub const H2POOL_VERSION_NUM: u32 =
    (H2POOL_VERSION_MAJOR << 16) | (H2POOL_VERSION_MINOR << 8) | H2POOL_VERSION_PATCH;

/// One header field: byte strings of the given lengths, not necessarily
/// NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct h2pool_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// An external pool's descriptor callback: watch `fd` for `what`
/// (`H2POOL_POLL_*`), or stop watching it (`H2POOL_POLL_REMOVE`).
pub type h2pool_socket_cb =
    Option<unsafe extern "C" fn(fd: c_int, what: c_int, user_data: *mut c_void)>;
/// An external pool's timer callback: call in after `timeout_ms` (-1: never).
pub type h2pool_timer_cb =
    Option<unsafe extern "C" fn(timeout_ms: c_long, user_data: *mut c_void)>;

pub const H2POOL_POLL_IN: c_int = 1;
pub const H2POOL_POLL_OUT: c_int = 2;
pub const H2POOL_POLL_INOUT: c_int = 3;
pub const H2POOL_POLL_REMOVE: c_int = 4;
pub const H2POOL_SOCKET_TIMEOUT: c_int = -1;
/// Returned by `h2pool_socket_action` when the call freed the pool.
pub const H2POOL_POOL_FREED: c_int = 1;

/// The log callback: `msg` is borrowed for the call.
pub type h2pool_log_cb =
    Option<unsafe extern "C" fn(level: c_int, msg: *const c_char, user_data: *mut c_void)>;

/// The completion callback: called exactly once per accepted request, on the
/// pool's loop thread; `resp` and `err` are borrowed for the call.
pub type h2pool_response_cb = Option<
    unsafe extern "C" fn(
        resp: *const h2pool_response,
        err: *const h2pool_error,
        user_data: *mut c_void,
    ),
>;

/// Supplies request body bytes (`h2pool_request_opts_set_body_reader`).
pub type h2pool_body_read_cb = Option<
    unsafe extern "C" fn(buf: *mut u8, len: usize, eof: *mut c_int, user_data: *mut c_void) -> i64,
>;

/// Releases a borrowed request body (`h2pool_request_opts_set_body_release`).
pub type h2pool_body_release_cb =
    Option<unsafe extern "C" fn(body: *const u8, user_data: *mut c_void)>;

/// Streaming: the final response's status and headers arrived.
pub type h2pool_headers_cb =
    Option<unsafe extern "C" fn(resp: *const h2pool_response, user_data: *mut c_void) -> c_int>;

/// Streaming: one chunk of the response body.
pub type h2pool_data_cb =
    Option<unsafe extern "C" fn(data: *const u8, len: usize, user_data: *mut c_void) -> c_int>;

extern "C" {
    pub fn h2pool_version(str_: *mut *const c_char) -> u32;
    pub fn h2pool_supported_encodings() -> *const c_char;
    pub fn h2pool_strerror(code: c_int) -> *const c_char;

    pub fn h2pool_error_code(err: *const h2pool_error) -> c_int;
    pub fn h2pool_error_http2_code(err: *const h2pool_error) -> i64;
    pub fn h2pool_error_stream_id(err: *const h2pool_error) -> i32;
    pub fn h2pool_error_goaway_last_stream_id(err: *const h2pool_error) -> i64;
    pub fn h2pool_error_message(err: *const h2pool_error) -> *const c_char;

    pub fn h2pool_config_new(out: *mut *mut h2pool_config) -> c_int;
    pub fn h2pool_config_free(cfg: *mut h2pool_config);
    pub fn h2pool_config_set_max_connections_per_endpoint(cfg: *mut h2pool_config, n: u32)
        -> c_int;
    pub fn h2pool_config_set_max_concurrent_streams(cfg: *mut h2pool_config, n: u32) -> c_int;
    pub fn h2pool_config_set_loop_threads(cfg: *mut h2pool_config, n: u32) -> c_int;
    pub fn h2pool_config_set_max_pending_requests(cfg: *mut h2pool_config, n: u32) -> c_int;
    pub fn h2pool_config_set_connect_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_settings_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_request_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_idle_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_max_lifetime_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_max_response_body_bytes(cfg: *mut h2pool_config, n: u64) -> c_int;
    pub fn h2pool_config_set_flow_control_windows(
        cfg: *mut h2pool_config,
        stream_bytes: u32,
        connection_bytes: u32,
    ) -> c_int;
    pub fn h2pool_config_set_adaptive_window(cfg: *mut h2pool_config, enabled: c_int) -> c_int;
    pub fn h2pool_config_set_response_header_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_stale_check(
        cfg: *mut h2pool_config,
        after_idle_ms: u32,
        deadline_ms: u32,
    ) -> c_int;
    pub fn h2pool_config_set_ping(
        cfg: *mut h2pool_config,
        interval_ms: u32,
        timeout_ms: u32,
    ) -> c_int;
    pub fn h2pool_config_set_max_requests_per_connection(cfg: *mut h2pool_config, n: u32) -> c_int;
    pub fn h2pool_config_set_max_retries(cfg: *mut h2pool_config, n: u32) -> c_int;
    pub fn h2pool_config_set_retry_idempotent(cfg: *mut h2pool_config, enable: c_int) -> c_int;
    pub fn h2pool_config_set_coalescing(cfg: *mut h2pool_config, enabled: c_int) -> c_int;
    pub fn h2pool_config_set_http_version(
        cfg: *mut h2pool_config,
        version: h2pool_http_version,
    ) -> c_int;
    pub fn h2pool_config_set_expect_continue_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_reconnect_backoff(
        cfg: *mut h2pool_config,
        initial_ms: u32,
        max_ms: u32,
    ) -> c_int;
    pub fn h2pool_config_set_retry_backoff(
        cfg: *mut h2pool_config,
        initial_ms: u32,
        max_ms: u32,
    ) -> c_int;
    pub fn h2pool_config_set_retry_budget(cfg: *mut h2pool_config, burst: u32, percent: u32)
        -> c_int;
    pub fn h2pool_config_set_resolve_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_dns_servers(cfg: *mut h2pool_config, servers: *const c_char)
        -> c_int;
    pub fn h2pool_config_add_resolve(cfg: *mut h2pool_config, entry: *const c_char) -> c_int;
    pub fn h2pool_config_add_connect_to(cfg: *mut h2pool_config, entry: *const c_char) -> c_int;
    pub fn h2pool_config_set_unix_socket(cfg: *mut h2pool_config, path: *const c_char) -> c_int;
    pub fn h2pool_config_set_abstract_unix_socket(
        cfg: *mut h2pool_config,
        name: *const c_char,
    ) -> c_int;
    pub fn h2pool_config_set_local_address(cfg: *mut h2pool_config, address: *const c_char)
        -> c_int;
    pub fn h2pool_config_set_local_port_range(
        cfg: *mut h2pool_config,
        min_port: u32,
        max_port: u32,
    ) -> c_int;
    pub fn h2pool_config_set_interface(cfg: *mut h2pool_config, name: *const c_char) -> c_int;
    pub fn h2pool_config_set_tcp_keepalive(
        cfg: *mut h2pool_config,
        idle_s: u32,
        interval_s: u32,
        count: u32,
    ) -> c_int;
    pub fn h2pool_config_set_happy_eyeballs_delay_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_max_response_headers(
        cfg: *mut h2pool_config,
        max_bytes: u32,
        max_fields: u32,
    ) -> c_int;
    pub fn h2pool_config_set_decompression_limits(
        cfg: *mut h2pool_config,
        max_bytes: u64,
        max_ratio: u32,
    ) -> c_int;
    pub fn h2pool_config_set_tls_ca_file(cfg: *mut h2pool_config, path: *const c_char) -> c_int;
    pub fn h2pool_config_set_tls_ca_dir(cfg: *mut h2pool_config, path: *const c_char) -> c_int;
    pub fn h2pool_config_set_tls_client_cert(
        cfg: *mut h2pool_config,
        cert_file: *const c_char,
        key_file: *const c_char,
    ) -> c_int;
    pub fn h2pool_config_set_tls_min_version(cfg: *mut h2pool_config, version: c_int) -> c_int;
    pub fn h2pool_config_set_tls_insecure_skip_verify(
        cfg: *mut h2pool_config,
        insecure: c_int,
    ) -> c_int;
    pub fn h2pool_config_set_tls_handshake_timeout_ms(cfg: *mut h2pool_config, ms: u32) -> c_int;
    pub fn h2pool_config_set_proxy(cfg: *mut h2pool_config, url: *const c_char) -> c_int;
    pub fn h2pool_config_set_proxy_credentials(
        cfg: *mut h2pool_config,
        user: *const c_char,
        password: *const c_char,
    ) -> c_int;
    pub fn h2pool_config_set_noproxy(cfg: *mut h2pool_config, list: *const c_char) -> c_int;
    pub fn h2pool_config_use_proxy_env(cfg: *mut h2pool_config, use_env: c_int) -> c_int;
    pub fn h2pool_config_set_log(
        cfg: *mut h2pool_config,
        cb: h2pool_log_cb,
        level: c_int,
        user_data: *mut c_void,
    ) -> c_int;

    pub fn h2pool_create(cfg: *const h2pool_config, out: *mut *mut h2pool) -> c_int;
    pub fn h2pool_destroy(pool: *mut h2pool);
    pub fn h2pool_create_on_base(
        cfg: *const h2pool_config,
        base: *mut event_base,
        out: *mut *mut h2pool,
    ) -> c_int;
    pub fn h2pool_config_set_socket_callback(
        cfg: *mut h2pool_config,
        cb: h2pool_socket_cb,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn h2pool_config_set_timer_callback(
        cfg: *mut h2pool_config,
        cb: h2pool_timer_cb,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn h2pool_create_external(cfg: *const h2pool_config, out: *mut *mut h2pool) -> c_int;
    pub fn h2pool_socket_action(pool: *mut h2pool, fd: c_int, events: c_int) -> c_int;

    pub fn h2pool_request_opts_new(out: *mut *mut h2pool_request_opts) -> c_int;
    pub fn h2pool_request_opts_free(opts: *mut h2pool_request_opts);
    pub fn h2pool_request_opts_set_timeout_ms(opts: *mut h2pool_request_opts, ms: u32) -> c_int;

    pub fn h2pool_request_opts_set_body_reader(
        opts: *mut h2pool_request_opts,
        cb: h2pool_body_read_cb,
        content_length: i64,
    ) -> c_int;
    pub fn h2pool_request_opts_set_body_release(
        opts: *mut h2pool_request_opts,
        release: h2pool_body_release_cb,
    ) -> c_int;
    pub fn h2pool_request_opts_set_on_headers(
        opts: *mut h2pool_request_opts,
        cb: h2pool_headers_cb,
    ) -> c_int;
    pub fn h2pool_request_opts_set_on_data(
        opts: *mut h2pool_request_opts,
        cb: h2pool_data_cb,
    ) -> c_int;
    pub fn h2pool_request_opts_set_auto_decompress(
        opts: *mut h2pool_request_opts,
        enable: c_int,
    ) -> c_int;
    pub fn h2pool_request_opts_set_http_version(
        opts: *mut h2pool_request_opts,
        version: h2pool_http_version,
    ) -> c_int;
    pub fn h2pool_request_opts_set_priority(
        opts: *mut h2pool_request_opts,
        urgency: c_int,
        incremental: c_int,
    ) -> c_int;
    pub fn h2pool_request_opts_set_protocol(
        opts: *mut h2pool_request_opts,
        protocol: *const c_char,
    ) -> c_int;

    pub fn h2pool_request(
        pool: *mut h2pool,
        method: *const c_char,
        url: *const c_char,
        headers: *const h2pool_header,
        nheaders: usize,
        body: *const u8,
        body_len: usize,
        opts: *const h2pool_request_opts,
        cb: h2pool_response_cb,
        user_data: *mut c_void,
        out_id: *mut u64,
    ) -> c_int;
    pub fn h2pool_cancel(pool: *mut h2pool, id: u64) -> c_int;
    pub fn h2pool_request_resume_upload(pool: *mut h2pool, id: u64) -> c_int;
    pub fn h2pool_request_pause_download(pool: *mut h2pool, id: u64) -> c_int;
    pub fn h2pool_request_resume_download(pool: *mut h2pool, id: u64) -> c_int;
    pub fn h2pool_request_set_priority(
        pool: *mut h2pool,
        id: u64,
        urgency: c_int,
        incremental: c_int,
    ) -> c_int;

    pub fn h2pool_close_idle_connections(pool: *mut h2pool) -> c_int;
    pub fn h2pool_queue_create(out: *mut *mut h2pool_queue) -> c_int;
    pub fn h2pool_queue_shutdown(queue: *mut h2pool_queue) -> c_int;
    pub fn h2pool_queue_destroy(queue: *mut h2pool_queue);
    pub fn h2pool_queue_fd(queue: *const h2pool_queue) -> c_int;
    pub fn h2pool_queue_next(
        queue: *mut h2pool_queue,
        events: *mut *mut h2pool_event,
        max: usize,
        timeout_ms: c_int,
    ) -> c_int;
    pub fn h2pool_event_kind(ev: *const h2pool_event) -> c_int;
    pub fn h2pool_event_request_id(ev: *const h2pool_event) -> u64;
    pub fn h2pool_event_user_data(ev: *const h2pool_event) -> *mut c_void;
    pub fn h2pool_event_response(ev: *const h2pool_event) -> *const h2pool_response;
    pub fn h2pool_event_error(ev: *const h2pool_event) -> *const h2pool_error;
    pub fn h2pool_event_data(ev: *const h2pool_event, len: *mut usize) -> *const u8;
    pub fn h2pool_event_free(ev: *mut h2pool_event);
    pub fn h2pool_request_opts_set_queue_streaming(
        opts: *mut h2pool_request_opts,
        enable: c_int,
    ) -> c_int;
    pub fn h2pool_request_opts_set_queue_upload(
        opts: *mut h2pool_request_opts,
        enable: c_int,
        content_length: i64,
    ) -> c_int;
    pub fn h2pool_request_opts_set_queue_buffers(
        opts: *mut h2pool_request_opts,
        download_bytes: u32,
        upload_bytes: u32,
    ) -> c_int;
    pub fn h2pool_queue_request(
        pool: *mut h2pool,
        queue: *mut h2pool_queue,
        method: *const c_char,
        url: *const c_char,
        headers: *const h2pool_header,
        nheaders: usize,
        body: *const u8,
        body_len: usize,
        opts: *const h2pool_request_opts,
        user_data: *mut c_void,
        out_id: *mut u64,
    ) -> c_int;
    pub fn h2pool_request_write_body(
        pool: *mut h2pool,
        id: u64,
        data: *const u8,
        len: usize,
        accepted: *mut usize,
    ) -> c_int;
    pub fn h2pool_request_end_body(
        pool: *mut h2pool,
        id: u64,
        trailers: *const h2pool_header,
        ntrailers: usize,
    ) -> c_int;

    pub fn h2pool_response_status(resp: *const h2pool_response) -> c_int;
    pub fn h2pool_response_header_count(resp: *const h2pool_response) -> usize;
    pub fn h2pool_response_header_at(
        resp: *const h2pool_response,
        index: usize,
        out: *mut h2pool_header,
    ) -> c_int;
    pub fn h2pool_response_header(
        resp: *const h2pool_response,
        name: *const c_char,
        value_len: *mut usize,
    ) -> *const c_char;
    pub fn h2pool_response_trailer_count(resp: *const h2pool_response) -> usize;
    pub fn h2pool_response_trailer_at(
        resp: *const h2pool_response,
        index: usize,
        out: *mut h2pool_header,
    ) -> c_int;
    pub fn h2pool_response_trailer(
        resp: *const h2pool_response,
        name: *const c_char,
        value_len: *mut usize,
    ) -> *const c_char;
    pub fn h2pool_response_content_encoding(resp: *const h2pool_response) -> *const c_char;
    pub fn h2pool_response_body(resp: *const h2pool_response, len: *mut usize) -> *const u8;
    pub fn h2pool_response_stream_id(resp: *const h2pool_response) -> i32;
    pub fn h2pool_response_connection_id(resp: *const h2pool_response) -> u64;
    pub fn h2pool_response_request_id(resp: *const h2pool_response) -> u64;
    pub fn h2pool_response_protocol(resp: *const h2pool_response) -> c_int;
    pub fn h2pool_protocol_name(protocol: c_int) -> *const c_char;
    pub fn h2pool_response_reason(resp: *const h2pool_response) -> *const c_char;
    pub fn h2pool_response_timing_us(resp: *const h2pool_response, which: h2pool_timing) -> i64;
    pub fn h2pool_response_connection_reused(resp: *const h2pool_response) -> c_int;
    pub fn h2pool_response_remote_ip(resp: *const h2pool_response) -> *const c_char;
    pub fn h2pool_response_remote_port(resp: *const h2pool_response) -> c_int;
    pub fn h2pool_response_num_connects(resp: *const h2pool_response) -> c_int;
    pub fn h2pool_error_timing_us(err: *const h2pool_error, which: h2pool_timing) -> i64;
    pub fn h2pool_error_connection_reused(err: *const h2pool_error) -> c_int;
    pub fn h2pool_error_remote_ip(err: *const h2pool_error) -> *const c_char;
    pub fn h2pool_error_remote_port(err: *const h2pool_error) -> c_int;
    pub fn h2pool_error_num_connects(err: *const h2pool_error) -> c_int;

    pub fn h2pool_stats_get(pool: *mut h2pool, out: *mut *mut h2pool_stats) -> c_int;
    pub fn h2pool_stats_free(stats: *mut h2pool_stats);
    pub fn h2pool_stats_value(stats: *const h2pool_stats, which: h2pool_stat) -> u64;
    pub fn h2pool_stats_endpoint_count(stats: *const h2pool_stats) -> usize;
    pub fn h2pool_stats_endpoint_name(stats: *const h2pool_stats, index: usize) -> *const c_char;
    pub fn h2pool_stats_endpoint_value(
        stats: *const h2pool_stats,
        index: usize,
        which: h2pool_stat,
    ) -> u64;
    pub fn h2pool_stats_endpoint_state(stats: *const h2pool_stats, index: usize) -> c_int;
    pub fn h2pool_stats_endpoint_protocol(stats: *const h2pool_stats, index: usize) -> c_int;
}
