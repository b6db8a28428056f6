package h2pool

/*
#cgo pkg-config: h2pool
#include <stdint.h>
#include <stdlib.h>
#include <h2pool.h>

// Declared in callback.go (//export); _cgo_export.h is not included here.
extern void h2poolGoLog(int level, char *msg, uintptr_t handle);

// The C-typed log callback handed to libh2pool. The user data is a
// runtime/cgo.Handle (an integer), never a Go pointer.
static void h2pool_go_log(int level, const char *msg, void *user_data) {
  h2poolGoLog(level, (char *)msg, (uintptr_t)user_data);
}

static int h2pool_go_config_set_log(h2pool_config *cfg, int level,
                                    uintptr_t handle) {
  return h2pool_config_set_log(cfg, h2pool_go_log, level, (void *)handle);
}
*/
import "C"

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// LogLevel is the verbosity of a Config.Logger (h2pool_log_level).
type LogLevel int

// Log levels, most severe first. A level lets through itself and above.
const (
	LogNone  LogLevel = C.H2POOL_LOG_NONE
	LogError LogLevel = C.H2POOL_LOG_ERROR
	LogWarn  LogLevel = C.H2POOL_LOG_WARN
	LogInfo  LogLevel = C.H2POOL_LOG_INFO
	LogDebug LogLevel = C.H2POOL_LOG_DEBUG
)

// Config configures a Pool. The zero value of every field keeps
// libh2pool's default.
// HTTPVersion is the protocol a Pool speaks (Config.HTTPVersion).
type HTTPVersion int

const (
	// HTTPNegotiate: over TLS the server picks h2 or http/1.1 by ALPN;
	// http:// URLs get HTTP/2 with prior knowledge.
	HTTPNegotiate HTTPVersion = C.H2POOL_HTTP_VERSION_DEFAULT
	// HTTP11: HTTP/1.1 only, over TLS and cleartext.
	HTTP11 HTTPVersion = C.H2POOL_HTTP_VERSION_1_1
	// HTTP2: HTTP/2 only; a TLS server that does not pick h2 is an error.
	HTTP2 HTTPVersion = C.H2POOL_HTTP_VERSION_2
)

type Config struct {
	// MaxConnsPerEndpoint caps connections per (scheme, host, port).
	// Default 10.
	MaxConnsPerEndpoint int
	// LoopThreads is the number of event-loop threads, 1 to 64 (default 1).
	// Requests spread over the loops, each with its own connections (the
	// per-endpoint limit is shared out between them); see
	// h2pool_config_set_loop_threads in include/h2pool.h.
	LoopThreads int
	// MaxConcurrentStreams caps streams per connection below the server's
	// SETTINGS_MAX_CONCURRENT_STREAMS. Default: the server's limit.
	MaxConcurrentStreams int
	// MaxPendingRequests bounds requests waiting for a stream; beyond it Do
	// fails with ErrQueueFull. Default 100,000.
	MaxPendingRequests int
	// ConnectTimeout is the TCP connect timeout per address. Default 10 s.
	ConnectTimeout time.Duration
	// SettingsTimeout bounds the wait for the server's first SETTINGS.
	// Default 10 s.
	SettingsTimeout time.Duration
	// RequestTimeout bounds every request, queueing included, unless its
	// context has an earlier deadline. Default: no limit.
	RequestTimeout time.Duration
	// IdleTimeout closes connections without streams. Default 60 s;
	// negative: never.
	IdleTimeout time.Duration
	// MaxLifetime drains connections older than this. Default 300 s;
	// negative: no limit.
	MaxLifetime time.Duration
	// MaxResponseBodyBytes is libh2pool's limit on a buffered response
	// body. This binding streams every response, so no limit applies to
	// Response.Body; the setting only reaches the C pool.
	MaxResponseBodyBytes int64
	// StreamWindow and ConnectionWindow are the HTTP/2 flow-control
	// windows the pool advertises for response data, per stream and per
	// connection: how much the server may send before the pool has taken
	// it. Larger windows keep bulk downloads from stalling on round trips;
	// smaller ones bound what a slow consumer can be sent. Defaults 8 MiB
	// and 64 MiB; StreamWindow from 1, ConnectionWindow from 65535, both at
	// most 2^31-1 (ErrInvalidArgument otherwise). With adaptive windows
	// (the default) they are the caps the windows grow to as the measured
	// bandwidth-delay product calls for; FixedWindows advertises them from
	// the start instead (h2pool_config_set_adaptive_window).
	StreamWindow     int
	ConnectionWindow int
	FixedWindows     bool
	// MaxDecodedBytes and MaxDecodeRatio limit automatic decompression
	// (ErrDecompressionBomb beyond). Defaults 100 MiB and 100.
	MaxDecodedBytes int64
	MaxDecodeRatio  int
	// MaxResponseHeaderBytes and MaxResponseHeaderFields limit a response's
	// header block (ErrResponseTooLarge beyond). Defaults 262144 and 1000.
	MaxResponseHeaderBytes  int
	MaxResponseHeaderFields int
	// ResponseHeaderTimeout bounds the time from sending a request to its
	// response headers (ErrResponseHeadersTimeout). Default: no limit.
	ResponseHeaderTimeout time.Duration
	// PingInterval sends a health-check PING after that long without
	// reads; a connection whose ACK takes longer than PingTimeout is
	// closed. Defaults 30 s and 10 s; a negative PingInterval disables.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxRequestsPerConnection retires a connection after that many
	// streams. Default: no limit.
	MaxRequestsPerConnection int
	// MaxRetries bounds retries of requests the server provably did not
	// process. Default 3; negative: no retries.
	MaxRetries int
	// RetryIdempotent also retries idempotent requests whose connection was
	// lost before any response header. Default off.
	RetryIdempotent bool
	// HTTPVersion chooses the protocol: HTTPNegotiate (the default) offers
	// h2 and http/1.1 over TLS and lets the server pick, and speaks HTTP/2
	// with prior knowledge to http:// URLs; HTTP11 speaks only HTTP/1.1
	// (one request per connection at a time); HTTP2 only HTTP/2.
	HTTPVersion HTTPVersion

	// CAFile and CADir replace the system trust store for https:// URLs.
	CAFile string
	CADir  string
	// ClientCertFile and ClientKeyFile (PEM) enable mutual TLS; set both.
	ClientCertFile string
	ClientKeyFile  string
	// TLSMinVersion is tls.VersionTLS12 (the default) or tls.VersionTLS13.
	TLSMinVersion uint16
	// Insecure skips server certificate verification. Tests only.
	Insecure bool
	// TLSHandshakeTimeout bounds the TLS handshake. Default 10 s.
	TLSHandshakeTimeout time.Duration

	// Proxy sends every connection through a proxy:
	// "http://[user:pass@]host:port", "https://..." (TLS to the proxy,
	// verified with CAFile/CADir), "socks5://..." or "socks5h://..." (the
	// proxy resolves names). Through an HTTP proxy every request is a
	// CONNECT tunnel, http:// included. Proxy failures are ErrProxyConnect,
	// ErrProxyAuth (407), ErrProxyRefused, ErrProxyClosed and
	// ErrProxyProtocol. Default: none.
	Proxy string
	// ProxyUser and ProxyPassword, when ProxyUser is set, replace the
	// credentials in the proxy URL (Basic for HTTP proxies, RFC 1929 for
	// SOCKS5).
	ProxyUser     string
	ProxyPassword string
	// NoProxy lists the origins that bypass the proxy, with NO_PROXY's
	// syntax ("localhost,.example.com,10.0.0.0/8", "*" for all).
	NoProxy string
	// ProxyFromEnvironment reads HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
	// NO_PROXY (and their lower-case forms, which win) when the pool is
	// created, as http.ProxyFromEnvironment does, except that loopback
	// origins are proxied unless NO_PROXY lists them. Proxy and NoProxy,
	// when set, win over the environment.
	ProxyFromEnvironment bool
	// Resolve and ConnectTo are curl's --resolve ("host:port:addr[,addr]")
	// and --connect-to ("host1:port1:host2:port2") entries: connections
	// for a host and port go to these addresses or that host and port,
	// while TLS and the Host header keep the URL's host. Bad syntax is
	// ErrInvalidArgument from New.
	Resolve   []string
	ConnectTo []string
	// UnixSocket sends every connection to this Unix domain socket
	// ("@name": Linux's abstract namespace), as curl's --unix-socket.
	UnixSocket string
	// LocalAddr is the local IP address TCP connections are made from,
	// LocalPortMin..LocalPortMax the local port range (0, 0: any), and
	// Interface a device to bind to (SO_BINDTODEVICE).
	LocalAddr    string
	LocalPortMin int
	LocalPortMax int
	Interface    string
	// DNSServers replaces /etc/resolv.conf's servers: "addr" or
	// "addr:port" ("[v6]:port") each.
	DNSServers []string
	// KeepAlive enables TCP keepalive, probing after that long idle and
	// then at that interval. Default: off.
	KeepAlive time.Duration
	// HappyEyeballsDelay is how long an address is given before the next
	// one is tried alongside it (RFC 8305). Default 250 ms; negative: one
	// address at a time.
	HappyEyeballsDelay time.Duration

	// Logger receives the pool's log messages, at LogLevel and above
	// (LogWarn when LogLevel is zero). It runs on the pool's loop thread
	// (or in New and Close): it must not block or call the Pool.
	Logger   func(level LogLevel, msg string)
	LogLevel LogLevel
}

// Request is one HTTP request for Pool.Do. The pool copies it before Do
// returns, except BodyReader and Trailer, which it reads while the body is
// sent.
type Request struct {
	// Method is an HTTP method; "" means GET.
	Method string
	// URL is an absolute http:// or https:// URL. Userinfo
	// ("http://user:pass@host/") is sent as Basic authorization, unless
	// Header has an Authorization field, and never appears in an error.
	URL string
	// Header holds extra request headers. Connection-specific headers
	// (Connection, Transfer-Encoding, ...) are refused by HTTP/2. Without a
	// User-Agent field, "h2pool-go/VERSION" is sent; an empty one sends
	// none. An Accept-Encoding field turns automatic decompression off:
	// the body arrives as the server sent it.
	Header http.Header
	// Host, if set, replaces the URL's authority.
	Host string
	// Body is the request body, copied; content-length is sent for it.
	Body []byte
	// BodyReader, instead of Body, streams the body: it is read in its own
	// goroutine as the HTTP/2 flow-control window opens, while the
	// response may already be arriving (full duplex), until io.EOF. If it
	// is an io.Closer it is closed once the request no longer needs it.
	BodyReader io.Reader
	// ContentLength of a BodyReader body, sent as content-length when
	// positive; 0 or -1 mean unknown.
	ContentLength int64
	// Trailer holds request trailers, sent after a BodyReader body; its
	// values may be filled in until BodyReader returns io.EOF.
	Trailer http.Header
	// DisableDecompression turns off automatic decoding of the codings
	// SupportedEncodings lists: accept-encoding is not added and bodies
	// arrive as sent.
	DisableDecompression bool
	// Priority, if set, is sent as the priority header (unless Header has
	// one) and orders the pool's queue when streams are scarce; the server
	// decides whether it answers more urgent requests first.
	Priority *Priority
}

// Priority is an RFC 9218 request priority (Request.Priority): Urgency 0
// (most urgent) to 7, and Incremental when the response is useful in parts.
// Without one a request has the default, urgency 3 and not incremental.
type Priority struct {
	Urgency     int
	Incremental bool
}

// field is the priority header field value (RFC 9218 section 5).
func (pr Priority) field() string {
	v := "u=" + strconv.Itoa(pr.Urgency)
	if pr.Incremental {
		v += ", i"
	}
	return v
}

// NewRequest returns a Request that streams its body from body (which may
// be nil). For *bytes.Buffer, *bytes.Reader and *strings.Reader bodies the
// length is known and sent as content-length, as net/http does.
func NewRequest(method, url string, body io.Reader) (*Request, error) {
	req := &Request{Method: method, URL: url, Header: make(http.Header)}
	if body != nil {
		req.BodyReader = body
		switch v := body.(type) {
		case *bytes.Buffer:
			req.ContentLength = int64(v.Len())
		case *bytes.Reader:
			req.ContentLength = int64(v.Len())
		case *strings.Reader:
			req.ContentLength = int64(v.Len())
		}
	}
	return req, nil
}

// Response is a response whose body streams as it arrives. Any status, 4xx
// and 5xx included, is a response rather than an error.
type Response struct {
	StatusCode int
	// Header holds the response headers under canonical keys.
	Header http.Header
	// Body reads the body as it arrives: the pool holds the server back
	// (HTTP/2 flow control) while the bytes not yet read fill its buffer.
	// A failure after the response headers (a reset, a lost connection,
	// the context ending) is returned by Read. Close it when done: closing
	// before the end resets the stream.
	Body io.ReadCloser
	// Trailer holds the trailer fields sent after the body, once Body has
	// returned io.EOF. Names the server announced in a Trailer header are
	// keys with nil values until then.
	Trailer http.Header
	// ContentEncoding is the content-encoding the server sent when h2pool
	// decoded the body (for example "gzip"), or "" when the body is as
	// received.
	ContentEncoding string
	// ContentLength is the body's length from content-length, or -1 when
	// unknown or when the body was decoded. For HEAD it is the length the
	// server announced.
	ContentLength int64
	// Proto, ProtoMajor and ProtoMinor are the HTTP version the response
	// came over, as net/http sets them: "HTTP/2.0" 2 0, or "HTTP/1.1" 1 1
	// where the server speaks HTTP/1.1 (see Config.HTTPVersion).
	Proto      string
	ProtoMajor int
	ProtoMinor int
	// StreamID is the HTTP/2 stream the response arrived on (0 over
	// HTTP/1.1).
	StreamID int32
	// ConnectionID identifies the pooled connection: equal ids mean the
	// same connection was reused.
	ConnectionID uint64
	// RequestID is libh2pool's id of the request.
	RequestID uint64

	c *call // for Timings
}

// Pool is an HTTP/2 connection pool with its own event-loop thread. Its
// methods are safe for concurrent use.
type Pool struct {
	// mu guards c: Do, cancel and Stats hold it for reading while they use
	// the C handle, Close for writing while it takes it away, so no call
	// races with h2pool_destroy.
	mu     sync.RWMutex
	c      *C.h2pool
	closed bool

	closeOnce      sync.Once
	logHandle      cgo.Handle
	requestTimeout time.Duration

	// Every request's events come through q, drained by one goroutine.
	q     *C.h2pool_queue
	drain *drainer
	calls callTable
	// Shared, never modified after New: streamed responses, with and
	// without automatic decompression.
	optsStream    *C.h2pool_request_opts
	optsStreamRaw *C.h2pool_request_opts
}

// liveHandles counts cgo.Handles and callTable slots not yet released, for
// the leak tests.
var liveHandles int64

func newHandle(v interface{}) cgo.Handle {
	atomic.AddInt64(&liveHandles, 1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	h.Delete()
	atomic.AddInt64(&liveHandles, -1)
}

// SupportedEncodings returns the content-encodings the library decodes, as
// it sends them in Accept-Encoding: "gzip, deflate", then ", br" and
// ", zstd" when it was built with libbrotlidec and libzstd.
func SupportedEncodings() string {
	return C.GoString(C.h2pool_supported_encodings())
}

// Version returns the version of the libh2pool loaded at run time, as
// 0xMMmmpp and as "MAJOR.MINOR.PATCH".
func Version() (uint32, string) {
	var s *C.char
	v := C.h2pool_version(&s)
	return uint32(v), C.GoString(s)
}

func millis(d time.Duration, name string) (C.uint32_t, error) {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if d < 0 || ms > math.MaxUint32 {
		return 0, codeError(CodeInvalidArgument, "Config.%s out of range: %v", name, d)
	}
	return C.uint32_t(ms), nil
}

func count32(n int, name string) (C.uint32_t, error) {
	if n < 0 || uint64(n) > math.MaxUint32 {
		return 0, codeError(CodeInvalidArgument, "Config.%s out of range: %d", name, n)
	}
	return C.uint32_t(n), nil
}

// New creates a pool and starts its loop thread. Close it when done.
func New(cfg Config) (*Pool, error) {
	var ccfg *C.h2pool_config
	if rc := C.h2pool_config_new(&ccfg); rc != 0 {
		return nil, codeError(Code(rc), "h2pool_config_new")
	}
	defer C.h2pool_config_free(ccfg)

	p := &Pool{requestTimeout: cfg.RequestTimeout}
	if err := applyConfig(ccfg, &cfg); err != nil {
		return nil, err
	}
	if cfg.Logger != nil {
		level := cfg.LogLevel
		if level == LogNone {
			level = LogWarn
		}
		p.logHandle = newHandle(cfg.Logger)
		if rc := C.h2pool_go_config_set_log(ccfg, C.int(level), C.uintptr_t(p.logHandle)); rc != 0 {
			deleteHandle(p.logHandle)
			return nil, codeError(Code(rc), "Config.Logger")
		}
	}
	if err := p.initQueue(); err != nil {
		p.freeQueue()
		if p.logHandle != 0 {
			deleteHandle(p.logHandle)
		}
		return nil, err
	}
	if rc := C.h2pool_create(ccfg, &p.c); rc != 0 {
		p.freeQueue()
		if p.logHandle != 0 {
			deleteHandle(p.logHandle)
		}
		return nil, codeError(Code(rc), "creating the pool")
	}
	go p.drain.run()
	runtime.SetFinalizer(p, func(p *Pool) { p.Close() })
	return p, nil
}

func (p *Pool) initQueue() error {
	if rc := C.h2pool_queue_create(&p.q); rc != 0 {
		return codeError(Code(rc), "h2pool_queue_create")
	}
	for _, o := range []**C.h2pool_request_opts{&p.optsStream, &p.optsStreamRaw} {
		if rc := C.h2pool_request_opts_new(o); rc != 0 {
			return codeError(Code(rc), "h2pool_request_opts_new")
		}
		C.h2pool_request_opts_set_queue_streaming(*o, 1)
	}
	C.h2pool_request_opts_set_auto_decompress(p.optsStreamRaw, 0)
	p.drain = newDrainer(p.q, &p.calls)
	if !p.drain.ok() {
		return codeError(CodeNoMem, "allocating the drain buffers")
	}
	return nil
}

// freeQueue frees what initQueue made, once nothing uses it.
func (p *Pool) freeQueue() {
	C.h2pool_queue_destroy(p.q)
	p.q = nil
	C.h2pool_request_opts_free(p.optsStream)
	C.h2pool_request_opts_free(p.optsStreamRaw)
	p.optsStream, p.optsStreamRaw = nil, nil
	if p.drain != nil {
		p.drain.free()
		p.drain = nil
	}
}

func applyConfig(ccfg *C.h2pool_config, cfg *Config) error {
	set := func(rc C.int, name string) error {
		if rc != 0 {
			return codeError(Code(rc), "Config.%s", name)
		}
		return nil
	}
	type setting struct {
		skip bool
		name string
		fn   func() (C.int, error)
	}
	u32 := func(n int, name string, f func(C.uint32_t) C.int) func() (C.int, error) {
		return func() (C.int, error) {
			v, err := count32(n, name)
			if err != nil {
				return 0, err
			}
			return f(v), nil
		}
	}
	dur := func(d time.Duration, name string, f func(C.uint32_t) C.int) func() (C.int, error) {
		return func() (C.int, error) {
			if d < 0 {
				d = 0 // "never" / "no limit"
			}
			v, err := millis(d, name)
			if err != nil {
				return 0, err
			}
			return f(v), nil
		}
	}
	cstr := func(s string, f func(*C.char) C.int) func() (C.int, error) {
		return func() (C.int, error) {
			if strings.IndexByte(s, 0) >= 0 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			cs := C.CString(s)
			defer C.free(unsafe.Pointer(cs))
			return f(cs), nil
		}
	}
	settings := []setting{
		{cfg.MaxConnsPerEndpoint == 0, "MaxConnsPerEndpoint", u32(cfg.MaxConnsPerEndpoint, "MaxConnsPerEndpoint",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_max_connections_per_endpoint(ccfg, v) })},
		{cfg.LoopThreads == 0, "LoopThreads", u32(cfg.LoopThreads, "LoopThreads",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_loop_threads(ccfg, v) })},
		{cfg.MaxConcurrentStreams == 0, "MaxConcurrentStreams", u32(cfg.MaxConcurrentStreams, "MaxConcurrentStreams",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_max_concurrent_streams(ccfg, v) })},
		{cfg.MaxPendingRequests == 0, "MaxPendingRequests", u32(cfg.MaxPendingRequests, "MaxPendingRequests",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_max_pending_requests(ccfg, v) })},
		{cfg.ConnectTimeout == 0, "ConnectTimeout", dur(cfg.ConnectTimeout, "ConnectTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_connect_timeout_ms(ccfg, v) })},
		{cfg.SettingsTimeout == 0, "SettingsTimeout", dur(cfg.SettingsTimeout, "SettingsTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_settings_timeout_ms(ccfg, v) })},
		{cfg.RequestTimeout == 0, "RequestTimeout", dur(cfg.RequestTimeout, "RequestTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_request_timeout_ms(ccfg, v) })},
		{cfg.IdleTimeout == 0, "IdleTimeout", dur(cfg.IdleTimeout, "IdleTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_idle_timeout_ms(ccfg, v) })},
		{cfg.MaxLifetime == 0, "MaxLifetime", dur(cfg.MaxLifetime, "MaxLifetime",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_max_lifetime_ms(ccfg, v) })},
		{cfg.TLSHandshakeTimeout == 0, "TLSHandshakeTimeout", dur(cfg.TLSHandshakeTimeout, "TLSHandshakeTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_tls_handshake_timeout_ms(ccfg, v) })},
		{cfg.ResponseHeaderTimeout == 0, "ResponseHeaderTimeout", dur(cfg.ResponseHeaderTimeout, "ResponseHeaderTimeout",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_response_header_timeout_ms(ccfg, v) })},
		{cfg.PingInterval == 0 && cfg.PingTimeout == 0, "PingInterval", func() (C.int, error) {
			interval, timeout := cfg.PingInterval, cfg.PingTimeout
			if interval == 0 {
				interval = 30 * time.Second
			} else if interval < 0 {
				interval = 0
			}
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			i, err := millis(interval, "PingInterval")
			if err != nil {
				return 0, err
			}
			t, err := millis(timeout, "PingTimeout")
			if err != nil {
				return 0, err
			}
			return C.h2pool_config_set_ping(ccfg, i, t), nil
		}},
		{cfg.MaxRequestsPerConnection == 0, "MaxRequestsPerConnection", u32(cfg.MaxRequestsPerConnection, "MaxRequestsPerConnection",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_max_requests_per_connection(ccfg, v) })},
		{cfg.MaxRetries == 0, "MaxRetries", func() (C.int, error) {
			n := cfg.MaxRetries
			if n < 0 {
				n = 0
			}
			v, err := count32(n, "MaxRetries")
			if err != nil {
				return 0, err
			}
			return C.h2pool_config_set_max_retries(ccfg, v), nil
		}},
		{!cfg.RetryIdempotent, "RetryIdempotent", func() (C.int, error) {
			return C.h2pool_config_set_retry_idempotent(ccfg, 1), nil
		}},
		{cfg.HTTPVersion == HTTPNegotiate, "HTTPVersion", func() (C.int, error) {
			return C.h2pool_config_set_http_version(ccfg, C.h2pool_http_version(cfg.HTTPVersion)), nil
		}},
		{cfg.MaxResponseHeaderBytes == 0 && cfg.MaxResponseHeaderFields == 0, "MaxResponseHeaderBytes", func() (C.int, error) {
			bytes, fields := cfg.MaxResponseHeaderBytes, cfg.MaxResponseHeaderFields
			if bytes == 0 {
				bytes = 262144
			}
			if fields == 0 {
				fields = 1000
			}
			b, err := count32(bytes, "MaxResponseHeaderBytes")
			if err != nil {
				return 0, err
			}
			f, err := count32(fields, "MaxResponseHeaderFields")
			if err != nil {
				return 0, err
			}
			return C.h2pool_config_set_max_response_headers(ccfg, b, f), nil
		}},
		{cfg.MaxDecodedBytes == 0 && cfg.MaxDecodeRatio == 0, "MaxDecodedBytes", func() (C.int, error) {
			max, ratio := cfg.MaxDecodedBytes, cfg.MaxDecodeRatio
			if max == 0 {
				max = 100 << 20
			}
			if ratio == 0 {
				ratio = 100
			}
			if max < 0 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			r, err := count32(ratio, "MaxDecodeRatio")
			if err != nil {
				return 0, err
			}
			return C.h2pool_config_set_decompression_limits(ccfg, C.uint64_t(max), r), nil
		}},
		{cfg.StreamWindow == 0 && cfg.ConnectionWindow == 0, "StreamWindow", func() (C.int, error) {
			stream, conn := cfg.StreamWindow, cfg.ConnectionWindow
			if stream == 0 {
				stream = 8 << 20
			}
			if conn == 0 {
				conn = 64 << 20
			}
			s, err := count32(stream, "StreamWindow")
			if err != nil {
				return 0, err
			}
			c, err := count32(conn, "ConnectionWindow")
			if err != nil {
				return 0, err
			}
			return C.h2pool_config_set_flow_control_windows(ccfg, s, c), nil
		}},
		{!cfg.FixedWindows, "FixedWindows", func() (C.int, error) {
			return C.h2pool_config_set_adaptive_window(ccfg, 0), nil
		}},
		{cfg.MaxResponseBodyBytes == 0, "MaxResponseBodyBytes", func() (C.int, error) {
			if cfg.MaxResponseBodyBytes < 0 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			return C.h2pool_config_set_max_response_body_bytes(ccfg, C.uint64_t(cfg.MaxResponseBodyBytes)), nil
		}},
		{cfg.CAFile == "", "CAFile", cstr(cfg.CAFile,
			func(s *C.char) C.int { return C.h2pool_config_set_tls_ca_file(ccfg, s) })},
		{cfg.CADir == "", "CADir", cstr(cfg.CADir,
			func(s *C.char) C.int { return C.h2pool_config_set_tls_ca_dir(ccfg, s) })},
		{cfg.ClientCertFile == "" && cfg.ClientKeyFile == "", "ClientCertFile", func() (C.int, error) {
			if cfg.ClientCertFile == "" || cfg.ClientKeyFile == "" ||
				strings.IndexByte(cfg.ClientCertFile+cfg.ClientKeyFile, 0) >= 0 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			cert, key := C.CString(cfg.ClientCertFile), C.CString(cfg.ClientKeyFile)
			defer C.free(unsafe.Pointer(cert))
			defer C.free(unsafe.Pointer(key))
			return C.h2pool_config_set_tls_client_cert(ccfg, cert, key), nil
		}},
		{cfg.TLSMinVersion == 0, "TLSMinVersion", func() (C.int, error) {
			return C.h2pool_config_set_tls_min_version(ccfg, C.int(cfg.TLSMinVersion)), nil
		}},
		{!cfg.Insecure, "Insecure", func() (C.int, error) {
			return C.h2pool_config_set_tls_insecure_skip_verify(ccfg, 1), nil
		}},
		{cfg.Proxy == "", "Proxy", cstr(cfg.Proxy,
			func(s *C.char) C.int { return C.h2pool_config_set_proxy(ccfg, s) })},
		{cfg.ProxyUser == "" && cfg.ProxyPassword == "", "ProxyUser", func() (C.int, error) {
			if strings.IndexByte(cfg.ProxyUser+cfg.ProxyPassword, 0) >= 0 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			user, pass := C.CString(cfg.ProxyUser), C.CString(cfg.ProxyPassword)
			defer C.free(unsafe.Pointer(user))
			defer C.free(unsafe.Pointer(pass))
			return C.h2pool_config_set_proxy_credentials(ccfg, user, pass), nil
		}},
		{cfg.NoProxy == "", "NoProxy", cstr(cfg.NoProxy,
			func(s *C.char) C.int { return C.h2pool_config_set_noproxy(ccfg, s) })},
		{!cfg.ProxyFromEnvironment, "ProxyFromEnvironment", func() (C.int, error) {
			return C.h2pool_config_use_proxy_env(ccfg, 1), nil
		}},
		{len(cfg.DNSServers) == 0, "DNSServers", cstr(strings.Join(cfg.DNSServers, ","),
			func(s *C.char) C.int { return C.h2pool_config_set_dns_servers(ccfg, s) })},
		{cfg.UnixSocket == "", "UnixSocket", func() (C.int, error) {
			if strings.HasPrefix(cfg.UnixSocket, "@") {
				return cstr(cfg.UnixSocket[1:], func(s *C.char) C.int {
					return C.h2pool_config_set_abstract_unix_socket(ccfg, s)
				})()
			}
			return cstr(cfg.UnixSocket, func(s *C.char) C.int {
				return C.h2pool_config_set_unix_socket(ccfg, s)
			})()
		}},
		{cfg.LocalAddr == "", "LocalAddr", cstr(cfg.LocalAddr,
			func(s *C.char) C.int { return C.h2pool_config_set_local_address(ccfg, s) })},
		{cfg.LocalPortMin == 0 && cfg.LocalPortMax == 0, "LocalPortMin", func() (C.int, error) {
			if cfg.LocalPortMin < 0 || cfg.LocalPortMax < 0 || cfg.LocalPortMax > 65535 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			return C.h2pool_config_set_local_port_range(ccfg, C.uint32_t(cfg.LocalPortMin),
				C.uint32_t(cfg.LocalPortMax)), nil
		}},
		{cfg.Interface == "", "Interface", cstr(cfg.Interface,
			func(s *C.char) C.int { return C.h2pool_config_set_interface(ccfg, s) })},
		{cfg.KeepAlive <= 0, "KeepAlive", func() (C.int, error) {
			secs := (cfg.KeepAlive + time.Second - 1) / time.Second
			if secs > 32767 {
				return C.H2POOL_ERR_INVALID_ARGUMENT, nil
			}
			return C.h2pool_config_set_tcp_keepalive(ccfg, C.uint32_t(secs), C.uint32_t(secs), 0), nil
		}},
		{cfg.HappyEyeballsDelay == 0, "HappyEyeballsDelay", dur(cfg.HappyEyeballsDelay, "HappyEyeballsDelay",
			func(v C.uint32_t) C.int { return C.h2pool_config_set_happy_eyeballs_delay_ms(ccfg, v) })},
	}
	for _, e := range cfg.Resolve {
		settings = append(settings, setting{false, "Resolve", cstr(e,
			func(s *C.char) C.int { return C.h2pool_config_add_resolve(ccfg, s) })})
	}
	for _, e := range cfg.ConnectTo {
		settings = append(settings, setting{false, "ConnectTo", cstr(e,
			func(s *C.char) C.int { return C.h2pool_config_add_connect_to(ccfg, s) })})
	}
	for _, s := range settings {
		if s.skip {
			continue
		}
		rc, err := s.fn()
		if err != nil {
			return err
		}
		if err := set(rc, s.name); err != nil {
			return err
		}
	}
	return nil
}

func poolClosedError() *Error {
	return codeError(CodePoolClosed, "pool is closed")
}

// Do sends req and returns once the response headers have arrived; the body
// streams through Response.Body. ctx governs the whole exchange: while the
// request waits for a connection, while its body is sent, while it waits
// for the headers, and while the body is read (Read then fails). A failure
// is an *Error: errors.Is matches it with the Err* sentinels, and with
// context.Canceled or context.DeadlineExceeded when ctx caused it (a
// deadline is always ErrTimeout wrapping context.DeadlineExceeded, a
// cancellation ErrCancelled wrapping context.Canceled).
func (p *Pool) Do(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, codeError(CodeInvalidArgument, "nil request")
	}
	if pr := req.Priority; pr != nil && (pr.Urgency < 0 || pr.Urgency > 7) {
		return nil, codeError(CodeInvalidArgument, "Priority.Urgency %d is not 0..7", pr.Urgency)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c := newCall(p)
	o := &c.o
	o.method, o.raw = req.Method, req.DisableDecompression
	if o.method == "" {
		o.method = http.MethodGet
	}
	if req.BodyReader != nil {
		if len(req.Body) > 0 {
			return nil, codeError(CodeInvalidArgument, "both Body and BodyReader set")
		}
		o.reader = req.BodyReader
		o.closer, _ = req.BodyReader.(io.Closer)
		if req.ContentLength > 0 {
			o.length = req.ContentLength
		}
		o.trailer = req.Trailer
	} else {
		o.body = req.Body
	}
	o.prepare(req.URL, nil, req.Header, req.Host)
	if pr := req.Priority; pr != nil && *pr != (Priority{Urgency: 3}) {
		// As the C options do: the default is not worth sending, and a
		// priority header of the caller's own wins.
		if req.Header.Get("Priority") == "" {
			o.fields = append(o.fields, kv{"priority", pr.field()})
			o.scratch.fields = o.fields
		}
	}
	if err := p.send(ctx, c); err != nil {
		return nil, err
	}
	c.b.setContext(ctx)
	c.b.resp = c.resp
	return c.resp, nil
}

func (p *Pool) cancel(id uint64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.closed {
		C.h2pool_cancel(p.c, C.uint64_t(id))
	}
}

// CloseIdleConnections closes the pool's connections that carry no stream,
// as http.Transport's does; the pool opens new ones when needed.
func (p *Pool) CloseIdleConnections() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.closed {
		C.h2pool_close_idle_connections(p.c)
	}
}

// Close shuts the pool down: requests still in flight fail with
// ErrPoolClosed before it returns (from Do, or from their Body's Read),
// connections close with GOAWAY, and the loop thread exits. Later calls to
// Do fail with ErrPoolClosed. Close may be called more than once; every
// call returns after the shutdown.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		c := p.c
		p.c = nil
		p.closed = true
		p.mu.Unlock()
		C.h2pool_destroy(c) // every outstanding request completes into q
		C.h2pool_queue_shutdown(p.q)
		<-p.drain.done // the drainer has handed out every completion
		p.freeQueue()
		if p.logHandle != 0 {
			deleteHandle(p.logHandle)
			p.logHandle = 0
		}
		runtime.SetFinalizer(p, nil)
	})
	return nil
}

// Counters are a pool's (or one endpoint's) statistics.
type Counters struct {
	ConnectionsOpen          uint64 // gauge, connecting ones included
	ConnectionsIdle          uint64 // gauge: open without streams
	ConnectionsCreated       uint64
	ConnectionsReused        uint64 // requests placed on a used connection
	ConnectionsClosed        uint64
	StreamsActive            uint64 // gauge
	RequestsQueued           uint64 // gauge: waiting for a stream slot
	RequestsCompleted        uint64 // any HTTP status
	RequestsFailed           uint64
	RequestsRetried          uint64
	PeakStreamsPerConnection uint64
	TLSHandshakes            uint64
	TLSResumed               uint64
}

// EndpointStats are the statistics of one endpoint, "scheme://host:port".
type EndpointStats struct {
	Name string
	Counters
}

// Stats is a consistent snapshot of a pool's statistics.
type Stats struct {
	Counters
	Endpoints []EndpointStats
}

func readCounters(get func(C.h2pool_stat) C.uint64_t) Counters {
	return Counters{
		ConnectionsOpen:          uint64(get(C.H2POOL_STAT_CONNECTIONS_OPEN)),
		ConnectionsIdle:          uint64(get(C.H2POOL_STAT_CONNECTIONS_IDLE)),
		ConnectionsCreated:       uint64(get(C.H2POOL_STAT_CONNECTIONS_CREATED)),
		ConnectionsReused:        uint64(get(C.H2POOL_STAT_CONNECTIONS_REUSED)),
		ConnectionsClosed:        uint64(get(C.H2POOL_STAT_CONNECTIONS_CLOSED)),
		StreamsActive:            uint64(get(C.H2POOL_STAT_STREAMS_ACTIVE)),
		RequestsQueued:           uint64(get(C.H2POOL_STAT_REQUESTS_QUEUED)),
		RequestsCompleted:        uint64(get(C.H2POOL_STAT_REQUESTS_COMPLETED)),
		RequestsFailed:           uint64(get(C.H2POOL_STAT_REQUESTS_FAILED)),
		RequestsRetried:          uint64(get(C.H2POOL_STAT_REQUESTS_RETRIED)),
		PeakStreamsPerConnection: uint64(get(C.H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION)),
		TLSHandshakes:            uint64(get(C.H2POOL_STAT_TLS_HANDSHAKES)),
		TLSResumed:               uint64(get(C.H2POOL_STAT_TLS_RESUMED)),
	}
}

// Stats takes a snapshot of the pool's statistics.
func (p *Pool) Stats() (Stats, error) {
	var snap *C.h2pool_stats
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return Stats{}, poolClosedError()
	}
	rc := C.h2pool_stats_get(p.c, &snap)
	p.mu.RUnlock()
	if rc != 0 {
		return Stats{}, codeError(Code(rc), "h2pool_stats_get")
	}
	defer C.h2pool_stats_free(snap)
	s := Stats{Counters: readCounters(func(w C.h2pool_stat) C.uint64_t {
		return C.h2pool_stats_value(snap, w)
	})}
	n := int(C.h2pool_stats_endpoint_count(snap))
	for i := 0; i < n; i++ {
		idx := C.size_t(i)
		s.Endpoints = append(s.Endpoints, EndpointStats{
			Name: C.GoString(C.h2pool_stats_endpoint_name(snap, idx)),
			Counters: readCounters(func(w C.h2pool_stat) C.uint64_t {
				return C.h2pool_stats_endpoint_value(snap, idx, w)
			}),
		})
	}
	return s, nil
}
