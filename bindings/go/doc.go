// Package h2pool is a Go binding for libh2pool, an HTTP/2 client connection
// pool with a C ABI.
//
// A Pool multiplexes requests as streams over a few pooled HTTP/2
// connections per origin. Pool.Do sends one request and returns once its
// response headers have arrived; the body streams through Response.Body
// with backpressure, and a request body may stream from an io.Reader. A
// context.Context governs every stage. Pool.RoundTripper adapts the pool to
// net/http with net/http's semantics, so a stock *http.Client can run over
// it.
//
// The package links libh2pool through pkg-config (`#cgo pkg-config: h2pool`):
// set PKG_CONFIG_PATH to the install prefix's lib/pkgconfig when it is not in
// a standard location, and LD_LIBRARY_PATH at run time likewise.
//
// Requests never call back into Go from the pool's loop thread: their
// events go to the pool's completion queue (h2pool_queue), which one
// goroutine drains in batches. The C side holds only small integers naming
// each request's Go state, never a Go pointer.
package h2pool
