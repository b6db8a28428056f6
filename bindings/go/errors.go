package h2pool

// #cgo pkg-config: h2pool
// #include <h2pool.h>
import "C"

import (
	"context"
	"fmt"
)

// Code is one of libh2pool's stable negative H2POOL_ERR_* codes.
type Code int

// The error codes of include/h2pool.h, with the same numbers.
const (
	CodeOK                     Code = C.H2POOL_OK
	CodeInvalidArgument        Code = C.H2POOL_ERR_INVALID_ARGUMENT
	CodeNoMem                  Code = C.H2POOL_ERR_NOMEM
	CodeInvalidURL             Code = C.H2POOL_ERR_INVALID_URL
	CodeUnsupportedScheme      Code = C.H2POOL_ERR_UNSUPPORTED_SCHEME
	CodeInvalidHeader          Code = C.H2POOL_ERR_INVALID_HEADER
	CodeInvalidMethod          Code = C.H2POOL_ERR_INVALID_METHOD
	CodeQueueFull              Code = C.H2POOL_ERR_QUEUE_FULL
	CodePoolClosed             Code = C.H2POOL_ERR_POOL_CLOSED
	CodeResolve                Code = C.H2POOL_ERR_RESOLVE
	CodeConnect                Code = C.H2POOL_ERR_CONNECT
	CodeConnectTimeout         Code = C.H2POOL_ERR_CONNECT_TIMEOUT
	CodeSettingsTimeout        Code = C.H2POOL_ERR_SETTINGS_TIMEOUT
	CodeTimeout                Code = C.H2POOL_ERR_TIMEOUT
	CodeCancelled              Code = C.H2POOL_ERR_CANCELLED
	CodeConnectionLost         Code = C.H2POOL_ERR_CONNECTION_LOST
	CodeGoaway                 Code = C.H2POOL_ERR_GOAWAY
	CodeStreamReset            Code = C.H2POOL_ERR_STREAM_RESET
	CodeRefusedStream          Code = C.H2POOL_ERR_REFUSED_STREAM
	CodeProtocol               Code = C.H2POOL_ERR_PROTOCOL
	CodeNotSupported           Code = C.H2POOL_ERR_NOT_SUPPORTED
	CodeResponseTooLarge       Code = C.H2POOL_ERR_RESPONSE_TOO_LARGE
	CodeWrongThread            Code = C.H2POOL_ERR_WRONG_THREAD
	CodeSystem                 Code = C.H2POOL_ERR_SYSTEM
	CodeInternal               Code = C.H2POOL_ERR_INTERNAL
	CodeTLSConfig              Code = C.H2POOL_ERR_TLS_CONFIG
	CodeTLSHandshake           Code = C.H2POOL_ERR_TLS_HANDSHAKE
	CodeTLSVerify              Code = C.H2POOL_ERR_TLS_VERIFY
	CodeTLSALPN                Code = C.H2POOL_ERR_TLS_ALPN
	CodeTLSHandshakeTimeout    Code = C.H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT
	CodeResponseHeadersTimeout Code = C.H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT
	CodeDecompressionBomb      Code = C.H2POOL_ERR_DECOMPRESSION_BOMB
	CodeDecode                 Code = C.H2POOL_ERR_DECODE
	CodeAborted                Code = C.H2POOL_ERR_ABORTED
	CodeBodySource             Code = C.H2POOL_ERR_BODY_SOURCE
	CodeResolveTimeout         Code = C.H2POOL_ERR_RESOLVE_TIMEOUT
	CodeQueueClosed            Code = C.H2POOL_ERR_QUEUE_CLOSED
	CodeNoSuchRequest          Code = C.H2POOL_ERR_NO_SUCH_REQUEST
	CodeProxyConnect           Code = C.H2POOL_ERR_PROXY_CONNECT
	CodeProxyAuth              Code = C.H2POOL_ERR_PROXY_AUTH
	CodeProxyRefused           Code = C.H2POOL_ERR_PROXY_REFUSED
	CodeProxyClosed            Code = C.H2POOL_ERR_PROXY_CLOSED
	CodeProxyProtocol          Code = C.H2POOL_ERR_PROXY_PROTOCOL

	// Extended CONNECT (RFC 8441) is not allowed by the server.
	CodeConnectProtocolUnsupported Code = C.H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED
)

// String returns libh2pool's static description of the code
// (h2pool_strerror).
func (c Code) String() string {
	return C.GoString(C.h2pool_strerror(C.int(c)))
}

func (c Code) isTLS() bool {
	switch c {
	case CodeTLSConfig, CodeTLSHandshake, CodeTLSVerify, CodeTLSALPN,
		CodeTLSHandshakeTimeout:
		return true
	}
	return false
}

// Error is a failure reported by libh2pool: a request it refused, or one
// that completed with an error. Use errors.As to read its fields, and
// errors.Is with the Err* sentinels to test its code.
type Error struct {
	// Code is the H2POOL_ERR_* code.
	Code Code
	// HTTP2Code is the HTTP/2 error code (RFC 9113 section 7) carried by
	// RST_STREAM or GOAWAY, or -1 when the error came without one.
	HTTP2Code int64
	// StreamID is the HTTP/2 stream the request was on, or 0 if none.
	StreamID int32
	// GoawayLastStreamID is the last-stream-id of the GOAWAY that ended
	// the request's connection, or -1 when no GOAWAY was involved.
	GoawayLastStreamID int64
	// Message has the details (may be empty).
	Message string
	// Timings are the phases the request reached before it failed; the
	// zero Timings for an error that did not come from a request's
	// completion (a request refused up front, the Err* sentinels).
	Timings Timings
	// Partial is unused since responses stream: a failure after the
	// response headers is returned by Response.Body's Read. Kept for
	// compatibility; always nil.
	Partial *Response

	// cause is what caused this one, returned by Unwrap: the context error
	// (context.Canceled or context.DeadlineExceeded), or the request body's
	// read error (with CodeBodySource).
	cause error
	// sentinel marks the Err* values, which match by code in Is.
	sentinel bool
}

func (e *Error) Error() string {
	if e == ErrTLS {
		return "h2pool: TLS error"
	}
	s := "h2pool: " + e.Code.String()
	if e.Message != "" && e.Message != e.Code.String() {
		s += ": " + e.Message
	}
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

// Is reports whether target is the sentinel for e's code (ErrTLS matches any
// TLS code), so errors.Is(err, h2pool.ErrTimeout) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || !t.sentinel {
		return false
	}
	if t == ErrTLS {
		return e.Code.isTLS()
	}
	return t.Code == e.Code
}

// Unwrap returns the context error (context.Canceled or
// context.DeadlineExceeded) that caused a cancellation or timeout, the
// request body's read error behind an ErrBodySource, or nil.
func (e *Error) Unwrap() error { return e.cause }

// Timeout reports whether the error is a timeout, like net.Error.
func (e *Error) Timeout() bool {
	switch e.Code {
	case CodeTimeout, CodeConnectTimeout, CodeSettingsTimeout,
		CodeTLSHandshakeTimeout, CodeResponseHeadersTimeout:
		return true
	}
	return e.cause == context.DeadlineExceeded
}

func newSentinel(c Code) *Error {
	return &Error{Code: c, HTTP2Code: -1, GoawayLastStreamID: -1, sentinel: true}
}

// Sentinel errors for errors.Is. Each matches an *Error with that code.
var (
	ErrInvalidArgument        = newSentinel(CodeInvalidArgument)
	ErrNoMem                  = newSentinel(CodeNoMem)
	ErrInvalidURL             = newSentinel(CodeInvalidURL)
	ErrUnsupportedScheme      = newSentinel(CodeUnsupportedScheme)
	ErrInvalidHeader          = newSentinel(CodeInvalidHeader)
	ErrInvalidMethod          = newSentinel(CodeInvalidMethod)
	ErrQueueFull              = newSentinel(CodeQueueFull)
	ErrPoolClosed             = newSentinel(CodePoolClosed)
	ErrResolve                = newSentinel(CodeResolve)
	ErrConnect                = newSentinel(CodeConnect)
	ErrConnectTimeout         = newSentinel(CodeConnectTimeout)
	ErrSettingsTimeout        = newSentinel(CodeSettingsTimeout)
	ErrTimeout                = newSentinel(CodeTimeout)
	ErrCancelled              = newSentinel(CodeCancelled)
	ErrConnectionLost         = newSentinel(CodeConnectionLost)
	ErrGoaway                 = newSentinel(CodeGoaway)
	ErrStreamReset            = newSentinel(CodeStreamReset)
	ErrRefusedStream          = newSentinel(CodeRefusedStream)
	ErrProtocol               = newSentinel(CodeProtocol)
	ErrNotSupported           = newSentinel(CodeNotSupported)
	ErrResponseTooLarge       = newSentinel(CodeResponseTooLarge)
	ErrWrongThread            = newSentinel(CodeWrongThread)
	ErrSystem                 = newSentinel(CodeSystem)
	ErrInternal               = newSentinel(CodeInternal)
	ErrTLSConfig              = newSentinel(CodeTLSConfig)
	ErrTLSHandshake           = newSentinel(CodeTLSHandshake)
	ErrTLSVerify              = newSentinel(CodeTLSVerify)
	ErrTLSALPN                = newSentinel(CodeTLSALPN)
	ErrTLSHandshakeTimeout    = newSentinel(CodeTLSHandshakeTimeout)
	ErrResponseHeadersTimeout = newSentinel(CodeResponseHeadersTimeout)
	ErrDecompressionBomb      = newSentinel(CodeDecompressionBomb)
	ErrDecode                 = newSentinel(CodeDecode)
	ErrAborted                = newSentinel(CodeAborted)
	ErrBodySource             = newSentinel(CodeBodySource)
	ErrResolveTimeout         = newSentinel(CodeResolveTimeout)
	ErrProxyConnect           = newSentinel(CodeProxyConnect)
	ErrProxyAuth              = newSentinel(CodeProxyAuth)
	ErrProxyRefused           = newSentinel(CodeProxyRefused)
	ErrProxyClosed            = newSentinel(CodeProxyClosed)
	ErrProxyProtocol          = newSentinel(CodeProxyProtocol)

	ErrConnectProtocolUnsupported = newSentinel(CodeConnectProtocolUnsupported)
	// ErrTLS matches every TLS error code.
	ErrTLS = &Error{HTTP2Code: -1, GoawayLastStreamID: -1, Message: "TLS error", sentinel: true}
)

// codeError is an *Error for a failure detected before or by a synchronous
// C call.
func codeError(code Code, format string, args ...interface{}) *Error {
	return &Error{
		Code:               code,
		HTTP2Code:          -1,
		GoawayLastStreamID: -1,
		Message:            fmt.Sprintf(format, args...),
	}
}
