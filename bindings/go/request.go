package h2pool

/*
#include <stdint.h>
#include <stdlib.h>
#include <h2pool.h>

// Submits a request whose method, URL and headers Go packed into one
// buffer of its own memory (see packOutgoing): the method and the URL,
// each NUL-terminated, then per field its name and value lengths (two
// native uint32) and bytes. The field array is built here, pointing into
// `buf`, which h2pool_queue_request copies, so a request costs one cgo
// call and no C allocation. The user data is a callTable slot (an
// integer), never a Go pointer. Returns the request's id (ids are positive
// and far below 2^63) or a negative H2POOL_ERR_* code.
//
// The handles come as integers: cgo boxes each pointer to an incomplete C
// type it is given into an interface for its pointer check, one heap
// allocation per argument per call, and an out parameter would be one
// more. On the path every request takes, that was three allocations.
static int64_t h2pool_go_queue_request(uintptr_t pool_handle,
                                       uintptr_t queue_handle,
                                       const uint8_t *buf, size_t method_len,
                                       size_t url_len, size_t nheaders,
                                       const uint8_t *body, size_t body_len,
                                       uintptr_t opts_handle,
                                       uintptr_t handle) {
  h2pool *pool = (h2pool *)pool_handle;
  h2pool_queue *queue = (h2pool_queue *)queue_handle;
  const h2pool_request_opts *opts = (const h2pool_request_opts *)opts_handle;
  h2pool_header room[16];
  h2pool_header *hs = room;
  if (nheaders > sizeof room / sizeof room[0]) {
    hs = malloc(nheaders * sizeof *hs);
    if (!hs)
      return H2POOL_ERR_NOMEM;
  }
  const char *method = (const char *)buf;
  const char *url = method + method_len + 1;
  const uint8_t *p = (const uint8_t *)url + url_len + 1;
  for (size_t i = 0; i < nheaders; i++) {
    uint32_t nl = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                  (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    uint32_t vl = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
                  (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    p += 8;
    hs[i].name = nl ? (const char *)p : NULL;
    hs[i].name_len = nl;
    p += nl;
    hs[i].value = vl ? (const char *)p : NULL;
    hs[i].value_len = vl;
    p += vl;
  }
  uint64_t id = 0;
  int rc = h2pool_queue_request(pool, queue, method, url,
                                nheaders ? hs : NULL, nheaders, body,
                                body_len, opts, (void *)handle, &id);
  if (hs != room)
    free(hs);
  return rc != 0 ? (int64_t)rc : (int64_t)id;
}
*/
import "C"

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// defaultUserAgent is sent when a request sets no User-Agent (an empty
// one, as in net/http, sends none).
var defaultUserAgent = func() string {
	_, v := Version()
	return "h2pool-go/" + v
}()

// outgoing is a request as the pool sends it, built from a Request or an
// http.Request.
type outgoing struct {
	method  string
	url     string   // as sent: without userinfo
	given   string   // as the caller gave it
	parsed  *url.URL // the caller's, if any
	fields  []kv
	body    []byte
	reader  io.Reader // streamed body, or nil
	closer  io.Closer // closed once the streamed body is done with
	length  int64     // of a streamed body; -1 unknown
	trailer http.Header
	raw     bool // no automatic decompression
	// Where prepare lists fields, until send has submitted them.
	scratch *sendScratch
}

type kv struct{ k, v string }

// prepare fills o's URL and headers: userinfo becomes Basic authorization
// (unless one is set), a default User-Agent is added, announced trailers
// are named in a Trailer field. `host` replaces the URL's authority.
func (o *outgoing) prepare(rawURL string, u *url.URL, header http.Header, host string) {
	o.url, o.given, o.parsed = rawURL, rawURL, u
	var auth string
	if u == nil && strings.Contains(rawURL, "@") {
		u, _ = url.Parse(rawURL)
	}
	if u != nil {
		if u.User != nil {
			user := u.User.Username()
			pass, _ := u.User.Password()
			auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
			stripped := *u
			stripped.User = nil
			o.url = stripped.String()
		} else if o.url == "" {
			o.url = u.String()
		}
	}
	if o.scratch == nil {
		o.scratch = scratchPool.Get().(*sendScratch)
	}
	o.fields = o.scratch.fields[:0]
	if host != "" {
		o.fields = append(o.fields, kv{"host", host})
	}
	hasUA, hasAuth := false, false
	for k, vs := range header {
		ck := http.CanonicalHeaderKey(k)
		switch ck {
		case "User-Agent":
			hasUA = true
			if len(vs) == 0 || vs[0] == "" {
				continue // net/http: an empty User-Agent sends none
			}
		case "Authorization":
			hasAuth = true
		case "Accept-Encoding":
			// The caller asked for an encoding itself: the body comes back
			// as sent, as net/http does.
			o.raw = true
		}
		for _, v := range vs {
			o.fields = append(o.fields, kv{k, v})
		}
	}
	if !hasUA {
		o.fields = append(o.fields, kv{"user-agent", defaultUserAgent})
	}
	if auth != "" && !hasAuth {
		o.fields = append(o.fields, kv{"authorization", auth})
	}
	if len(o.trailer) > 0 {
		names := make([]string, 0, len(o.trailer))
		for k := range o.trailer {
			names = append(names, http.CanonicalHeaderKey(k))
		}
		o.fields = append(o.fields, kv{"trailer", strings.Join(names, ", ")})
	}
	o.scratch.fields = o.fields
}

// shown is the URL for messages: never with a password.
func (o *outgoing) shown() string {
	if o.parsed != nil {
		return o.parsed.Redacted()
	}
	return redactRaw(o.given)
}

// redactRaw hides the password of a URL that may not even parse, for
// messages: "scheme://user:pass@host" becomes "scheme://user:xxxxx@host".
func redactRaw(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	colon := strings.IndexByte(rest[:at], ':')
	if colon < 0 {
		return s
	}
	return s[:i+3] + rest[:colon+1] + "xxxxx" + rest[at:]
}

// call is the Go side of one request in flight. Its slot in the pool's
// callTable is the request's user data; the drainer frees it at the
// completion.
type call struct {
	p  *Pool
	id uint64
	o  outgoing
	b  body // Response.Body

	resp *Response // the head; set by the drainer before headReady

	mu        sync.Mutex
	headReady bool    // resp is set, or the request is over
	chunks    []chunk // body bytes not yet read
	done      bool    // the completion arrived
	code      Code    // its error code, CodeOK on success
	errInfo   *Error  // its error, if any
	trailer   http.Header
	timings   Timings // so far; final once done
	timed     bool    // timings were reported
	closed    bool    // the body was closed
	bodyErr   error   // reading the request body failed
	wake      chan struct{}
	writable  chan struct{} // streamed uploads only
	finished  chan struct{} // closed at the completion; uploads only
	headSeen  bool          // drainer only
	// Drainer only: the batch (by sequence number) holding the request's
	// completion, and whether the caller is to be woken at the batch's end.
	completesIn uint64
	wakeQueued  bool

	// Room for the common case, so that a small exchange allocates less:
	// one body chunk, and a small body's bytes.
	chunkRoom [1]chunk
	smallRoom [64]byte
	smallUsed bool
	respRoom  Response // *resp, saving an allocation
}

func newCall(p *Pool) *call {
	c := &call{p: p, wake: make(chan struct{}, 1)}
	c.o.length = -1
	c.chunks = c.chunkRoom[:0]
	c.b.c = c
	return c
}

type chunk struct {
	ev   *C.h2pool_event // the event holding data, or nil for a Go copy
	data []byte
}

func (c *call) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Drainer goroutine: the response head arrived.
func (c *call) onHeaders(id uint64, packed []byte) {
	u := unpacker{b: packed}
	r := &c.respRoom
	r.StatusCode = int(u.u32())
	r.Proto, r.ProtoMajor, r.ProtoMinor = protoOf(int(u.u32()))
	r.StreamID = int32(u.u32())
	r.ConnectionID = u.u64()
	r.ContentEncoding = u.str()
	r.Header = u.fields()
	r.c = c
	c.timings = u.timings(&c.p.drain.addrs) // drainer only until headReady
	c.timed = true
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.RequestID = id
	r.ContentLength = -1
	if r.ContentEncoding == "" {
		if cl := r.Header["Content-Length"]; len(cl) == 1 {
			if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
				r.ContentLength = n
			}
		}
	}
	// Trailer names announced up front appear as keys with nil values, as
	// net/http shows them, and get their values at EOF.
	for _, v := range r.Header["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				if r.Trailer == nil {
					r.Trailer = make(http.Header)
				}
				r.Trailer[http.CanonicalHeaderKey(name)] = nil
			}
		}
	}
	r.Body = &c.b
	c.resp = r
	c.headSeen = true
	c.mu.Lock()
	c.headReady = true
	c.mu.Unlock()
}

// Drainer goroutine: body bytes. Returns whether the body took them (and,
// when ev is not nil, keeps the event); the drainer then wakes the reader.
// Bytes to copy (ev nil) are copied here: into the call itself when they
// are few and the first.
func (c *call) onData(ev *C.h2pool_event, data []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	if ev == nil {
		if !c.smallUsed && len(data) <= len(c.smallRoom) {
			c.smallUsed = true
			data = c.smallRoom[:copy(c.smallRoom[:], data)]
		} else {
			data = append([]byte(nil), data...)
		}
	}
	c.chunks = append(c.chunks, chunk{ev: ev, data: data})
	c.mu.Unlock()
	return true
}

func (c *call) onWritable() {
	if c.writable != nil {
		select {
		case c.writable <- struct{}{}:
		default:
		}
	}
}

// Drainer goroutine: the request is over.
func (c *call) onComplete(code Code, packed []byte) {
	u := unpacker{b: packed}
	var trailer http.Header
	if u.u32() != 0 {
		trailer = u.fields()
	}
	var e *Error
	if code != CodeOK {
		e = &Error{Code: code}
		e.HTTP2Code = int64(u.u64())
		e.StreamID = int32(u.u32())
		e.GoawayLastStreamID = int64(u.u64())
		e.Message = u.str()
	} else {
		u.u64() // the error fields of a success
		u.u32()
		u.u64()
		u.str()
	}
	t := u.timings(&c.p.drain.addrs)
	if e != nil {
		e.Timings = t
	}
	c.mu.Lock()
	c.timings = t
	c.timed = true
	c.done = true
	c.code = code
	c.errInfo = e
	c.trailer = trailer
	c.headReady = true
	c.mu.Unlock()
	c.headSeen = true
	if c.finished != nil {
		close(c.finished)
	}
}

// failure is the error a request ended with, seen from ctx: a context that
// is done explains the failure whatever the pool reported (a cancellation,
// a timeout or the pool's shutdown racing with it), so one cause always
// gives one error.
func (c *call) failure(ctx context.Context) *Error {
	e := c.failureOf(ctx)
	c.mu.Lock()
	if c.timed {
		e.Timings = c.timings // also when the context explains the failure
	}
	c.mu.Unlock()
	return e
}

func (c *call) failureOf(ctx context.Context) *Error {
	c.mu.Lock()
	e, bodyErr := c.errInfo, c.bodyErr
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return contextError(err, &c.o)
	}
	if e != nil && e.Code == CodeTimeout {
		// The pool's own timer may fire a little before the context's at
		// the same deadline: that is still the context's deadline.
		if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*time.Millisecond {
			return contextError(context.DeadlineExceeded, &c.o)
		}
	}
	if bodyErr != nil {
		be := codeError(CodeBodySource, "reading the request body of %s %s: %v",
			c.o.method, c.o.shown(), bodyErr)
		be.cause = bodyErr
		return be
	}
	if e == nil {
		return codeError(CodeInternal, "%s %s: no response", c.o.method, c.o.shown())
	}
	out := *e
	if out.Message == "" || out.Message == out.Code.String() {
		out.Message = c.o.method + " " + c.o.shown()
	}
	return &out
}

func contextError(err error, o *outgoing) *Error {
	code := CodeCancelled
	if err == context.DeadlineExceeded {
		code = CodeTimeout
	}
	var e *Error
	if o != nil {
		e = codeError(code, "%s %s", o.method, o.shown())
	} else {
		e = codeError(code, "not sent")
	}
	e.cause = err
	return e
}

// send submits c.o and waits for the response head. On success c.resp is
// set. The httptrace hooks of ctx fire around it: GetConn before, the
// others after the fact from the recorded timings (see traceAfter).
func (p *Pool) send(ctx context.Context, c *call) error {
	trace := httptrace.ContextClientTrace(ctx)
	if trace == nil {
		return p.exchange(ctx, c)
	}
	hp := hostPort(c.o.url)
	if trace.GetConn != nil {
		trace.GetConn(hp)
	}
	err := p.exchange(ctx, c)
	c.mu.Lock()
	tm, timed := c.timings, c.timed
	c.mu.Unlock()
	if timed {
		traceAfter(trace, hp, tm, err)
	}
	return err
}

// exchange is send without the tracing.
func (p *Pool) exchange(ctx context.Context, c *call) error {
	o := &c.o
	closeBody := func() {
		if o.closer != nil {
			o.closer.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeBody()
		return contextError(err, o)
	}
	sc := o.scratch
	if sc == nil {
		sc = scratchPool.Get().(*sendScratch)
		sc.fields = append(sc.fields[:0], o.fields...)
	}
	o.scratch, o.fields = nil, nil
	packed, err := packOutgoing(o.method, o.url, sc.fields, sc.packed)
	sc.packed = packed
	defer func() {
		if cap(sc.packed) <= 64<<10 && cap(sc.fields) <= 1024 {
			for i := range sc.fields {
				sc.fields[i] = kv{}
			}
			sc.fields = sc.fields[:0]
			scratchPool.Put(sc)
		}
	}()
	if err != nil {
		closeBody()
		return err
	}

	var opts *C.h2pool_request_opts // the pool's shared ones unless streaming up
	if o.reader != nil {
		c.writable = make(chan struct{}, 1)
		c.finished = make(chan struct{})
		// Its own variable: the address taken moves it to the heap, which
		// only streamed uploads should pay for.
		var own *C.h2pool_request_opts
		if rc := C.h2pool_request_opts_new(&own); rc != 0 {
			closeBody()
			return codeError(Code(rc), "h2pool_request_opts_new")
		}
		opts = own
		defer C.h2pool_request_opts_free(opts)
		C.h2pool_request_opts_set_queue_streaming(opts, 1)
		if o.raw {
			C.h2pool_request_opts_set_auto_decompress(opts, 0)
		}
		C.h2pool_request_opts_set_queue_upload(opts, 1, C.int64_t(o.length))
	}
	var bodyPtr *C.uint8_t
	if len(o.body) > 0 {
		// Go memory without Go pointers, copied by h2pool_queue_request.
		bodyPtr = (*C.uint8_t)(unsafe.Pointer(&o.body[0]))
	}
	h := p.calls.add(c)
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.calls.remove(h)
		closeBody()
		return poolClosedError()
	}
	if opts == nil {
		// Read under the lock: Close frees them.
		opts = p.optsStream
		if o.raw {
			opts = p.optsStreamRaw
		}
	}
	rc := C.h2pool_go_queue_request(C.uintptr_t(uintptr(unsafe.Pointer(p.c))),
		C.uintptr_t(uintptr(unsafe.Pointer(p.q))), (*C.uint8_t)(unsafe.Pointer(&packed[0])),
		C.size_t(len(o.method)), C.size_t(len(o.url)), C.size_t(len(sc.fields)),
		bodyPtr, C.size_t(len(o.body)), C.uintptr_t(uintptr(unsafe.Pointer(opts))), C.uintptr_t(h))
	p.mu.RUnlock()
	if rc < 0 {
		p.calls.remove(h) // refused: no event will come
		closeBody()
		return codeError(Code(rc), "%s %s", o.method, o.shown())
	}
	c.id = uint64(rc)
	if o.reader != nil {
		go c.upload()
	}
	cancelled := false
	// A context that can never end (context.Background()) has no Done
	// channel: a plain receive then costs less than a select.
	done := ctx.Done()
	for {
		c.mu.Lock()
		ready := c.headReady
		c.mu.Unlock()
		if ready {
			break
		}
		if cancelled || done == nil {
			<-c.wake // when cancelled: prompt, the cancellation completes the request
			continue
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			p.cancel(c.id)
			cancelled = true
		}
	}
	if c.resp == nil || ctx.Err() != nil {
		if c.resp != nil {
			c.b.Close()
		}
		return c.failure(ctx)
	}
	return nil
}

// upload streams the request body from its reader as the pool's upload
// buffer takes it, in its own goroutine, until the body ends or the
// request does.
func (c *call) upload() {
	o := &c.o
	if o.closer != nil {
		// Closed once: when the body is done with, or when the request ends
		// while a Read still blocks (closing is what unblocks it, as
		// http.Transport does).
		var once sync.Once
		closeBody := func() { once.Do(func() { o.closer.Close() }) }
		defer closeBody()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-c.finished:
				closeBody()
			case <-stop:
			}
		}()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := o.reader.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			acc, ok := c.p.writeBody(c.id, data)
			if !ok {
				return // the request is over
			}
			data = data[acc:]
			if len(data) > 0 {
				select {
				case <-c.writable:
				case <-c.finished:
					return
				}
			}
		}
		if err == io.EOF {
			c.p.endBody(c.id, o.trailer)
			return
		}
		if err != nil {
			select {
			case <-c.finished:
				return // over already; this may be our own close
			default:
			}
			c.mu.Lock()
			c.bodyErr = err
			c.mu.Unlock()
			c.p.cancel(c.id)
			return
		}
	}
}

func (p *Pool) writeBody(id uint64, data []byte) (int, bool) {
	var acc C.size_t
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, false
	}
	rc := C.h2pool_request_write_body(p.c, C.uint64_t(id),
		(*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data)), &acc)
	return int(acc), rc == 0
}

func (p *Pool) endBody(id uint64, trailer http.Header) {
	var fields []kv
	for k, vs := range trailer {
		for _, v := range vs {
			fields = append(fields, kv{k, v})
		}
	}
	block, hs, _ := marshalFields(fields, 0)
	if block == nil {
		return
	}
	defer C.free(block)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.closed {
		C.h2pool_request_end_body(p.c, C.uint64_t(id), hs, C.size_t(len(fields)))
	}
}

// body is a response body read as it arrives. The pool stops reading the
// stream while the bytes not yet read reach its download buffer, so a slow
// reader holds the server back instead of filling memory.
type body struct {
	c *call
	// The request's context, or nil for one that can never end (no Done
	// channel), which lets Read wait without a select.
	ctx context.Context
	// The response whose Trailer EOF fills: one of them.
	resp  *Response
	hresp *http.Response
}

func (b *body) Read(p []byte) (int, error) {
	c := b.c
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, http.ErrBodyReadAfterClose
		}
		if len(c.chunks) > 0 {
			n := 0
			var spent []*C.h2pool_event
			for n < len(p) && len(c.chunks) > 0 {
				ch := &c.chunks[0]
				k := copy(p[n:], ch.data)
				n += k
				ch.data = ch.data[k:]
				if len(ch.data) == 0 {
					if ch.ev != nil {
						spent = append(spent, ch.ev)
					}
					c.chunks[0] = chunk{}
					c.chunks = c.chunks[1:]
				}
			}
			c.mu.Unlock()
			// Freed at once: that gives the bytes back to the download
			// buffer and may resume the stream.
			freeEvents(spent)
			return n, nil
		}
		if c.done {
			code, trailer := c.code, c.trailer
			c.mu.Unlock()
			if code != CodeOK || (b.ctx != nil && b.ctx.Err() != nil) {
				return 0, c.failure(b.ctxOrBackground())
			}
			if b.resp != nil {
				b.resp.Trailer = mergeTrailer(b.resp.Trailer, trailer)
				b.resp = nil
			}
			if b.hresp != nil {
				b.hresp.Trailer = mergeTrailer(b.hresp.Trailer, trailer)
				b.hresp = nil
			}
			return 0, io.EOF
		}
		c.mu.Unlock()
		if b.ctx == nil {
			<-c.wake
			continue
		}
		select {
		case <-c.wake:
		case <-b.ctx.Done():
			// The response was returned; reading it now fails, promptly.
			c.p.cancel(c.id)
			<-c.wake
		}
	}
}

// mergeTrailer fills the announced trailer map `into` (or a new one) with
// the trailers that arrived.
func mergeTrailer(into, got http.Header) http.Header {
	if len(got) == 0 {
		return into
	}
	if into == nil {
		into = make(http.Header, len(got))
	}
	for k, v := range got {
		into[k] = v
	}
	return into
}

func (b *body) ctxOrBackground() context.Context {
	if b.ctx != nil {
		return b.ctx
	}
	return context.Background()
}

// setContext records the context Read honours.
func (b *body) setContext(ctx context.Context) {
	if ctx.Done() != nil {
		b.ctx = ctx
	}
}

// Close stops the response: a stream still running is reset (CANCEL) and
// the bytes not yet read are dropped.
func (b *body) Close() error {
	c := b.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	chunks := c.chunks
	c.chunks = nil
	done := c.done
	c.mu.Unlock()
	var evs []*C.h2pool_event
	for _, ch := range chunks {
		if ch.ev != nil {
			evs = append(evs, ch.ev)
		}
	}
	freeEvents(evs)
	if !done {
		c.p.cancel(c.id)
	}
	return nil
}

// marshalFields lays out header fields in one C allocation, with `extra`
// more bytes at its end for the caller (returned as `tail`). The caller
// frees the block.
func marshalFields(fields []kv, extra int) (block unsafe.Pointer, hs *C.h2pool_header, tail []byte) {
	hsize := len(fields) * int(unsafe.Sizeof(C.h2pool_header{}))
	size := hsize + extra
	for _, f := range fields {
		size += len(f.k) + len(f.v)
	}
	if size == 0 {
		size = 1
	}
	block = C.malloc(C.size_t(size))
	if block == nil {
		return nil, nil, nil
	}
	mem := unsafe.Slice((*byte)(block), size)
	off := hsize
	if len(fields) > 0 {
		arr := unsafe.Slice((*C.h2pool_header)(block), len(fields))
		for i, f := range fields {
			arr[i].name, arr[i].value = nil, nil
			arr[i].name_len = C.size_t(len(f.k))
			arr[i].value_len = C.size_t(len(f.v))
			if len(f.k) > 0 {
				arr[i].name = (*C.char)(unsafe.Pointer(&mem[off]))
				off += copy(mem[off:], f.k)
			}
			if len(f.v) > 0 {
				arr[i].value = (*C.char)(unsafe.Pointer(&mem[off]))
				off += copy(mem[off:], f.v)
			}
		}
		hs = &arr[0]
	}
	return block, hs, mem[off : off+extra]
}

// packOutgoing lays out a request's method, URL and fields in buf, in Go memory
// without Go pointers, for h2pool_go_queue_request.
func packOutgoing(method, url string, fields []kv, buf []byte) ([]byte, error) {
	if strings.IndexByte(method, 0) >= 0 {
		return buf, codeError(CodeInvalidMethod, "method contains NUL")
	}
	if strings.IndexByte(url, 0) >= 0 {
		return buf, codeError(CodeInvalidURL, "URL contains NUL")
	}
	buf = append(buf[:0], method...)
	buf = append(buf, 0)
	buf = append(buf, url...)
	buf = append(buf, 0)
	for _, f := range fields {
		if uint64(len(f.k)) > math.MaxUint32 || uint64(len(f.v)) > math.MaxUint32 {
			return buf, codeError(CodeInvalidHeader, "header field too large")
		}
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(f.k)))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(f.v)))
		buf = append(buf, f.k...)
		buf = append(buf, f.v...)
	}
	return buf, nil
}

// sendScratch is what send needs only until the request is submitted: the
// fields prepare lists and the buffer they are packed into, recycled.
type sendScratch struct {
	fields []kv
	packed []byte
}

var scratchPool = sync.Pool{New: func() interface{} {
	return &sendScratch{fields: make([]kv, 0, 8), packed: make([]byte, 0, 512)}
}}

// protoOf names an h2pool_protocol (major*10 + minor) as net/http does.
func protoOf(p int) (string, int, int) {
	switch p {
	case C.H2POOL_PROTOCOL_HTTP_2:
		return "HTTP/2.0", 2, 0
	case C.H2POOL_PROTOCOL_HTTP_1_1:
		return "HTTP/1.1", 1, 1
	case C.H2POOL_PROTOCOL_HTTP_1_0:
		return "HTTP/1.0", 1, 0
	}
	return fmt.Sprintf("HTTP/%d.%d", p/10, p%10), p / 10, p % 10
}
