/*
 * h2pool - an HTTP/2 client connection pool.
 *
 * This is the only public header of libh2pool. It is plain C99 and declares
 * opaque handles, typed configuration setters, a callback-based request API
 * and stable negative error codes.
 *
 * Conventions used throughout:
 *
 *  - Every function that can fail returns an int: 0 (H2POOL_OK) on success or
 *    a negative H2POOL_ERR_* code. Codes are never renumbered; new ones may be
 *    added. h2pool_strerror() describes each.
 *  - Constructors write the new object through an out pointer. Destructors
 *    accept NULL.
 *  - Everything the caller passes in is copied before the function returns,
 *    unless the declaration says otherwise.
 *  - Everything the library passes to a callback is borrowed: valid only until
 *    the callback returns. Copy what you need to keep.
 *  - "Thread-safe" on a declaration means it may be called from any thread,
 *    concurrently with any other thread-safe call on the same object.
 *    Everything not so marked must not be called concurrently on the same
 *    object.
 */
#ifndef H2POOL_H
#define H2POOL_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(H2POOL_BUILDING_LIBRARY)
#define H2POOL_EXTERN __declspec(dllexport)
#else
#define H2POOL_EXTERN
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define H2POOL_EXTERN __attribute__((visibility("default")))
#else
#define H2POOL_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

/** Major version. Changes only with incompatible ABI changes (and SONAME). */
#define H2POOL_VERSION_MAJOR 0
/** Minor version: backwards-compatible additions. */
#define H2POOL_VERSION_MINOR 1
/** Patch version: fixes only. */
#define H2POOL_VERSION_PATCH 0
/** The version as a string, "MAJOR.MINOR.PATCH". */
#define H2POOL_VERSION_STRING "0.1.0"
/** The version as one number, 0xMMmmpp, for compile-time comparisons. */
#define H2POOL_VERSION_NUM                                                     \
  ((H2POOL_VERSION_MAJOR << 16) | (H2POOL_VERSION_MINOR << 8) |                \
   H2POOL_VERSION_PATCH)

/**
 * The version of the library loaded at run time, as 0xMMmmpp. If `str` is not
 * NULL it receives a static "MAJOR.MINOR.PATCH" string. Compare with
 * H2POOL_VERSION_NUM to detect a header/library mismatch (the major versions
 * must agree). Thread-safe.
 */
H2POOL_EXTERN uint32_t h2pool_version(const char **str);

/**
 * The content-encodings this build decodes, as the static string it sends
 * as accept-encoding (see h2pool_request_opts_set_auto_decompress()):
 * "gzip, deflate", followed by ", br" when built with libbrotlidec and by
 * ", zstd" when built with libzstd ("gzip, deflate, br, zstd" with both).
 * Never NULL; do not free. Thread-safe.
 */
H2POOL_EXTERN const char *h2pool_supported_encodings(void);

/* ------------------------------------------------------------------------ */
/* Error codes                                                               */
/* ------------------------------------------------------------------------ */

/**
 * Stable error codes. Zero is success; every error is negative. A code's
 * number never changes once released.
 */
typedef enum h2pool_code {
  H2POOL_OK = 0,
  /** An argument was NULL, out of range or otherwise unusable. */
  H2POOL_ERR_INVALID_ARGUMENT = -1,
  /** Memory allocation failed. */
  H2POOL_ERR_NOMEM = -2,
  /** The URL is not an absolute http:// or https:// URL with a host. */
  H2POOL_ERR_INVALID_URL = -3,
  /** The URL's scheme is neither http nor https. */
  H2POOL_ERR_UNSUPPORTED_SCHEME = -4,
  /** A header name or value is invalid, or the header may not be sent
   *  over HTTP/2 (connection-specific or pseudo-header). */
  H2POOL_ERR_INVALID_HEADER = -5,
  /** The method is not a valid HTTP token. */
  H2POOL_ERR_INVALID_METHOD = -6,
  /** Too many requests are waiting for a stream (see
   *  h2pool_config_set_max_pending_requests()). Nothing was queued. */
  H2POOL_ERR_QUEUE_FULL = -7,
  /** The pool is shutting down: returned synchronously once
   *  h2pool_destroy() has begun, and delivered to requests that could not
   *  finish before it completed. */
  H2POOL_ERR_POOL_CLOSED = -8,
  /** The host name could not be resolved. */
  H2POOL_ERR_RESOLVE = -9,
  /** Every address of the host refused or failed the TCP connection. */
  H2POOL_ERR_CONNECT = -10,
  /** The TCP connection was not established within the connect timeout. */
  H2POOL_ERR_CONNECT_TIMEOUT = -11,
  /** The server did not send its SETTINGS within the SETTINGS timeout. */
  H2POOL_ERR_SETTINGS_TIMEOUT = -12,
  /** The request did not complete within its timeout (which includes time
   *  spent waiting for a connection or stream slot). */
  H2POOL_ERR_TIMEOUT = -13,
  /** The request was cancelled with h2pool_cancel(). */
  H2POOL_ERR_CANCELLED = -14,
  /** The connection closed or failed while the request was in flight. */
  H2POOL_ERR_CONNECTION_LOST = -15,
  /** The server sent GOAWAY with an error code, or kept refusing the
   *  request on new connections until the retry limit was reached. */
  H2POOL_ERR_GOAWAY = -16,
  /** The server reset the stream (RST_STREAM); see h2pool_error_http2_code().
   */
  H2POOL_ERR_STREAM_RESET = -17,
  /** The server refused the stream (REFUSED_STREAM) more often than the
   *  retry limit allows. */
  H2POOL_ERR_REFUSED_STREAM = -18,
  /** The server violated the HTTP/2 protocol. */
  H2POOL_ERR_PROTOCOL = -19,
  /** The feature or URL is not supported by this build or version. */
  H2POOL_ERR_NOT_SUPPORTED = -20,
  /** The response exceeded a configured limit (headers or body size). */
  H2POOL_ERR_RESPONSE_TOO_LARGE = -21,
  /** The function was called from a thread where it is not allowed. */
  H2POOL_ERR_WRONG_THREAD = -22,
  /** An operating-system call failed (the message says which). */
  H2POOL_ERR_SYSTEM = -23,
  /** An unexpected internal failure; please report it. */
  H2POOL_ERR_INTERNAL = -24,
  /** The TLS configuration is unusable: a CA file or directory, client
   *  certificate or key could not be loaded (h2pool_create() returns it). */
  H2POOL_ERR_TLS_CONFIG = -25,
  /** The TLS handshake failed (protocol version, cipher, alert from the
   *  server, or a non-TLS server); the message has OpenSSL's reason. */
  H2POOL_ERR_TLS_HANDSHAKE = -26,
  /** The server's certificate failed verification (untrusted, expired,
   *  wrong host name, ...); the message has OpenSSL's reason. */
  H2POOL_ERR_TLS_VERIFY = -27,
  /** The server did not select a protocol the request may speak in ALPN:
   *  not "h2" when HTTP/2 is required (see h2pool_config_set_http_version()),
   *  or one h2pool does not speak. No request was sent. */
  H2POOL_ERR_TLS_ALPN = -28,
  /** The TLS handshake did not finish within the handshake timeout. */
  H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT = -29,
  /** The response headers did not arrive within the response-header
   *  timeout after the request was sent. The stream was reset with CANCEL;
   *  the connection stays in use. */
  H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT = -30,
  /** Decoding the response's content-encoding exceeded a limit (total
   *  decoded size, expansion ratio or number of chained encodings). */
  H2POOL_ERR_DECOMPRESSION_BOMB = -31,
  /** The response's content-encoding could not be decoded (bad header or
   *  checksum, truncated stream, trailing garbage). */
  H2POOL_ERR_DECODE = -32,
  /** A streaming callback (on_headers or on_data) asked to abort. */
  H2POOL_ERR_ABORTED = -33,
  /** The request body read callback reported an error. */
  H2POOL_ERR_BODY_SOURCE = -34,
  /** The host name lookup did not finish within the resolve timeout (see
   *  h2pool_config_set_resolve_timeout_ms()). */
  H2POOL_ERR_RESOLVE_TIMEOUT = -35,
  /** The completion queue was shut down (h2pool_queue_shutdown()): it takes
   *  no new request, and h2pool_queue_next() returns this code once every
   *  event has been taken. */
  H2POOL_ERR_QUEUE_CLOSED = -36,
  /** No request with this id is under way on this pool in a form the call
   *  applies to: it never existed, it has completed, it does not stream its
   *  body through the queue, or its body was already ended. */
  H2POOL_ERR_NO_SUCH_REQUEST = -37,
  /** An HTTP/1.1 response broke the message syntax: a malformed status
   *  line, header field or chunked framing, or framing an intermediary
   *  could read differently (conflicting Content-Length fields,
   *  Content-Length with Transfer-Encoding, a transfer coding other than
   *  chunked, a bare LF, obs-fold). The connection is closed. */
  H2POOL_ERR_MALFORMED_RESPONSE = -38,
  /** An HTTP/1.1 response's header section (or trailer section) exceeded
   *  the header limits (see h2pool_config_set_max_response_headers()) or
   *  the parser's own 80 KiB bound. The connection is closed. */
  H2POOL_ERR_HEADER_SECTION_TOO_LARGE = -39,
  /** An HTTP/1.1 connection closed after part of the response had
   *  arrived but before all of it (a body shorter than its Content-Length,
   *  a chunked body without its last chunk). Never retried. */
  H2POOL_ERR_INCOMPLETE_RESPONSE = -40,
  /** The proxy (h2pool_config_set_proxy()) could not be reached: its name
   *  did not resolve, the TCP connection to it failed or timed out, or the
   *  tunnel through it was not set up within the connect timeout. Counts
   *  as a failed connection, like H2POOL_ERR_CONNECT. */
  H2POOL_ERR_PROXY_CONNECT = -41,
  /** The proxy wants other credentials: an HTTP proxy answered CONNECT
   *  with 407 (the message names the status and the authentication scheme
   *  of its Proxy-Authenticate field), or a SOCKS5 proxy rejected the user
   *  name and password or accepts none of the methods offered. */
  H2POOL_ERR_PROXY_AUTH = -42,
  /** The proxy would not open the tunnel: an HTTP proxy answered CONNECT
   *  with a status other than 2xx and 407 (the message has the status and
   *  reason), or a SOCKS5 proxy sent a failure reply (the message names
   *  it: "connection refused by destination", "host unreachable", ...). */
  H2POOL_ERR_PROXY_REFUSED = -43,
  /** The proxy closed the connection while the tunnel was being set up,
   *  before it answered. (A tunnel that closes once it is up is an
   *  ordinary H2POOL_ERR_CONNECTION_LOST.) */
  H2POOL_ERR_PROXY_CLOSED = -44,
  /** The proxy's answer was not HTTP/1.1 (or not SOCKS5): a malformed or
   *  oversized (16 KiB) CONNECT response head, a wrong SOCKS version, an
   *  authentication method that was not offered. */
  H2POOL_ERR_PROXY_PROTOCOL = -45,
  /** An extended CONNECT request (h2pool_request_opts_set_protocol())
   *  could not be sent: the server's SETTINGS did not include
   *  SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 8441 section 3), or the
   *  connection speaks HTTP/1.1, which has no extended CONNECT. Nothing was
   *  sent; the connection carries on with other requests. */
  H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED = -48
} h2pool_code;

/**
 * A static, human-readable description of an H2POOL_ERR_* code (or of
 * H2POOL_OK). Unknown codes yield "unknown error". Never NULL. Thread-safe.
 */
H2POOL_EXTERN const char *h2pool_strerror(int code);

/**
 * The error delivered to a completion callback. Opaque; read it with the
 * accessors below. Borrowed: valid only during the callback.
 */
typedef struct h2pool_error h2pool_error;

/** The H2POOL_ERR_* code; H2POOL_ERR_INVALID_ARGUMENT if `err` is NULL. */
H2POOL_EXTERN int h2pool_error_code(const h2pool_error *err);

/**
 * The HTTP/2 error code (RFC 9113 section 7) carried by RST_STREAM or GOAWAY,
 * or -1 when the error did not come with one.
 */
H2POOL_EXTERN int64_t h2pool_error_http2_code(const h2pool_error *err);

/** The HTTP/2 stream id the request was on, or 0 if it never got one. */
H2POOL_EXTERN int32_t h2pool_error_stream_id(const h2pool_error *err);

/**
 * The last-stream-id of the GOAWAY that ended the request's connection, or -1
 * when no GOAWAY was involved.
 */
H2POOL_EXTERN int64_t
h2pool_error_goaway_last_stream_id(const h2pool_error *err);

/**
 * A human-readable message with the details (never NULL; "" if `err` is
 * NULL). Borrowed: valid during the callback.
 */
H2POOL_EXTERN const char *h2pool_error_message(const h2pool_error *err);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

/** Log levels, most severe first. A level lets through itself and above. */
typedef enum h2pool_log_level {
  H2POOL_LOG_NONE = 0,
  H2POOL_LOG_ERROR = 1,
  H2POOL_LOG_WARN = 2,
  H2POOL_LOG_INFO = 3,
  H2POOL_LOG_DEBUG = 4
} h2pool_log_level;

/**
 * Receives log messages. `msg` is NUL-terminated, without a trailing newline,
 * and borrowed for the call. Called on the pool's loop thread, or on the
 * thread calling h2pool_create()/h2pool_destroy(), never on a thread calling
 * any other function: why h2pool_request() refused a request is logged (at
 * H2POOL_LOG_DEBUG) afterwards, from the loop thread, and refusals that come
 * faster than the loop logs them are summed up in one message ("... and N
 * more requests refused since"). It must not block and must not call
 * h2pool_destroy(). A pool's last message is "pool destroyed" (at
 * H2POOL_LOG_DEBUG), logged once everything the pool owned is freed: after
 * it the pool never calls into the program again, so a pool destroyed from
 * a completion callback, which is freed later on the loop thread, has truly
 * gone once its log callback has seen it.
 */
typedef void (*h2pool_log_cb)(int level, const char *msg, void *user_data);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/**
 * Pool configuration: an opaque object with one typed setter per option.
 * h2pool_create() copies it, so one config may create many pools and may be
 * freed right after. Not thread-safe: do not share one config object between
 * threads while setting options.
 */
typedef struct h2pool_config h2pool_config;

/** Creates a configuration holding every default. Free with
 *  h2pool_config_free(). */
H2POOL_EXTERN int h2pool_config_new(h2pool_config **out);

/** Frees a configuration. Accepts NULL. */
H2POOL_EXTERN void h2pool_config_free(h2pool_config *cfg);

/** Maximum connections per endpoint (scheme, host, port). Default 10; 1 to
 *  10000. */
H2POOL_EXTERN int
h2pool_config_set_max_connections_per_endpoint(h2pool_config *cfg, uint32_t n);

/**
 * Local cap on concurrent streams per connection. The effective capacity is
 * the smaller of this and the server's SETTINGS_MAX_CONCURRENT_STREAMS.
 * 0 (the default) means "whatever the server allows", or 1000 streams when
 * the server announces no limit.
 */
H2POOL_EXTERN int h2pool_config_set_max_concurrent_streams(h2pool_config *cfg,
                                                           uint32_t n);

/**
 * Maximum number of accepted requests still waiting for a stream (not yet
 * sent). Beyond it h2pool_request() fails with H2POOL_ERR_QUEUE_FULL.
 * Default 100000; at least 1.
 */
H2POOL_EXTERN int h2pool_config_set_max_pending_requests(h2pool_config *cfg,
                                                         uint32_t n);

/** TCP connect timeout per address tried, in milliseconds. Default 10000;
 *  at least 1. */
H2POOL_EXTERN int h2pool_config_set_connect_timeout_ms(h2pool_config *cfg,
                                                       uint32_t ms);

/**
 * How long a new connection waits for the server's first SETTINGS frame, in
 * milliseconds. Default 10000; at least 1.
 */
H2POOL_EXTERN int h2pool_config_set_settings_timeout_ms(h2pool_config *cfg,
                                                        uint32_t ms);

/**
 * Default total time allowed for a request, from h2pool_request() to the end
 * of the response, queueing included, in milliseconds. 0 (the default) means
 * no limit. A request may override it (h2pool_request_opts_set_timeout_ms()).
 */
H2POOL_EXTERN int h2pool_config_set_request_timeout_ms(h2pool_config *cfg,
                                                       uint32_t ms);

/** A connection with no streams for this long is closed, in milliseconds.
 *  Default 60000; 0 keeps idle connections open. */
H2POOL_EXTERN int h2pool_config_set_idle_timeout_ms(h2pool_config *cfg,
                                                    uint32_t ms);

/**
 * A connection older than this takes no new streams and closes once its
 * streams finish, in milliseconds. Default 300000; 0 means no limit.
 */
H2POOL_EXTERN int h2pool_config_set_max_lifetime_ms(h2pool_config *cfg,
                                                    uint32_t ms);

/**
 * Time allowed from sending a request until its response headers arrive, in
 * milliseconds; beyond it the request fails with
 * H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT. 0 (the default) means no limit.
 */
H2POOL_EXTERN int
h2pool_config_set_response_header_timeout_ms(h2pool_config *cfg, uint32_t ms);

/**
 * Health checking: when nothing has been read from a connection for
 * `interval_ms`, it sends a PING; if the ACK does not arrive within
 * `timeout_ms`, the connection is closed and its streams fail with
 * H2POOL_ERR_CONNECTION_LOST. Defaults 30000 and 10000; `interval_ms` 0
 * disables PINGs; `timeout_ms` at least 1.
 */
H2POOL_EXTERN int h2pool_config_set_ping(h2pool_config *cfg,
                                         uint32_t interval_ms,
                                         uint32_t timeout_ms);

/**
 * The stale-connection check (Chrome's "connection at risk"): a request
 * placed on an HTTP/2 connection from which nothing has been read for
 * `after_idle_ms` goes out together with a PING. If nothing at all arrives
 * on the connection within `deadline_ms` of it, the connection is closed:
 * a NAT mapping or firewall state that expired, or a server gone without a
 * FIN, would otherwise hold the request until TCP gives up, minutes later.
 * Requests sent with that PING or after it that received nothing are then
 * sent again on another connection, whatever their method, as for a
 * refused stream (nothing came back on the connection since, so the
 * request most likely never reached the server; that cannot be proven when
 * only the path back failed). Other requests on the connection fail with
 * H2POOL_ERR_CONNECTION_LOST. Defaults 10000 and 5000: on, since the cost
 * is one PING after a quiet spell and a live server answers a PING at once
 * whatever its requests cost it. `after_idle_ms` 0 turns the check off;
 * `deadline_ms` at least 1. HTTP/1.1 connections are not checked.
 */
H2POOL_EXTERN int h2pool_config_set_stale_check(h2pool_config *cfg,
                                                uint32_t after_idle_ms,
                                                uint32_t deadline_ms);

/**
 * A connection that has carried this many streams takes no more and closes
 * once they finish (the pool opens another). 0 (the default) means no limit.
 */
H2POOL_EXTERN int
h2pool_config_set_max_requests_per_connection(h2pool_config *cfg, uint32_t n);

/**
 * How many failed connections a request may live through before it fails.
 *
 * A connection that fails during setup (resolve, TCP, TLS, SETTINGS) while
 * no other connection of its endpoint is being set up or ready fails the
 * requests waiting for it at once, with its error.
 *
 * A connection that became ready and then closed before it served any
 * response (the server sent GOAWAY, broke the protocol or hung up) counts
 * once for every request that was on it and, when no other connection was
 * ready, for every request queued for its endpoint; so does, with
 * h2pool_config_set_retry_idempotent(), a lost connection for the requests
 * it carried. Past `n` such connections a request fails with the error of
 * the last one (H2POOL_ERR_GOAWAY with the code, for a server that sent
 * GOAWAY). Default 3; at most 100.
 *
 * Requests the server provably did not process (REFUSED_STREAM, or a
 * stream above a GOAWAY's last stream id) are sent again whatever their
 * method; they are not limited by this count but by their deadline and by
 * the endpoint's retry budget (h2pool_config_set_retry_budget()).
 */
H2POOL_EXTERN int h2pool_config_set_max_retries(h2pool_config *cfg, uint32_t n);

/**
 * Reconnect pacing: after a connection to an endpoint failed (see
 * h2pool_config_set_max_retries()), the endpoint opens no new connection
 * for a random time between half and all of min(`max_ms`, `initial_ms` *
 * 2^(n-1)), n being the number of failed connections in a row; until a
 * connection serves again, only one is set up at a time. Requests submitted
 * meanwhile wait for the next attempt (within their own timeout). Defaults
 * 100 and 10000; `initial_ms` at least 1, `max_ms` at least `initial_ms`.
 */
H2POOL_EXTERN int h2pool_config_set_reconnect_backoff(h2pool_config *cfg,
                                                      uint32_t initial_ms,
                                                      uint32_t max_ms);

/**
 * Pacing of refused requests: a request the server refused
 * (REFUSED_STREAM) is sent again after a random time between half and all
 * of min(`max_ms`, `initial_ms` * 2^(n-1)), n being how often it was sent
 * back; a retry that would end after the request's deadline is not made
 * (the request fails with H2POOL_ERR_REFUSED_STREAM). Defaults 10 and
 * 1000; `initial_ms` at least 1, `max_ms` at least `initial_ms`.
 */
H2POOL_EXTERN int h2pool_config_set_retry_backoff(h2pool_config *cfg,
                                                  uint32_t initial_ms,
                                                  uint32_t max_ms);

/**
 * The per-endpoint retry budget for refused requests, a token bucket as in
 * gRPC's retry throttling: it holds at most `burst` retries and starts
 * full; every retry of a refused request takes one, every completed
 * response gives back `percent`/100 of one. A refused request that finds
 * the bucket empty waits for it while the endpoint has anything in flight
 * that could refill it, and otherwise fails with
 * H2POOL_ERR_REFUSED_STREAM. So a server that sheds load by refusing
 * streams gets at most `burst` more retries than its completed responses
 * pay for. Defaults 10 and 200; `burst` 0 (no retries of refused requests)
 * to 100000, `percent` at most 10000.
 */
H2POOL_EXTERN int h2pool_config_set_retry_budget(h2pool_config *cfg,
                                                 uint32_t burst,
                                                 uint32_t percent);

/**
 * Time allowed for looking up a host name, in milliseconds; beyond it the
 * connection fails with H2POOL_ERR_RESOLVE_TIMEOUT. Lookups run on the
 * pool's loop thread (c-ares), any number at once, so a slow name delays
 * only its own endpoint. /etc/hosts is read first, then DNS is asked for A
 * and AAAA records in parallel; answers are cached for their TTL (at most
 * 60 s, at most 512 names; a name that does not exist is remembered for
 * 1 s). Default 10000; at least 1.
 */
H2POOL_EXTERN int h2pool_config_set_resolve_timeout_ms(h2pool_config *cfg,
                                                       uint32_t ms);

/**
 * The DNS servers to ask instead of those in /etc/resolv.conf, as curl's
 * --dns-servers: a comma-separated list of IPv4 or IPv6 addresses, each
 * with an optional port ("127.0.0.1:5353,[::1]:5353"; port 53 if none).
 * NULL or "" restores the system's servers. The string is copied.
 * H2POOL_ERR_INVALID_ARGUMENT on bad syntax (the setting is then unchanged).
 */
H2POOL_EXTERN int h2pool_config_set_dns_servers(h2pool_config *cfg,
                                                const char *servers);

/**
 * Adds a fixed answer for a host and port, as curl's --resolve:
 * "HOST:PORT:ADDR[,ADDR]..." (IPv6 addresses may be in brackets). Requests
 * to that host and port connect to these addresses without a lookup; TLS
 * (SNI and certificate verification) and :authority still use HOST. Names
 * compare case-insensitively; the first matching entry wins. NULL removes
 * every entry added. The string is copied. H2POOL_ERR_INVALID_ARGUMENT on
 * bad syntax.
 */
H2POOL_EXTERN int h2pool_config_add_resolve(h2pool_config *cfg,
                                            const char *entry);

/**
 * Adds a connection redirect, as curl's --connect-to:
 * "HOST1:PORT1:HOST2:PORT2". Requests to HOST1:PORT1 connect to
 * HOST2:PORT2 instead (which --resolve entries, DNS or an IP literal then
 * turn into addresses), while SNI, certificate verification and
 * :authority still use the request's own host. An empty HOST1 or PORT1
 * matches any; an empty HOST2 or PORT2 keeps the request's. The first
 * matching entry wins. NULL removes every entry added. The string is
 * copied. H2POOL_ERR_INVALID_ARGUMENT on bad syntax.
 *
 * Overrides are per pool and pooled connections are per origin, so two
 * origins never share a connection, whatever their overrides.
 */
H2POOL_EXTERN int h2pool_config_add_connect_to(h2pool_config *cfg,
                                               const char *entry);

/**
 * Every connection of the pool goes to this Unix domain socket instead of
 * TCP, as curl's --unix-socket; the URL's scheme (h2c or TLS) and host
 * (:authority, SNI, certificate verification) are used as usual. NULL or
 * "" goes back to TCP. A path longer than 107 bytes is
 * H2POOL_ERR_INVALID_ARGUMENT. A socket that does not exist or refuses
 * fails the connection with H2POOL_ERR_CONNECT naming the path. The
 * string is copied. Replaces an abstract socket set before.
 */
H2POOL_EXTERN int h2pool_config_set_unix_socket(h2pool_config *cfg,
                                                const char *path);

/**
 * As h2pool_config_set_unix_socket(), for a socket in Linux's abstract
 * namespace: `name` is the name without its leading NUL byte (curl's
 * --abstract-unix-socket); messages show it as "@name". At most 107 bytes.
 */
H2POOL_EXTERN int h2pool_config_set_abstract_unix_socket(h2pool_config *cfg,
                                                         const char *name);

/**
 * The local IP address TCP connections are made from (curl's --interface
 * with an address). Addresses of the other family cannot be reached then:
 * their attempts fail with H2POOL_ERR_CONNECT. NULL or "" lets the kernel
 * choose (the default). H2POOL_ERR_INVALID_ARGUMENT if not an IP literal.
 */
H2POOL_EXTERN int h2pool_config_set_local_address(h2pool_config *cfg,
                                                  const char *address);

/**
 * The local port range TCP connections bind to, as curl's --local-port:
 * the first free port from `min_port` to `max_port` is used, and a
 * connection fails with H2POOL_ERR_CONNECT if none is free. 0, 0 (the
 * default) lets the kernel choose. `min_port` at least 1 and at most
 * `max_port`, which is at most 65535.
 */
H2POOL_EXTERN int h2pool_config_set_local_port_range(h2pool_config *cfg,
                                                     uint32_t min_port,
                                                     uint32_t max_port);

/**
 * Binds TCP connections to a network device (SO_BINDTODEVICE; curl's
 * --interface with a name), such as "eth1". Needs CAP_NET_RAW on most
 * kernels; without it connections fail with H2POOL_ERR_CONNECT and the
 * reason. NULL or "" (the default): any device. Shorter than 16 bytes.
 */
H2POOL_EXTERN int h2pool_config_set_interface(h2pool_config *cfg,
                                              const char *name);

/**
 * TCP keepalive on every TCP connection: the first probe after `idle_s`
 * seconds without traffic, then every `interval_s` seconds, and the
 * connection is dropped after `count` unanswered probes (0 for either:
 * the kernel's default). `idle_s` 0 (the default) leaves keepalive off;
 * then the others must be 0 too. At most 32767, 32767 and 127. Cheaper
 * than the HTTP/2 PING check (h2pool_config_set_ping()) and also covers
 * HTTP/1.1, but it only proves the peer's kernel is alive.
 */
H2POOL_EXTERN int h2pool_config_set_tcp_keepalive(h2pool_config *cfg,
                                                  uint32_t idle_s,
                                                  uint32_t interval_s,
                                                  uint32_t count);

/**
 * Happy Eyeballs (RFC 8305): when a name has several addresses (IPv6 and
 * IPv4 interleaved, IPv6 first), a new connection attempt starts every
 * `ms` milliseconds while earlier ones are still connecting; the first to
 * connect wins and the others are closed. An attempt that fails starts
 * the next one at once. Each attempt has the connect timeout of
 * h2pool_config_set_connect_timeout_ms(). 0 tries one address at a time.
 * Default 250 (RFC 8305's recommendation); at most 60000.
 */
H2POOL_EXTERN int h2pool_config_set_happy_eyeballs_delay_ms(h2pool_config *cfg,
                                                            uint32_t ms);

/**
 * With a non-zero `enable`, requests with an idempotent method (GET, HEAD,
 * OPTIONS, PUT, DELETE, TRACE) whose connection was lost before any response
 * header arrived are retried on a new connection, within the retry limit.
 * Off by default: the server may have acted on the request.
 */
H2POOL_EXTERN int h2pool_config_set_retry_idempotent(h2pool_config *cfg,
                                                     int enable);

/**
 * Connection coalescing (RFC 9113 section 9.1.1, as browsers and OkHttp
 * do it). On by default; a zero `enabled` turns it off, and every origin
 * then gets connections of its own.
 *
 * A request for https://b:port goes on an existing HTTP/2 connection
 * opened for another origin https://a:port when all of these hold:
 *  - that connection's server certificate verified and is valid for b
 *    (the same name rules as the handshake; never under
 *    h2pool_config_set_tls_insecure_skip_verify());
 *  - b resolves (through the pool's resolver, --resolve and --connect-to
 *    overrides included) to the address and port the connection is
 *    connected to; or, once the server sent an ORIGIN frame (RFC 8336),
 *    b is in the connection's origin set (its own origin plus those the
 *    frames listed, at most 64), whatever DNS says;
 *  - the same port, the same HTTP version setting, no proxy (requests
 *    through a proxy are never coalesced), and not a Unix socket.
 * A server that answers such a request with 421 (Misdirected Request) is
 * taken at its word: the request goes again, once and whatever its method,
 * on a connection of its own origin, the caller sees only that final
 * response, and b is not sent to that connection again.
 * H2POOL_STAT_REQUESTS_COALESCED counts the requests placed this way.
 */
H2POOL_EXTERN int h2pool_config_set_coalescing(h2pool_config *cfg, int enabled);

/** Which HTTP version to speak; see h2pool_config_set_http_version(). */
typedef enum h2pool_http_version {
  /** https://: offer ALPN "h2" and "http/1.1" and speak what the server
   *  selects (HTTP/1.1 also when it selects nothing). http://: HTTP/2 with
   *  prior knowledge (h2c). The default. */
  H2POOL_HTTP_VERSION_DEFAULT = 0,
  /** HTTP/1.1 only: ALPN "http/1.1" over TLS, plain HTTP/1.1 over
   *  cleartext. */
  H2POOL_HTTP_VERSION_1_1 = 1,
  /** HTTP/2 only: ALPN "h2" over TLS (a server that does not select it
   *  fails with H2POOL_ERR_TLS_ALPN), h2c with prior knowledge over
   *  cleartext. */
  H2POOL_HTTP_VERSION_2 = 2
} h2pool_http_version;

/**
 * The HTTP version requests speak unless their options say otherwise (see
 * h2pool_request_opts_set_http_version()). An HTTP/2 connection carries
 * many requests at once; an HTTP/1.1 connection carries one at a time
 * (no pipelining) and is kept alive for the next one when the server
 * allows it and the response was read in full, so an HTTP/1.1 endpoint
 * opens up to h2pool_config_set_max_connections_per_endpoint() connections
 * to serve its queue. Each endpoint remembers what its server spoke (see
 * h2pool_stats_endpoint_protocol()). Returns H2POOL_ERR_INVALID_ARGUMENT
 * for an unknown `version`.
 */
H2POOL_EXTERN int h2pool_config_set_http_version(h2pool_config *cfg,
                                                 h2pool_http_version version);

/**
 * How long an HTTP/1.1 request that carries "expect: 100-continue" and a
 * body waits for the server's 100 (Continue) before sending the body
 * anyway, in milliseconds. Default 1000; 0 sends the body without waiting.
 * A final response that arrives first is the answer: the body is then not
 * sent and the connection is closed after the response.
 */
H2POOL_EXTERN int
h2pool_config_set_expect_continue_timeout_ms(h2pool_config *cfg, uint32_t ms);

/**
 * Limits on a response's header block (status line and trailers included):
 * total bytes (names + values + 32 per field, as RFC 7541 counts) and number
 * of fields. Beyond either the request fails with
 * H2POOL_ERR_RESPONSE_TOO_LARGE (over HTTP/1.1:
 * H2POOL_ERR_HEADER_SECTION_TOO_LARGE, and the HTTP/1.1 parser's own bound
 * of 80 KiB applies too). Defaults 262144 bytes and 1000 fields; both at
 * least 1.
 */
H2POOL_EXTERN int h2pool_config_set_max_response_headers(h2pool_config *cfg,
                                                         uint32_t max_bytes,
                                                         uint32_t max_fields);

/**
 * HTTP/2 flow-control windows h2pool advertises for response data: per
 * stream (SETTINGS_INITIAL_WINDOW_SIZE) and per connection (WINDOW_UPDATE
 * on stream 0). The server may have this much response data in flight
 * before h2pool has handed it on; large windows keep bulk downloads from
 * stalling on round trips, small ones bound the memory a paused or slow
 * consumer can be sent. With adaptive windows (the default, see
 * h2pool_config_set_adaptive_window()) these are the caps the windows grow
 * to; without, every connection advertises them from the start. Defaults
 * 8 MiB per stream and 64 MiB per connection; stream_bytes from 1,
 * connection_bytes from 65535 (the protocol's initial value), both at most
 * 2^31 - 1.
 */
H2POOL_EXTERN int h2pool_config_set_flow_control_windows(
    h2pool_config *cfg, uint32_t stream_bytes, uint32_t connection_bytes);

/**
 * Adaptive HTTP/2 flow-control windows (bandwidth-delay product estimation,
 * as gRPC and hyper do it). On by default; a zero `enabled` turns it off.
 *
 * A connection starts with a 256 KiB stream window and a 1 MiB connection
 * window (or the caps of h2pool_config_set_flow_control_windows(), if
 * smaller). Each time 64 KiB of response data has arrived since the last
 * probe, a PING (payload "h2poolBD") measures one round trip; when the data
 * of that round trip was most of what the window lets flow (half of it is
 * returned at a time), the window is what limits the transfer, and the
 * stream window grows to four times what was measured (the connection's to
 * twice the stream's), up
 * to the caps: a SETTINGS frame raises every stream's window, open ones
 * included, and a WINDOW_UPDATE the connection's. So a download over a long
 * fat pipe is not held to window / RTT, while a connection that never needs
 * more keeps small windows, and a paused or slow stream can be sent no
 * more than that. Probes that do not grow the window come at most every
 * 100 ms, then ever further apart (up to 10 s); at the caps, none.
 * Windows never shrink. H2POOL_STAT_PEAK_STREAM_WINDOW shows how far they
 * grew. HTTP/1.1 connections are unaffected.
 */
H2POOL_EXTERN int h2pool_config_set_adaptive_window(h2pool_config *cfg,
                                                    int enabled);

/**
 * Maximum bytes of a response body kept in memory; a larger body fails the
 * request with H2POOL_ERR_RESPONSE_TOO_LARGE. Default 1 GiB; at least 1.
 */
H2POOL_EXTERN int h2pool_config_set_max_response_body_bytes(h2pool_config *cfg,
                                                            uint64_t n);

/** TLS protocol versions for h2pool_config_set_tls_min_version(). */
typedef enum h2pool_tls_version {
  H2POOL_TLS_VERSION_1_2 = 0x0303,
  H2POOL_TLS_VERSION_1_3 = 0x0304
} h2pool_tls_version;

/**
 * PEM file of CA certificates to trust for https:// servers, instead of the
 * system's trust store. NULL restores the default. The file is read by
 * h2pool_create(), which fails with H2POOL_ERR_TLS_CONFIG if it cannot be
 * loaded. The path is copied.
 */
H2POOL_EXTERN int h2pool_config_set_tls_ca_file(h2pool_config *cfg,
                                                const char *path);

/**
 * Directory of hashed CA certificates (as made by `openssl rehash`) to trust,
 * instead of the system's trust store. NULL restores the default. Checked by
 * h2pool_create(). The path is copied.
 */
H2POOL_EXTERN int h2pool_config_set_tls_ca_dir(h2pool_config *cfg,
                                               const char *path);

/**
 * Client certificate chain and private key (PEM files) for servers that ask
 * for one (mutual TLS). Both NULL removes them; otherwise both are required.
 * Loaded and checked against each other by h2pool_create(). Paths are copied.
 */
H2POOL_EXTERN int h2pool_config_set_tls_client_cert(h2pool_config *cfg,
                                                    const char *cert_file,
                                                    const char *key_file);

/** Lowest TLS version accepted (an h2pool_tls_version). Default 1.2. */
H2POOL_EXTERN int h2pool_config_set_tls_min_version(h2pool_config *cfg,
                                                    int version);

/**
 * With a non-zero `insecure`, server certificates are NOT verified: any
 * server can impersonate any other. For tests against self-signed servers
 * only. The pool logs a warning (once) when it is created so. Default 0.
 */
H2POOL_EXTERN int h2pool_config_set_tls_insecure_skip_verify(h2pool_config *cfg,
                                                             int insecure);

/** Time allowed for the TLS handshake after the TCP connection is up, in
 *  milliseconds. Default 10000; at least 1. */
H2POOL_EXTERN int h2pool_config_set_tls_handshake_timeout_ms(h2pool_config *cfg,
                                                             uint32_t ms);

/**
 * Limits on automatic decompression (see
 * h2pool_request_opts_set_auto_decompress()): at most `max_bytes` of decoded
 * body, and, once more than 1 MiB has been decoded, at most `max_ratio`
 * decoded bytes per received byte. Beyond either the request fails with
 * H2POOL_ERR_DECOMPRESSION_BOMB. Defaults 100 MiB and 100; both at least 1.
 * At most 5 chained encodings are decoded. With chained encodings the limits
 * apply to the output of every decoding step, not only to the final body:
 * no step may produce more than `max_bytes`, nor, past 1 MiB, more than
 * `max_ratio` bytes per byte it consumed or per byte received.
 */
H2POOL_EXTERN int h2pool_config_set_decompression_limits(h2pool_config *cfg,
                                                         uint64_t max_bytes,
                                                         uint32_t max_ratio);

/**
 * Sends every connection through a proxy. `url` is
 * "scheme://[user[:password]@]host[:port]" with scheme
 *  - http://   an HTTP/1.1 proxy, reached in the clear (default port 1080);
 *  - https://  an HTTP/1.1 proxy reached over TLS (default port 443): its
 *              certificate is verified against its host name with the same
 *              CA settings as origins' (h2pool_config_set_tls_ca_file(),
 *              ...), ALPN "http/1.1";
 *  - socks5:// a SOCKS5 proxy (RFC 1928; default port 1080); h2pool
 *              resolves the origin's name and sends the address;
 *  - socks5h:// the same, but the proxy resolves the name (h2pool sends it).
 * No scheme means http://, as libcurl and Go read proxy URLs. The user name
 * and password are percent-decoded; h2pool_config_set_proxy_credentials()
 * overrides them.
 *
 * Through an HTTP proxy every connection is a CONNECT tunnel (http://
 * origins included: an HTTP/2 connection cannot pass a forwarding proxy any
 * other way), with "Proxy-Authorization: Basic" when there are credentials;
 * over the tunnel h2pool speaks to the origin as it would directly (TLS to
 * an https:// origin inside it, so through an https:// proxy that is TLS
 * inside TLS). Through SOCKS5 the credentials are sent as RFC 1929
 * username/password. Setting up the tunnel is part of connecting: it must
 * finish within the connect timeout, and its failures count as failed
 * connections (backoff, retries) with their own codes:
 * H2POOL_ERR_PROXY_CONNECT, _PROXY_AUTH, _PROXY_REFUSED, _PROXY_CLOSED,
 * _PROXY_PROTOCOL. Pooled connections are per origin and per route: an
 * origin exempted by h2pool_config_set_noproxy() has connections of its own.
 *
 * NULL removes the setting (the pool then goes direct, or follows the
 * environment if h2pool_config_use_proxy_env() is on); "" means no proxy,
 * whatever the environment says (as curl's --proxy ""). Returns
 * H2POOL_ERR_INVALID_ARGUMENT for a malformed URL or another scheme. The URL
 * is copied. Passwords never appear in log lines or error messages.
 */
H2POOL_EXTERN int h2pool_config_set_proxy(h2pool_config *cfg, const char *url);

/**
 * The proxy's credentials, instead of those in the proxy URL: Basic
 * authentication for HTTP proxies, RFC 1929 username/password for SOCKS5
 * (each at most 255 bytes; h2pool_create() fails with
 * H2POOL_ERR_INVALID_ARGUMENT otherwise). `password` NULL means an empty
 * one. `user` NULL (with `password` NULL) removes them. A user name with a
 * ':' is H2POOL_ERR_INVALID_ARGUMENT (RFC 7617). Both are copied.
 */
H2POOL_EXTERN int h2pool_config_set_proxy_credentials(h2pool_config *cfg,
                                                      const char *user,
                                                      const char *password);

/**
 * Origins that bypass the proxy, as curl's NO_PROXY: a list separated by
 * commas or spaces; "*" matches every origin; a host name matches itself
 * and every name under it ("example.com" and ".example.com" both match
 * "example.com" and "api.example.com"); an IP address matches itself and
 * "addr/bits" a network (IPv4 or IPv6); any entry may end in ":port" (an
 * IPv6 address then in brackets) to match that port only. Matching is
 * case-insensitive and ignores a trailing dot; entries that are none of
 * these are ignored. Loopback origins are proxied unless listed (as curl
 * does; Go exempts them). NULL removes the setting (NO_PROXY from the
 * environment then applies if h2pool_config_use_proxy_env() is on); ""
 * exempts nothing. Copied.
 */
H2POOL_EXTERN int h2pool_config_set_noproxy(h2pool_config *cfg,
                                            const char *list);

/**
 * With a non-zero `use`, h2pool_create() reads the proxy environment
 * variables, as libcurl and Go's http.ProxyFromEnvironment do: for https://
 * origins https_proxy, then HTTPS_PROXY; for http:// origins http_proxy,
 * then HTTP_PROXY; for either, when those are unset or empty, all_proxy,
 * then ALL_PROXY; and no_proxy, then NO_PROXY, for the exemptions (same
 * syntax as h2pool_config_set_noproxy()). Explicit settings win: with
 * h2pool_config_set_proxy() the proxy variables are not read, with
 * h2pool_config_set_noproxy() the exemption variables are not. A malformed
 * proxy variable makes h2pool_create() fail with
 * H2POOL_ERR_INVALID_ARGUMENT (logged, without its value). Default 0: the
 * environment is ignored.
 */
H2POOL_EXTERN int h2pool_config_use_proxy_env(h2pool_config *cfg, int use);

/**
 * The number of event-loop threads h2pool_create() starts: 1 (the default)
 * to 64. Use more than one when a single loop thread is the bottleneck (one
 * core's worth of TLS and HTTP/2 work); on a machine whose cores are busy
 * with other work, one loop is cheaper.
 *
 * Each loop thread runs a pool of its own: its own connections, its own DNS
 * cache, its own request queue. A request submitted from a thread that is
 * not one of the pool's goes to the next loop in turn; one submitted from a
 * callback stays on the loop that runs the callback (no hand-off). So the
 * requests to one endpoint spread over every loop, and with N loops:
 *  - the per-endpoint connection limit is shared out: each loop may open
 *    ceil(limit / N) connections to an endpoint (at least one each, so the
 *    endpoint may see up to N connections when the limit is below N);
 *  - each loop keeps its own reconnect backoff and retry budget, so an
 *    endpoint that fails sees up to N connection attempts per backoff step;
 *  - connections are coalesced (h2pool_config_set_coalescing()) only
 *    between requests on the same loop;
 *  - the pending-request limit (h2pool_config_set_max_pending_requests())
 *    stays one limit for the whole pool.
 *
 * Callbacks of requests on different loops run on different threads, and so
 * may run at the same time: a program that sets N above 1 makes its
 * callbacks (completion, streaming, body, log) safe to run concurrently.
 * Those of one request always run on one thread, in order. Every function
 * keeps its thread-safety, with one exception: h2pool_stats_get() cannot be
 * called from a callback (a loop thread waiting for another could wait
 * forever); it returns H2POOL_ERR_WRONG_THREAD there.
 *
 * Only h2pool_create() runs more than one loop: h2pool_create_on_base() and
 * h2pool_create_external() fail with H2POOL_ERR_INVALID_ARGUMENT for a
 * config that asks for more.
 */
H2POOL_EXTERN int h2pool_config_set_loop_threads(h2pool_config *cfg,
                                                 uint32_t n);

/**
 * Sets the log callback and the most verbose level passed to it (an
 * h2pool_log_level). `cb` NULL disables logging. Default: none.
 */
H2POOL_EXTERN int h2pool_config_set_log(h2pool_config *cfg, h2pool_log_cb cb,
                                        int level, void *user_data);

/* ------------------------------------------------------------------------ */
/* Pool                                                                      */
/* ------------------------------------------------------------------------ */

/** A connection pool with its own event-loop thread (or the caller's loop:
 * see h2pool_create_on_base() and h2pool_create_external()). */
typedef struct h2pool h2pool;

/**
 * Creates a pool from `cfg` (NULL for all defaults) and starts its loop
 * thread. The config is copied. Thread-safe.
 */
H2POOL_EXTERN int h2pool_create(const h2pool_config *cfg, h2pool **out);

/**
 * Shuts the pool down and frees it. Accepts NULL. Thread-safe.
 *
 * From the moment it is called, every other call on the pool
 * (h2pool_request(), h2pool_cancel(), h2pool_request_resume_upload(),
 * h2pool_request_pause_download(), h2pool_request_resume_download(),
 * h2pool_request_set_priority(), h2pool_stats_get()), from any thread and from
 * the completion callbacks the shutdown runs, returns H2POOL_ERR_POOL_CLOSED
 * and leads to no callback. Calls already under way on other threads are waited
 * for before the pool is freed (and, unless it is called from the loop thread,
 * before the shutdown starts, so a request one of them submits is accepted and
 * then completed like the rest). Every request still outstanding gets its
 * completion callback with H2POOL_ERR_POOL_CLOSED; connections are closed
 * with GOAWAY(NO_ERROR); the loop thread is joined.
 *
 * From any thread but the loop thread it returns when all of that is done:
 * every completion callback has run and the pool is freed. From a
 * completion callback (the loop thread) the shutdown is the same but
 * finishes asynchronously: the call returns at once, the remaining
 * completions run after the callback returns, and the loop thread then
 * frees the pool (as soon as calls under way on other threads have
 * returned) and exits.
 *
 * Only the first call destroys. Another h2pool_destroy() of the same pool
 * while the first is running, from a completion callback the shutdown runs
 * or from another thread, does nothing and returns at once: it does not
 * wait for the shutdown, so its return does not mean the pool is gone.
 *
 * A call made after h2pool_destroy() has returned, to any function taking
 * this pool (h2pool_destroy() included), uses freed memory: undefined
 * behaviour, which the library cannot detect or report. Calls on other
 * threads may overlap h2pool_destroy(); making sure that none of them
 * starts after it has returned is the caller's job. Having each thread stop
 * at its first H2POOL_ERR_POOL_CLOSED is not enough for that: a thread that
 * was between two calls may resume only after h2pool_destroy() returned.
 */
H2POOL_EXTERN void h2pool_destroy(h2pool *pool);

/* ------------------------------------------------------------------------ */
/* Running inside the caller's event loop                                    */
/* ------------------------------------------------------------------------ */

/*
 * h2pool_create() runs the pool on a thread of its own. The two functions
 * below run it with no thread of h2pool's, inside the caller's loop: on a
 * libevent base the caller dispatches, or, for any other loop (epoll, libuv,
 * a game loop), through descriptors and a timeout the caller waits on, in
 * the manner of libcurl's multi_socket_action interface.
 *
 * In both, "the loop thread" of this header means the caller's thread that
 * runs the loop: completion, streaming and log callbacks run there, during
 * event_base_dispatch() or h2pool_socket_action(). Every other function
 * keeps its thread-safety: h2pool_request() and the rest may be called from
 * any thread (they queue work and wake the loop through an eventfd, which
 * the loop watches like any other descriptor), and h2pool_stats_get() from
 * another thread waits until the loop has run. The contract is the same as
 * with a thread: every accepted request gets exactly one completion.
 *
 * h2pool_destroy() on the loop thread outside any callback (between two
 * loop turns) is synchronous: every completion runs, the pool's descriptors
 * are closed (and, for an external pool, reported removed) and the pool is
 * freed before it returns. From a callback of the loop, or from another
 * thread, it returns at once and the pool finishes on the loop: the
 * remaining completions run, and the pool is freed, on the base's next
 * loop turn (on_base) or during a later h2pool_socket_action() call
 * (external), which reports every descriptor removed and the timer
 * cancelled; keep the loop running until then.
 *
 * The loop thread's writes to a peer that has gone away never raise
 * SIGPIPE (h2pool's sockets are written with MSG_NOSIGNAL), with one
 * exception: a DNS lookup that falls back to TCP, through c-ares, on a
 * thread that has not ignored SIGPIPE. A program that may meet DNS over
 * TCP ignores or blocks SIGPIPE, as programs using sockets generally do.
 */

struct event_base;

/**
 * Creates a pool whose events live on the caller's libevent `base`
 * (libevent 2.1), with no thread of h2pool's: callbacks run during the
 * caller's event_base_dispatch()/event_base_loop(). Call it on the thread
 * that dispatches `base`; that thread is the pool's loop thread. `base` is
 * not taken over: it must outlive the pool (destroy the pool first), and it
 * needs no locking (evthread) unless the caller's own code wants it. While
 * the pool lives it keeps an event on `base`, so event_base_dispatch() does
 * not return for want of events. `cfg` as for h2pool_create(). Returns
 * H2POOL_ERR_INVALID_ARGUMENT for a NULL `base` or `out`.
 */
H2POOL_EXTERN int h2pool_create_on_base(const h2pool_config *cfg,
                                        struct event_base *base, h2pool **out);

/** What a descriptor is to be watched for (h2pool_socket_cb). */
#define H2POOL_POLL_IN 1
#define H2POOL_POLL_OUT 2
#define H2POOL_POLL_INOUT 3
/** The descriptor is no longer of interest: stop watching it. */
#define H2POOL_POLL_REMOVE 4
/** For h2pool_socket_action(): the timer ran out (no descriptor). */
#define H2POOL_SOCKET_TIMEOUT (-1)

/**
 * Told, for an external pool, what to watch `fd` for from now on:
 * H2POOL_POLL_IN, _OUT, _INOUT, or _REMOVE (stop: h2pool may close the
 * descriptor right after, and a later descriptor with the same number is
 * reported anew). Called on the loop thread, from h2pool_create_external()
 * and h2pool_socket_action(); it must not call h2pool_socket_action() or
 * h2pool_destroy() itself (h2pool_request() and the like are fine).
 */
typedef void (*h2pool_socket_cb)(int fd, int what, void *user_data);

/**
 * Told, for an external pool, when to call h2pool_socket_action(pool,
 * H2POOL_SOCKET_TIMEOUT, 0) at the latest: after `timeout_ms` milliseconds
 * (0: as soon as possible), replacing the previous timer; -1 cancels it.
 * Called only when the deadline changes. Same rules as h2pool_socket_cb.
 */
typedef void (*h2pool_timer_cb)(long timeout_ms, void *user_data);

/** Sets the descriptor callback of external pools (NULL clears it). */
H2POOL_EXTERN int h2pool_config_set_socket_callback(h2pool_config *cfg,
                                                    h2pool_socket_cb cb,
                                                    void *user_data);

/** Sets the timer callback of external pools (NULL clears it). */
H2POOL_EXTERN int h2pool_config_set_timer_callback(h2pool_config *cfg,
                                                   h2pool_timer_cb cb,
                                                   void *user_data);

/**
 * Creates a pool driven by the caller's own loop, with no thread of
 * h2pool's: the socket callback says which descriptors to watch and the
 * timer callback when to call in regardless; whenever a watched descriptor
 * is ready or the timer runs out, the caller calls h2pool_socket_action(),
 * and the pool does its work there. The first descriptor (the wake-up
 * eventfd) is reported before this returns. The calling thread is the loop
 * thread until h2pool_socket_action() is called from another. Both
 * callbacks must have been set on `cfg` (else H2POOL_ERR_INVALID_ARGUMENT);
 * otherwise as h2pool_create().
 */
H2POOL_EXTERN int h2pool_create_external(const h2pool_config *cfg,
                                         h2pool **out);

/**
 * Runs an external pool's work: reads and writes what its descriptors
 * allow, fires the timers that are due, runs the callbacks that follow,
 * and reports changes through the socket and timer callbacks. `fd` is the
 * descriptor found ready, or H2POOL_SOCKET_TIMEOUT; `events` what it was
 * ready for (H2POOL_POLL_IN / _OUT, or 0). Both are hints: every
 * descriptor of the pool is checked, without blocking, on each call, so a
 * spurious or coalesced call is harmless. Call it from one thread at a
 * time; that thread is the loop thread. Returns 0; H2POOL_POOL_FREED when
 * this call finished an asynchronous h2pool_destroy() (see above) and freed
 * the pool, having reported every descriptor removed and the timer
 * cancelled (the pool must not be used again); or
 * H2POOL_ERR_INVALID_ARGUMENT for a NULL pool, a pool not made by
 * h2pool_create_external(), an `fd` below -1, unknown `events` bits, or a
 * call from inside one of the pool's callbacks.
 */
H2POOL_EXTERN int h2pool_socket_action(h2pool *pool, int fd, int events);

/** Returned by h2pool_socket_action() when the call freed the pool. */
#define H2POOL_POOL_FREED 1

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * One header field. Used for request headers (copied by h2pool_request()) and
 * for reading response headers (borrowed during the callback). Names and
 * values are byte strings of the given lengths, not necessarily
 * NUL-terminated.
 */
typedef struct h2pool_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} h2pool_header;

/** A response, as seen by a completion callback. Opaque and borrowed. */
typedef struct h2pool_response h2pool_response;

/**
 * The completion callback: called exactly once for every request that
 * h2pool_request() accepted, on the pool's loop thread.
 *
 * On success `err` is NULL and `resp` is the response (any HTTP status,
 * including 4xx and 5xx, is a success at this level). On failure `err` is
 * non-NULL; `resp` is then NULL, or describes what had arrived before the
 * failure (status, headers, partial body) when response headers had been
 * received.
 *
 * Both are borrowed and valid only until the callback returns. The callback
 * must not block. It may call h2pool_request() and h2pool_cancel(); see
 * h2pool_destroy() for calling that.
 */
typedef void (*h2pool_response_cb)(const h2pool_response *resp,
                                   const h2pool_error *err, void *user_data);

/**
 * Per-request options: an opaque object with typed setters. h2pool_request()
 * copies what it needs, so one options object can serve many requests. Not
 * thread-safe while being modified.
 */
typedef struct h2pool_request_opts h2pool_request_opts;

/** Creates request options holding every default. */
H2POOL_EXTERN int h2pool_request_opts_new(h2pool_request_opts **out);

/** Frees request options. Accepts NULL. */
H2POOL_EXTERN void h2pool_request_opts_free(h2pool_request_opts *opts);

/**
 * Total timeout for requests made with these options, in milliseconds,
 * overriding the pool's default. 0 means no limit.
 */
H2POOL_EXTERN int h2pool_request_opts_set_timeout_ms(h2pool_request_opts *opts,
                                                     uint32_t ms);

/** Returned by an h2pool_body_read_cb: no data now; see
 *  h2pool_request_resume_upload(). */
#define H2POOL_BODY_WAIT (-1)
/** Returned by an h2pool_body_read_cb: abort the request. */
#define H2POOL_BODY_ABORT (-2)

/**
 * Supplies request body bytes as the HTTP/2 flow-control window opens.
 * Called on the loop thread with room for `len` bytes at `buf`. Returns the
 * number of bytes written (0 to `len`) and sets `*eof` to 1 together with
 * the last bytes (or with 0 bytes); or H2POOL_BODY_WAIT when no data is
 * ready yet (the upload then pauses until h2pool_request_resume_upload());
 * or H2POOL_BODY_ABORT (the request fails with H2POOL_ERR_BODY_SOURCE).
 * `user_data` is the request's. A body read this way is not replayed, so the
 * request is retried only if no byte had been read.
 */
typedef int64_t (*h2pool_body_read_cb)(uint8_t *buf, size_t len, int *eof,
                                       void *user_data);

/**
 * Streams the request body from `cb` instead of the `body` argument of
 * h2pool_request() (which must then be NULL and 0). `content_length` is sent
 * as content-length when >= 0; -1 means unknown. `cb` NULL turns it off.
 */
H2POOL_EXTERN int h2pool_request_opts_set_body_reader(h2pool_request_opts *opts,
                                                      h2pool_body_read_cb cb,
                                                      int64_t content_length);

/**
 * Releases a borrowed request body; see h2pool_request_opts_set_body_release.
 */
typedef void (*h2pool_body_release_cb)(const uint8_t *body, void *user_data);

/**
 * Borrow the `body` given to h2pool_request() instead of copying it: the
 * caller keeps it unchanged and alive until `release(body, user_data)` is
 * called (`user_data` is the request's). For every accepted request whose
 * `body` pointer is not NULL, `body_len` 0 included, `release` is called
 * exactly once, on the loop thread, before the request's completion
 * callback. A request whose `body` is NULL gets no release call, and
 * neither does a refused one: it borrowed nothing, so the caller owns the
 * body again when h2pool_request() returns an error. `release` NULL
 * restores copying.
 */
H2POOL_EXTERN int
h2pool_request_opts_set_body_release(h2pool_request_opts *opts,
                                     h2pool_body_release_cb release);

/**
 * Streaming responses: called once, on the loop thread, when the final
 * response's status and headers have arrived (1xx interim responses are
 * skipped). `resp` is borrowed for the call; its body is empty. Return 0 to
 * go on, anything else to abort the request (it fails with
 * H2POOL_ERR_ABORTED). `user_data` is the request's.
 */
typedef int (*h2pool_headers_cb)(const h2pool_response *resp, void *user_data);

/** Returned by an h2pool_data_cb to pause reading this response. */
#define H2POOL_DATA_PAUSE 1

/**
 * Streaming responses: called on the loop thread with each chunk of the
 * response body (decoded, if auto-decompression applies). `data` is borrowed
 * for the call. Return 0 to go on, H2POOL_DATA_PAUSE to stop reading this
 * stream until h2pool_request_resume_download() (flow control then holds
 * the server back, other streams keep flowing; over HTTP/1.1 the
 * connection's socket is not read meanwhile), anything else to abort
 * (H2POOL_ERR_ABORTED). With an on_data callback the body is not buffered:
 * the completion's response has an empty body.
 */
typedef int (*h2pool_data_cb)(const uint8_t *data, size_t len, void *user_data);

/** Sets the on_headers callback (NULL: none). */
H2POOL_EXTERN int h2pool_request_opts_set_on_headers(h2pool_request_opts *opts,
                                                     h2pool_headers_cb cb);

/** Sets the on_data callback (NULL: buffer the body). */
H2POOL_EXTERN int h2pool_request_opts_set_on_data(h2pool_request_opts *opts,
                                                  h2pool_data_cb cb);

/**
 * Automatic decompression, on by default: unless the caller sets
 * accept-encoding, "accept-encoding: " h2pool_supported_encodings() is sent
 * ("gzip, deflate, br, zstd" in a build with libbrotlidec and libzstd), and
 * a response whose content-encoding is a chain of gzip, x-gzip, deflate
 * (zlib-wrapped or raw), br, zstd and identity is decoded as it arrives,
 * the last coding listed first. A br or zstd stream must end cleanly (a
 * truncated stream, or bytes after its end, fail with H2POOL_ERR_DECODE);
 * zstd bodies may hold several frames, skippable ones included, each with
 * or without its content size, and a frame whose window exceeds 8 MiB is
 * refused with H2POOL_ERR_DECODE (RFC 9659 caps the zstd content coding's
 * window there; it also bounds the memory one zstd step holds, as the
 * br format caps its window at 16 MiB). Decoded responses lose their
 * content-encoding and content-length headers;
 * h2pool_response_content_encoding() returns the original encoding. Bodies
 * with any other encoding (br or zstd in a build without them included) are
 * passed through untouched.
 */
H2POOL_EXTERN int
h2pool_request_opts_set_auto_decompress(h2pool_request_opts *opts, int enable);

/**
 * The HTTP version for requests made with these options, overriding the
 * pool's (see h2pool_config_set_http_version()). Requests to one origin with
 * different versions use different endpoints and connections; the stats
 * name such an endpoint with " (HTTP/1.1)" or " (HTTP/2)" after its origin.
 */
H2POOL_EXTERN int
h2pool_request_opts_set_http_version(h2pool_request_opts *opts,
                                     h2pool_http_version version);

/**
 * The priority of requests made with these options (RFC 9218): `urgency`
 * 0 (most urgent) to 7 (least), `incremental` 0 or 1 (whether the response
 * is useful in parts, so the server may interleave it with others of the
 * same urgency). Default urgency 3, not incremental, as RFC 9218 section 4
 * defines the absence of a signal. Returns H2POOL_ERR_INVALID_ARGUMENT for a
 * NULL `opts` or a value out of range. Applies to h2pool_request() and
 * h2pool_queue_request() alike.
 *
 * What it does:
 * - A priority other than the default is sent as the request header field
 *   "priority: u=N" (", i" when incremental), over HTTP/2 and HTTP/1.1. A
 *   "priority" header of the caller's own is sent instead (never both), and
 *   its value (read as RFC 9218 says, invalid parts ignored) is then the
 *   request's priority.
 * - The pool's own queue: when an endpoint has no free stream slot, its
 *   waiting requests get a stream most urgent first, in submission order
 *   within an urgency.
 * - The server decides the rest: one that schedules by RFC 9218 (nghttp2's
 *   server sessions that sent SETTINGS_NO_RFC7540_PRIORITIES, nghttpd, h2o)
 *   sends the responses of more urgent streams first; others ignore it.
 */
H2POOL_EXTERN int h2pool_request_opts_set_priority(h2pool_request_opts *opts,
                                                   int urgency,
                                                   int incremental);

/**
 * Extended CONNECT (RFC 8441): requests made with these options open a
 * tunnel, a bidirectional byte stream on one HTTP/2 stream of a pooled
 * connection, for the protocol `protocol` (NUL-terminated, an RFC 9110
 * token of at most 64 bytes, sent as the ":protocol" pseudo-header; for
 * WebSockets over HTTP/2, "websocket"). NULL or "" turns it off. Returns
 * H2POOL_ERR_INVALID_ARGUMENT for a NULL `opts` or a `protocol` that is not
 * a token. The string is copied.
 *
 * A tunnel is an ordinary request, so it needs no API of its own:
 * - The method must be "CONNECT" (h2pool_request() refuses other methods
 *   with H2POOL_ERR_INVALID_METHOD while a protocol is set). The URL's
 *   scheme, path and authority are sent as :scheme, :path and :authority
 *   (RFC 8441 section 4); no content-length and no accept-encoding are
 *   added, and a content-length header of the caller's is refused
 *   (H2POOL_ERR_INVALID_HEADER). The response is never decoded.
 * - The upload direction is the request body, best from a body reader
 *   (h2pool_request_opts_set_body_reader() with content_length -1, or
 *   h2pool_queue_request() with h2pool_request_opts_set_queue_upload()):
 *   the reader returns H2POOL_BODY_WAIT while the caller has nothing to
 *   send, h2pool_request_resume_upload() wakes it, and its end of file
 *   ends the caller's side of the tunnel (END_STREAM, like a TCP FIN). A
 *   fixed body is sent and then ends the caller's side at once.
 * - The download direction is the response body: set an on_data callback
 *   (h2pool_request_opts_set_on_data()) to get the bytes as they arrive;
 *   H2POOL_DATA_PAUSE and h2pool_request_resume_download() hold the server
 *   back by flow control as for any response. Without on_data the bytes
 *   are buffered, under the response body limit.
 * - A 2xx response means the tunnel is open: on_headers is called with it.
 *   The completion callback runs once both sides have ended the stream
 *   (successfully), or on a reset, a lost connection, h2pool_cancel() or a
 *   timeout. Any other status is an ordinary response (its body, then the
 *   completion); if the server ends it while the caller's side is still
 *   open, the pool resets the stream (CANCEL) so that the upload stops.
 * - Only over HTTP/2, and only on a connection whose server sent
 *   SETTINGS_ENABLE_CONNECT_PROTOCOL=1: the pool decides once the server's
 *   SETTINGS have arrived (every request waits for them anyway) and
 *   otherwise fails the request with H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED
 *   without sending anything. An HTTP/1.1 connection (by ALPN or by
 *   configuration) fails it the same way. A tunnel shares its connection
 *   with other requests and tunnels, and counts against the server's
 *   SETTINGS_MAX_CONCURRENT_STREAMS like any stream.
 * - Retries: as any request whose body comes from a reader, a tunnel is
 *   sent again only when the server provably did not process it
 *   (REFUSED_STREAM, or above a GOAWAY's last stream id) and no byte of
 *   its upload had been read; never once a response began.
 * - Timeouts: a timeout set on the request
 * (h2pool_request_opts_set_timeout_ms()) bounds the whole life of the tunnel.
 * The pool's default request timeout (h2pool_config_set_request_timeout_ms())
 * only bounds its setup: it does not cut a tunnel that is open (2xx received).
 * The response-header timeout applies as for any request.
 */
H2POOL_EXTERN int h2pool_request_opts_set_protocol(h2pool_request_opts *opts,
                                                   const char *protocol);

/**
 * Submits a request. Thread-safe, and may be called from a completion
 * callback.
 *
 * `method`: an HTTP token such as "GET" (NUL-terminated).
 * `url`: an absolute "http://host[:port]/path?query" URL (NUL-terminated).
 *   Hosts may be names, IPv4 literals or bracketed IPv6 literals. A fragment
 *   is dropped. "https://" URLs use TLS, verified against the configured
 *   trust store, with the HTTP version ALPN selects; "http://" URLs use
 *   HTTP/2 over cleartext TCP with prior knowledge (h2c), or HTTP/1.1 when
 *   configured (see h2pool_config_set_http_version()).
 * `headers`, `nheaders`: extra request headers (may be NULL when `nheaders`
 *   is 0). Names are sent lower-cased. A "host" header replaces the
 *   authority taken from the URL. Pseudo-headers and connection-specific
 *   headers (connection, keep-alive, proxy-connection, transfer-encoding,
 *   upgrade, and te with any value but "trailers") are refused. The te value
 *   is compared without regard to ASCII case, spaces and tabs around it
 *   ignored, and sent as "te: trailers".
 * `body`, `body_len`: the request body (may be NULL when `body_len` is 0).
 *   Copied, or borrowed (see h2pool_request_opts_set_body_release()). With a
 *   non-empty body, content-length is sent unless the caller set it.
 * `opts`: per-request options, or NULL for the pool's defaults.
 * `cb`: the completion callback (required); `user_data` is passed to it.
 * `out_id`: if not NULL, receives the request's id (never 0), usable with
 *   h2pool_cancel() until the callback has run.
 *
 * Returns 0 when accepted: the callback will then run exactly once.
 * Returns a negative code, and never calls the callback, when refused:
 * H2POOL_ERR_INVALID_ARGUMENT, _INVALID_URL, _UNSUPPORTED_SCHEME,
 * _INVALID_METHOD, _INVALID_HEADER, _QUEUE_FULL,
 * _POOL_CLOSED (once h2pool_destroy() has begun) or _NOMEM. The reason for
 * _INVALID_URL, _UNSUPPORTED_SCHEME, _INVALID_METHOD and _INVALID_HEADER is
 * logged from the loop thread (see h2pool_log_cb); the other codes say all
 * there is to say and are not logged.
 */
H2POOL_EXTERN int h2pool_request(h2pool *pool, const char *method,
                                 const char *url, const h2pool_header *headers,
                                 size_t nheaders, const uint8_t *body,
                                 size_t body_len,
                                 const h2pool_request_opts *opts,
                                 h2pool_response_cb cb, void *user_data,
                                 uint64_t *out_id);

/**
 * Asks the pool to cancel request `id`. Thread-safe, and may be called from a
 * completion callback. Asynchronous: a request still waiting completes with
 * H2POOL_ERR_CANCELLED; one in flight is reset with RST_STREAM(CANCEL) and
 * completes with H2POOL_ERR_CANCELLED; other streams are unaffected (over
 * HTTP/1.1, which cannot abandon an exchange, its connection is closed). A
 * request that completes before the cancellation reaches it keeps its
 * result. Returns 0 once the cancellation is queued (also for ids that have
 * already completed), H2POOL_ERR_INVALID_ARGUMENT for a NULL pool or id 0,
 * H2POOL_ERR_POOL_CLOSED once destruction has begun.
 */
H2POOL_EXTERN int h2pool_cancel(h2pool *pool, uint64_t id);

/**
 * Resumes an upload paused by a body read callback returning
 * H2POOL_BODY_WAIT. Thread-safe; asynchronous. Returns 0 once queued (also
 * for requests that have completed), H2POOL_ERR_INVALID_ARGUMENT for a NULL
 * pool or id 0, H2POOL_ERR_POOL_CLOSED once destruction has begun.
 */
H2POOL_EXTERN int h2pool_request_resume_upload(h2pool *pool, uint64_t id);

/**
 * Pauses reading a streaming response (as H2POOL_DATA_PAUSE does).
 * Thread-safe; asynchronous; returns as h2pool_request_resume_upload().
 */
H2POOL_EXTERN int h2pool_request_pause_download(h2pool *pool, uint64_t id);

/**
 * Changes the priority of request `id` (see
 * h2pool_request_opts_set_priority() for `urgency` and `incremental`).
 * Thread-safe, and may be called from a completion callback; asynchronous,
 * like h2pool_cancel(). A request still waiting in the pool's queue moves to
 * its new place there (behind the requests already waiting at its new
 * urgency). One on an HTTP/2 stream is announced to the server with a
 * PRIORITY_UPDATE frame (RFC 9218 section 7.1), but only when the server's
 * SETTINGS had SETTINGS_NO_RFC7540_PRIORITIES=1, that is when it says it
 * reads the frame; otherwise, and over HTTP/1.1 (which has no such frame),
 * the change is accepted and has no effect on the wire. A request waiting
 * to be retried is sent again with its new priority. Whether the response
 * then comes sooner is for the server to decide.
 *
 * Returns 0 once the change is queued (also for ids that have already
 * completed, for which it does nothing), H2POOL_ERR_INVALID_ARGUMENT for a
 * NULL pool, id 0 or a value out of range, H2POOL_ERR_POOL_CLOSED once
 * destruction has begun.
 */
H2POOL_EXTERN int h2pool_request_set_priority(h2pool *pool, uint64_t id,
                                              int urgency, int incremental);

/** Resumes reading a paused response. Thread-safe; asynchronous. */
H2POOL_EXTERN int h2pool_request_resume_download(h2pool *pool, uint64_t id);

/* ------------------------------------------------------------------------ */
/* Responses (valid only inside the callbacks)                               */
/* ------------------------------------------------------------------------ */

/** The HTTP status code (for example 200), or 0 for a NULL response. */
H2POOL_EXTERN int h2pool_response_status(const h2pool_response *resp);

/** Number of response header fields (pseudo-headers excluded). */
H2POOL_EXTERN size_t h2pool_response_header_count(const h2pool_response *resp);

/**
 * Reads header field `index` (0-based, in the order received) into `out`.
 * The strings are borrowed for the callback. Returns
 * H2POOL_ERR_INVALID_ARGUMENT if `index` is out of range or an argument is
 * NULL.
 */
H2POOL_EXTERN int h2pool_response_header_at(const h2pool_response *resp,
                                            size_t index, h2pool_header *out);

/**
 * Looks up the first header named `name` (NUL-terminated, compared without
 * regard to ASCII case). Returns a borrowed pointer to its value and stores
 * the value's length in `*value_len` (if not NULL), or returns NULL when
 * absent. The value is also NUL-terminated for convenience.
 */
H2POOL_EXTERN const char *h2pool_response_header(const h2pool_response *resp,
                                                 const char *name,
                                                 size_t *value_len);

/**
 * The response body (buffered in full). Stores its length in `*len` (if not
 * NULL). The pointer is borrowed; it is non-NULL even for an empty body.
 */
H2POOL_EXTERN const uint8_t *h2pool_response_body(const h2pool_response *resp,
                                                  size_t *len);

/** Number of trailer fields (the header block after the body). */
H2POOL_EXTERN size_t h2pool_response_trailer_count(const h2pool_response *resp);

/** Reads trailer field `index` into `out`; as h2pool_response_header_at(). */
H2POOL_EXTERN int h2pool_response_trailer_at(const h2pool_response *resp,
                                             size_t index, h2pool_header *out);

/** Looks up a trailer by name; as h2pool_response_header(). */
H2POOL_EXTERN const char *h2pool_response_trailer(const h2pool_response *resp,
                                                  const char *name,
                                                  size_t *value_len);

/**
 * The content-encoding the server sent, when h2pool decoded the body
 * (for example "gzip"); several content-encoding fields are one list, joined
 * in order with ", " (RFC 9110 5.3). NULL when the body is as received.
 */
H2POOL_EXTERN const char *
h2pool_response_content_encoding(const h2pool_response *resp);

/**
 * The protocol a response (or an endpoint, see
 * h2pool_stats_endpoint_protocol()) was spoken in: major version * 10 +
 * minor, so HTTP/1.0 responses (from a server answering an HTTP/1.1
 * request in HTTP/1.0) are 10.
 */
typedef enum h2pool_protocol {
  /** Not known yet (an endpoint whose first connection is not up). */
  H2POOL_PROTOCOL_UNKNOWN = 0,
  H2POOL_PROTOCOL_HTTP_1_0 = 10,
  H2POOL_PROTOCOL_HTTP_1_1 = 11,
  H2POOL_PROTOCOL_HTTP_2 = 20
} h2pool_protocol;

/**
 * The protocol of the response (an h2pool_protocol): HTTP/2, or the version
 * on an HTTP/1.x status line. H2POOL_PROTOCOL_UNKNOWN for a NULL response.
 */
H2POOL_EXTERN int h2pool_response_protocol(const h2pool_response *resp);

/**
 * "HTTP/1.0", "HTTP/1.1" or "HTTP/2" for an h2pool_protocol, as curl prints
 * them; "unknown" otherwise. A static string.
 */
H2POOL_EXTERN const char *h2pool_protocol_name(int protocol);

/**
 * The reason phrase of an HTTP/1.x status line ("OK"; possibly empty),
 * borrowed for the callback; "" for HTTP/2, which has none. Never NULL.
 */
H2POOL_EXTERN const char *h2pool_response_reason(const h2pool_response *resp);

/** The HTTP/2 stream id the response arrived on (0 over HTTP/1.1). */
H2POOL_EXTERN int32_t h2pool_response_stream_id(const h2pool_response *resp);

/**
 * An id for the connection that carried the response: unique within the
 * pool, so equal ids mean the same pooled connection was reused.
 */
H2POOL_EXTERN uint64_t
h2pool_response_connection_id(const h2pool_response *resp);

/** The request id that h2pool_request() returned for this response. */
H2POOL_EXTERN uint64_t h2pool_response_request_id(const h2pool_response *resp);

/* ------------------------------------------------------------------------ */
/* Timings                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * The phases of a request, as libcurl's CURLINFO_*_TIME_T. Every time is in
 * microseconds of a monotonic clock, counted from the request's submission
 * (h2pool_request() or h2pool_queue_request()), and cumulative: for the
 * phases reached, NAMELOOKUP <= CONNECT <= APPCONNECT <= PRETRANSFER <=
 * STARTTRANSFER <= TOTAL, and QUEUED <= PRETRANSFER. A phase never reached
 * reads -1.
 *
 * On a reused connection (see h2pool_response_connection_reused())
 * NAMELOOKUP, CONNECT and APPCONNECT are 0, as libcurl reports them. A
 * request that waited for a connection that was being set up when it was
 * submitted (opened for it or for an earlier request) is on a new
 * connection: its connection phases are the times at which that
 * connection's phases ended, a phase that ended before the submission
 * counting as 0. With retries, the times are those of the last attempt's
 * connection and stream; TOTAL spans them all.
 */
typedef enum h2pool_timing {
  /** Submission until the request was placed on a connection (a stream of
   *  HTTP/2, an exchange of HTTP/1.1): time spent in the pool's queue,
   *  including waiting for a connection to be set up. */
  H2POOL_TIMING_QUEUED = 0,
  /** Until the host name was resolved (CURLINFO_NAMELOOKUP_TIME_T); for an
   *  IP address, until the TCP connect began. */
  H2POOL_TIMING_NAMELOOKUP = 1,
  /** Until the TCP connection was up (CURLINFO_CONNECT_TIME_T). */
  H2POOL_TIMING_CONNECT = 2,
  /** Until the TLS handshake finished (CURLINFO_APPCONNECT_TIME_T); -1 on a
   *  cleartext connection, which has none (curl prints 0 there). */
  H2POOL_TIMING_APPCONNECT = 3,
  /** Until the request's headers were handed to the connection's socket
   *  (CURLINFO_PRETRANSFER_TIME_T). */
  H2POOL_TIMING_PRETRANSFER = 4,
  /** Until the first byte of the response arrived (the first HEADERS
   *  frame of the stream; over HTTP/1.1 the first byte of the status line,
   *  an interim 1xx response included) (CURLINFO_STARTTRANSFER_TIME_T). */
  H2POOL_TIMING_STARTTRANSFER = 5,
  /** Until the request completed, just before the completion callback or
   *  event (CURLINFO_TOTAL_TIME_T). */
  H2POOL_TIMING_TOTAL = 6
} h2pool_timing;

/**
 * The time in microseconds from submission until phase `which` of the
 * response's request ended; -1 if it was never reached, for a NULL `resp`
 * and for a `which` that is not an h2pool_timing. Reads the response it is
 * given, so it is safe wherever `resp` is valid. In an on_headers callback
 * (and its H2POOL_EVENT_HEADERS event) the times are those reached so far,
 * TOTAL being the time until the headers were delivered; the completion
 * callback and event carry the final ones.
 */
H2POOL_EXTERN int64_t h2pool_response_timing_us(const h2pool_response *resp,
                                                h2pool_timing which);

/**
 * 1 if the request went out on a reused connection: one that was up before
 * the request was submitted, or that had already finished another exchange
 * when it took this one. 0 if the request waited for a new connection; -1
 * (H2POOL_ERR_INVALID_ARGUMENT) for NULL.
 */
H2POOL_EXTERN int
h2pool_response_connection_reused(const h2pool_response *resp);

/**
 * The numeric IP address of the peer of the connection that carried the
 * response ("127.0.0.1", "::1"), also for a reused connection; "" if not
 * known (a socket that is not TCP). Borrowed like the response; never NULL.
 */
H2POOL_EXTERN const char *
h2pool_response_remote_ip(const h2pool_response *resp);

/** The peer's TCP port; 0 if not known or for NULL. */
H2POOL_EXTERN int h2pool_response_remote_port(const h2pool_response *resp);

/**
 * New connections the request waited for and that came up (libcurl's
 * CURLINFO_NUM_CONNECTS): 0 on a reused connection, 1 on a new one, more
 * if it was retried on further new connections. Connections that failed
 * before they came up are not counted. 0 for NULL.
 */
H2POOL_EXTERN int h2pool_response_num_connects(const h2pool_response *resp);

/**
 * The same for a failed request: the phases it reached before it failed.
 * A request that failed while waiting for a connection that could not be
 * set up reports that connection's phases (a refused TCP connect: CONNECT
 * -1, NAMELOOKUP and TOTAL reached), and a request that failed in the
 * queue without one -1 for them. When the completion callback receives a
 * response as well, both report the same values.
 */
H2POOL_EXTERN int64_t h2pool_error_timing_us(const h2pool_error *err,
                                             h2pool_timing which);
/** As h2pool_response_connection_reused(), for a failed request. */
H2POOL_EXTERN int h2pool_error_connection_reused(const h2pool_error *err);
/** As h2pool_response_remote_ip(), for a failed request; "" if no
 *  connection came up. Borrowed like the error; never NULL. */
H2POOL_EXTERN const char *h2pool_error_remote_ip(const h2pool_error *err);
/** As h2pool_response_remote_port(), for a failed request. */
H2POOL_EXTERN int h2pool_error_remote_port(const h2pool_error *err);
/** As h2pool_response_num_connects(), for a failed request. */
H2POOL_EXTERN int h2pool_error_num_connects(const h2pool_error *err);

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */
/* ------------------------------------------------------------------------ */

/** Counters and gauges, for the pool as a whole or for one endpoint. */
typedef enum h2pool_stat {
  /** Gauge: connections open now (connecting ones included). */
  H2POOL_STAT_CONNECTIONS_OPEN = 0,
  /** Gauge: open connections carrying no stream. */
  H2POOL_STAT_CONNECTIONS_IDLE = 1,
  /** Counter: connections ever opened. */
  H2POOL_STAT_CONNECTIONS_CREATED = 2,
  /** Counter: requests placed on a connection that had carried a stream
   *  before. */
  H2POOL_STAT_CONNECTIONS_REUSED = 3,
  /** Counter: connections closed. */
  H2POOL_STAT_CONNECTIONS_CLOSED = 4,
  /** Gauge: streams in flight. */
  H2POOL_STAT_STREAMS_ACTIVE = 5,
  /** Gauge: requests waiting for a stream slot. */
  H2POOL_STAT_REQUESTS_QUEUED = 6,
  /** Counter: requests completed successfully (any HTTP status). */
  H2POOL_STAT_REQUESTS_COMPLETED = 7,
  /** Counter: requests completed with an error. */
  H2POOL_STAT_REQUESTS_FAILED = 8,
  /** Counter: times a request was retried on another connection. */
  H2POOL_STAT_REQUESTS_RETRIED = 9,
  /** Gauge: the most streams seen at once on one connection. */
  H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION = 10,
  /** Counter: TLS handshakes completed. */
  H2POOL_STAT_TLS_HANDSHAKES = 11,
  /** Counter: TLS handshakes that resumed an earlier session. */
  H2POOL_STAT_TLS_RESUMED = 12,
  /** Counter: connections that closed before they served any response,
   *  other than ones h2pool closed itself (each one delays the endpoint's
   *  next connection; see h2pool_config_set_reconnect_backoff()). */
  H2POOL_STAT_CONNECTIONS_FAILED = 13,
  /** Gauge: requests the server did not process that wait to be sent again
   *  (out a retry delay, or for the retry budget). */
  H2POOL_STAT_REQUESTS_AWAITING_RETRY = 14,
  /** Counter: requests placed on a connection opened for another origin
   *  (connection coalescing; see h2pool_config_set_coalescing()). Counted
   *  for the endpoint of the request's own origin. */
  H2POOL_STAT_REQUESTS_COALESCED = 15,
  /** Gauge: the largest per-stream flow-control window (bytes) advertised
   *  on any HTTP/2 connection, closed ones included: with adaptive windows
   *  (h2pool_config_set_adaptive_window()), how far they grew. */
  H2POOL_STAT_PEAK_STREAM_WINDOW = 16
} h2pool_stat;

/**
 * A consistent snapshot of a pool's statistics, pool-wide and per endpoint.
 * Opaque; taken with h2pool_stats_get(), freed with h2pool_stats_free().
 * Immutable, so it may be read from any thread.
 */
typedef struct h2pool_stats h2pool_stats;

/**
 * Takes a snapshot of `pool`'s statistics. Thread-safe; from a completion
 * callback it is taken directly, elsewhere it waits for the loop thread.
 * A pool with several loop threads (h2pool_config_set_loop_threads()) sums
 * its loops' figures (the peaks are the largest of them) and lists each
 * endpoint once: its state is the most available among the loops (READY,
 * then CONNECTING, BACKING_OFF, DRAINING, IDLE); such a pool returns
 * H2POOL_ERR_WRONG_THREAD when called from one of its callbacks.
 * Returns H2POOL_ERR_POOL_CLOSED once h2pool_destroy() has begun (also from
 * the completion callbacks the shutdown runs).
 */
H2POOL_EXTERN int h2pool_stats_get(h2pool *pool, h2pool_stats **out);

/** Frees a snapshot. Accepts NULL. */
H2POOL_EXTERN void h2pool_stats_free(h2pool_stats *stats);

/** A pool-wide figure; 0 for a NULL snapshot or unknown `which`. */
H2POOL_EXTERN uint64_t h2pool_stats_value(const h2pool_stats *stats,
                                          h2pool_stat which);

/** The number of endpoints the snapshot describes. */
H2POOL_EXTERN size_t h2pool_stats_endpoint_count(const h2pool_stats *stats);

/**
 * The name of endpoint `index` as "scheme://host:port" (NUL-terminated,
 * owned by the snapshot), or NULL if out of range.
 */
H2POOL_EXTERN const char *h2pool_stats_endpoint_name(const h2pool_stats *stats,
                                                     size_t index);

/** A figure for endpoint `index`; 0 if out of range. */
H2POOL_EXTERN uint64_t h2pool_stats_endpoint_value(const h2pool_stats *stats,
                                                   size_t index,
                                                   h2pool_stat which);

/** What an endpoint is doing, derived from its connections. */
typedef enum h2pool_endpoint_state {
  /** No connection and nothing to do. */
  H2POOL_ENDPOINT_IDLE = 0,
  /** A connection is being set up; none is ready. */
  H2POOL_ENDPOINT_CONNECTING = 1,
  /** At least one connection takes streams. */
  H2POOL_ENDPOINT_READY = 2,
  /** The last connection failed and no other is up: the next one waits for
   *  the reconnect backoff. */
  H2POOL_ENDPOINT_BACKING_OFF = 3,
  /** Only draining connections are left. */
  H2POOL_ENDPOINT_DRAINING = 4
} h2pool_endpoint_state;

/**
 * The state of endpoint `index` when the snapshot was taken (an
 * h2pool_endpoint_state), or H2POOL_ERR_INVALID_ARGUMENT if `stats` is NULL
 * or `index` out of range.
 *
 * Endpoints with no connection and no request for the idle timeout (60
 * seconds when that is 0) and not backing off are forgotten: they leave the
 * per-endpoint figures, while the pool-wide counters keep what they did.
 */
H2POOL_EXTERN int h2pool_stats_endpoint_state(const h2pool_stats *stats,
                                              size_t index);

/* ------------------------------------------------------------------------ */
/* Completion queue                                                          */
/* ------------------------------------------------------------------------ */

/*
 * An alternative to callbacks for programs that live on their own threads
 * (language runtimes such as Go or a Rust executor), after gRPC core's
 * completion queue: a request submitted with h2pool_queue_request() delivers
 * its streaming events and its completion into an h2pool_queue, and the
 * program drains the queue in batches from its own thread. No code of the
 * program runs on the pool's loop thread.
 *
 * Every request h2pool_queue_request() accepts yields exactly one
 * H2POOL_EVENT_COMPLETE, always its last event; before it, depending on its
 * options, H2POOL_EVENT_HEADERS (once), H2POOL_EVENT_DATA (body chunks, in
 * order) and H2POOL_EVENT_WRITABLE (streamed uploads). Events of one request
 * come out in the order they happened.
 *
 * A queue may serve several pools. Waking: the first event added to an empty
 * queue wakes one blocked h2pool_queue_next() and makes the queue's file
 * descriptor readable; further events join that batch without another wake.
 */

/** A completion queue. Opaque; see h2pool_queue_create(). */
typedef struct h2pool_queue h2pool_queue;

/**
 * One event taken from a queue. Opaque; owned by the caller from
 * h2pool_queue_next() until h2pool_event_free(), and readable from any
 * thread (not concurrently with its h2pool_event_free()). Everything the
 * accessors return is owned by the event and valid until it is freed.
 */
typedef struct h2pool_event h2pool_event;

/** What an event reports (h2pool_event_kind()). */
typedef enum h2pool_event_type {
  /** The final response's status and headers (1xx interim responses are
   *  skipped); only for requests with
   *  h2pool_request_opts_set_queue_streaming(). h2pool_event_response()
   *  has them; its body is empty. */
  H2POOL_EVENT_HEADERS = 1,
  /** A chunk of the response body (decoded, if auto-decompression applies);
   *  only with h2pool_request_opts_set_queue_streaming(). The bytes count
   *  against the request's download buffer until the event is freed. */
  H2POOL_EVENT_DATA = 2,
  /** A streamed upload's buffer, which an h2pool_request_write_body() found
   *  too full to take everything, has room again (at least half of it). */
  H2POOL_EVENT_WRITABLE = 3,
  /** The request is over: h2pool_event_error() is NULL on success (any HTTP
   *  status) or says why it failed; h2pool_event_response() is as the
   *  completion callback's `resp` (NULL after a failure that came before
   *  the response headers). Without streaming the body is in the response;
   *  with it, the body came in DATA events and the response has the
   *  headers, the trailers and an empty body. Always the request's last
   *  event. */
  H2POOL_EVENT_COMPLETE = 4
} h2pool_event_type;

/**
 * Creates an empty completion queue. Free it with h2pool_queue_destroy().
 * Returns 0, H2POOL_ERR_INVALID_ARGUMENT (`out` NULL), H2POOL_ERR_NOMEM or
 * H2POOL_ERR_SYSTEM (no eventfd). Thread-safe.
 */
H2POOL_EXTERN int h2pool_queue_create(h2pool_queue **out);

/**
 * Shuts the queue down: from now on h2pool_queue_request() refuses it with
 * H2POOL_ERR_QUEUE_CLOSED. Requests already accepted keep delivering their
 * events; once the last of them has completed and every event has been
 * taken, h2pool_queue_next() returns H2POOL_ERR_QUEUE_CLOSED at once, to
 * every caller, and the file descriptor stays readable. The usual way to
 * stop a thread that drains the queue: h2pool_destroy() the pools (which
 * completes their requests), then shut the queue down. Calling it again does
 * nothing. Returns 0, or H2POOL_ERR_INVALID_ARGUMENT for NULL. Thread-safe.
 */
H2POOL_EXTERN int h2pool_queue_shutdown(h2pool_queue *queue);

/**
 * Frees the queue. Accepts NULL. Events not yet taken are freed with it
 * (their data buffers released). Requests of this queue still under way
 * are cancelled, as by h2pool_cancel(): each still completes exactly once
 * inside its pool, but its events are dropped from then on. Events already
 * taken stay valid until h2pool_event_free(). No other call on this queue
 * may be under way or start once this one has begun (shut it down and let
 * the draining threads return first).
 */
H2POOL_EXTERN void h2pool_queue_destroy(h2pool_queue *queue);

/**
 * A file descriptor (an eventfd) for poll(), epoll or a runtime's poller:
 * readable (POLLIN) while the queue holds events, and once it has shut down
 * with nothing left to deliver. It is made readable when the first event
 * enters an empty queue and reset by the h2pool_queue_next() call that takes
 * the last one. Owned by the queue: do not read, write or close it. Returns
 * the descriptor, or H2POOL_ERR_INVALID_ARGUMENT for NULL. Thread-safe.
 */
H2POOL_EXTERN int h2pool_queue_fd(const h2pool_queue *queue);

/**
 * Takes up to `max` events, oldest first, into `events[0..n)`, and returns
 * n. With none pending it waits up to `timeout_ms` milliseconds for some
 * (0: returns 0 at once; -1: waits as long as it takes) and returns 0 if
 * none came. Returns H2POOL_ERR_QUEUE_CLOSED once the queue is shut down
 * and drained (see h2pool_queue_shutdown()), H2POOL_ERR_INVALID_ARGUMENT
 * if `queue` or `events` is NULL, `max` is 0 or `timeout_ms` is below -1.
 * Each event taken is the caller's, to be freed with h2pool_event_free().
 * Thread-safe: several threads may wait; each event goes to one of them.
 * May be called on a pool's loop thread (from a completion callback) only
 * with `timeout_ms` 0.
 */
H2POOL_EXTERN int h2pool_queue_next(h2pool_queue *queue, h2pool_event **events,
                                    size_t max, int timeout_ms);

/** The event's h2pool_event_type; H2POOL_ERR_INVALID_ARGUMENT for NULL. */
H2POOL_EXTERN int h2pool_event_kind(const h2pool_event *ev);

/** The id of the request the event belongs to (0 for NULL). */
H2POOL_EXTERN uint64_t h2pool_event_request_id(const h2pool_event *ev);

/** The `user_data` given to h2pool_queue_request() (NULL for NULL). */
H2POOL_EXTERN void *h2pool_event_user_data(const h2pool_event *ev);

/**
 * The response of a HEADERS or COMPLETE event (see h2pool_event_type), for
 * the h2pool_response_* accessors; NULL for other events, for NULL, and for
 * a COMPLETE whose request failed before its response headers arrived.
 * Owned by the event.
 */
H2POOL_EXTERN const h2pool_response *
h2pool_event_response(const h2pool_event *ev);

/**
 * The error of a COMPLETE event whose request failed, for the
 * h2pool_error_* accessors; NULL on success, for other events and for NULL.
 * Owned by the event.
 */
H2POOL_EXTERN const h2pool_error *h2pool_event_error(const h2pool_event *ev);

/**
 * The bytes of a DATA event, and their number in `*len` (if not NULL); NULL
 * and 0 for other events and for NULL. Owned by the event.
 */
H2POOL_EXTERN const uint8_t *h2pool_event_data(const h2pool_event *ev,
                                               size_t *len);

/**
 * Frees an event and everything it owns. Accepts NULL. Freeing a DATA event
 * gives its bytes back to the request's download buffer, which may resume a
 * download the full buffer had paused. Thread-safe for distinct events; may
 * be called after the queue or the pool is gone.
 */
H2POOL_EXTERN void h2pool_event_free(h2pool_event *ev);

/**
 * For h2pool_queue_request(): with a non-zero `enable` the response is
 * streamed as one HEADERS event and DATA events, and not buffered. Flow
 * control is the download buffer (h2pool_request_opts_set_queue_buffers()):
 * once the bytes in DATA events not yet freed reach it, the pool stops
 * reading this response (the server is then held back by HTTP/2 flow
 * control, up to the stream window, while other streams keep flowing), and
 * resumes when events freed bring it down to half. So memory is bounded by
 * the buffer and the stream window, not by the body. (Explicit
 * h2pool_request_pause_download() works too; a download the buffer paused
 * resumes on its own.) Default off: one COMPLETE event with the whole body.
 * Ignored by h2pool_request().
 */
H2POOL_EXTERN int
h2pool_request_opts_set_queue_streaming(h2pool_request_opts *opts, int enable);

/**
 * For h2pool_queue_request(): with a non-zero `enable` the request body is
 * written from any thread with h2pool_request_write_body() and finished with
 * h2pool_request_end_body(), and sent as the flow-control window opens; the
 * `body` argument must then be NULL and 0. `content_length` (>= 0) is sent
 * as content-length, -1 means unknown. A body streamed this way is not
 * replayed: the request is retried only if none of it had been sent.
 * h2pool_request() refuses options with this set.
 */
H2POOL_EXTERN int
h2pool_request_opts_set_queue_upload(h2pool_request_opts *opts, int enable,
                                     int64_t content_length);

/**
 * For h2pool_queue_request(): the download buffer of a streamed response and
 * the upload buffer of a streamed body, in bytes (see
 * h2pool_request_opts_set_queue_streaming() and
 * h2pool_request_write_body()). Defaults 262144 each; both 1 to 2^30.
 */
H2POOL_EXTERN int h2pool_request_opts_set_queue_buffers(
    h2pool_request_opts *opts, uint32_t download_bytes, uint32_t upload_bytes);

/**
 * Submits a request whose events go to `queue`. Thread-safe, and may be
 * called from a completion callback.
 *
 * The arguments are those of h2pool_request(), with `queue` for `cb`:
 * `user_data` comes back with every event (h2pool_event_user_data()).
 * `opts` may carry the queue options above; options that install callbacks
 * (body reader, body release, on_headers, on_data) are refused, since no
 * callback runs for a queued request.
 *
 * Returns 0 when accepted: exactly one COMPLETE event will then be queued
 * (unless the queue is destroyed first, which drops it). Returns, without
 * any event: the codes of h2pool_request(), and H2POOL_ERR_QUEUE_CLOSED
 * once the queue has been shut down.
 */
H2POOL_EXTERN int h2pool_queue_request(h2pool *pool, h2pool_queue *queue,
                                       const char *method, const char *url,
                                       const h2pool_header *headers,
                                       size_t nheaders, const uint8_t *body,
                                       size_t body_len,
                                       const h2pool_request_opts *opts,
                                       void *user_data, uint64_t *out_id);

/**
 * Appends up to `len` bytes of a streamed upload (see
 * h2pool_request_opts_set_queue_upload()) to the request's upload buffer,
 * copying them, and stores how many it took in `*accepted` (0 to `len`).
 * When it takes fewer than `len`, the buffer is full: an
 * H2POOL_EVENT_WRITABLE event follows when there is room again (or the
 * COMPLETE event, if the request ends first). Writing may begin right after
 * h2pool_queue_request() returns, before the request has a stream.
 * Thread-safe, but the bytes of concurrent writes to one request interleave
 * in no defined order.
 *
 * Returns 0; H2POOL_ERR_INVALID_ARGUMENT for a NULL `pool` or `accepted`,
 * id 0, or `data` NULL with `len` > 0; H2POOL_ERR_NO_SUCH_REQUEST when the
 * request has completed, its body has been ended, or it is not a streamed
 * upload of this pool; H2POOL_ERR_POOL_CLOSED once h2pool_destroy() has
 * begun.
 */
H2POOL_EXTERN int h2pool_request_write_body(h2pool *pool, uint64_t id,
                                            const uint8_t *data, size_t len,
                                            size_t *accepted);

/**
 * Ends a streamed upload: once the buffer has been sent, the body ends,
 * followed by `trailers` (may be NULL when `ntrailers` is 0; copied), which
 * are sent as a trailer section. Trailer names and values are checked as
 * request headers are; host and content-length are refused. Over HTTP/1.1
 * trailers need a chunked body, so an upload with trailers there must have
 * been given no content length (h2pool_request_opts_set_queue_upload() with
 * -1); with one, the request fails with H2POOL_ERR_INVALID_HEADER.
 * Thread-safe.
 * Returns as h2pool_request_write_body(), and H2POOL_ERR_INVALID_HEADER for
 * a bad trailer (the body then stays open).
 */
H2POOL_EXTERN int h2pool_request_end_body(h2pool *pool, uint64_t id,
                                          const h2pool_header *trailers,
                                          size_t ntrailers);

/**
 * Closes every connection of `pool` that carries no stream now (with GOAWAY,
 * as the idle timeout would), as Go's Transport.CloseIdleConnections does;
 * connections with streams in flight are left alone. Thread-safe;
 * asynchronous. Returns 0 once queued, H2POOL_ERR_INVALID_ARGUMENT for NULL,
 * H2POOL_ERR_POOL_CLOSED once h2pool_destroy() has begun.
 */
H2POOL_EXTERN int h2pool_close_idle_connections(h2pool *pool);

/**
 * The protocol endpoint `index` speaks (an h2pool_protocol: HTTP/2 or
 * HTTP/1.1), as its latest connection negotiated it (ALPN over TLS,
 * configuration over cleartext); H2POOL_PROTOCOL_UNKNOWN before its first
 * connection is up, or if out of range.
 */
H2POOL_EXTERN int h2pool_stats_endpoint_protocol(const h2pool_stats *stats,
                                                 size_t index);

#ifdef __cplusplus
}
#endif

#endif /* H2POOL_H */
