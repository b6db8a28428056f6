// Package h2pool is a Go binding for libh2pool, an HTTP/2 client connection
// pool with a C ABI.
//
// A Pool multiplexes requests as streams over a few pooled HTTP/2
// connections per origin. Pool.Do sends one request and waits for its
// buffered response; a context.Context cancels it or bounds it with a
// deadline. Pool.RoundTripper adapts the pool to net/http, so a stock
// *http.Client can run over it.
//
// The package links libh2pool through pkg-config (`#cgo pkg-config: h2pool`):
// set PKG_CONFIG_PATH to the install prefix's lib/pkgconfig when it is not in
// a standard location, and LD_LIBRARY_PATH at run time likewise.
//
// Each request's completion crosses from the pool's loop thread into Go
// through a runtime/cgo.Handle; response bytes are copied into Go memory
// before any user code sees them, and no Go pointer is kept by C.
package h2pool
