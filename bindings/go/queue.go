package h2pool

// The pool's completion queue and the goroutine that drains it. Every
// request goes through h2pool_queue_request: no Go code runs on the pool's
// loop thread for it. One goroutine per pool waits in h2pool_queue_next
// (a blocking cgo call, so it holds an OS thread while it waits) and hands
// each batch of events to the requests' Go state, so a burst of
// completions costs one cgo call, not one per event.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <h2pool.h>

// One event as the drainer reads it, so that Go needs no cgo call per
// accessor. HEADERS and COMPLETE events have their response head (or
// trailers and error) packed into the caller's scratch buffer at `off`
// (`len` bytes), or `off` is (size_t)-1 when it did not fit.
typedef struct {
  h2pool_event *ev;
  uintptr_t handle;
  uint64_t id;
  const uint8_t *data;
  size_t len;
  size_t off;
  size_t packed;
  int kind;
  int code;
} h2pool_go_event;

static void h2pool_go_put32(uint8_t **p, uint8_t *end, size_t *need,
                            uint32_t v) {
  *need += 4;
  if (*p && *p + 4 <= end) {
    for (int i = 0; i < 4; i++)
      (*p)[i] = (uint8_t)(v >> (8 * i));
    *p += 4;
  } else {
    *p = NULL;
  }
}

static void h2pool_go_put64(uint8_t **p, uint8_t *end, size_t *need,
                            uint64_t v) {
  h2pool_go_put32(p, end, need, (uint32_t)v);
  h2pool_go_put32(p, end, need, (uint32_t)(v >> 32));
}

static void h2pool_go_putb(uint8_t **p, uint8_t *end, size_t *need,
                           const char *s, size_t n) {
  h2pool_go_put32(p, end, need, (uint32_t)n);
  *need += n;
  if (*p && *p + n <= end) {
    if (n)
      memcpy(*p, s, n);
    *p += n;
  } else {
    *p = NULL;
  }
}

static void h2pool_go_fields(uint8_t **p, uint8_t *end, size_t *need,
                             const h2pool_response *r, int trailers) {
  size_t n = trailers ? h2pool_response_trailer_count(r)
                      : h2pool_response_header_count(r);
  h2pool_go_put32(p, end, need, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    h2pool_header h = {0};
    if (trailers)
      h2pool_response_trailer_at(r, i, &h);
    else
      h2pool_response_header_at(r, i, &h);
    h2pool_go_putb(p, end, need, h.name, h.name_len);
    h2pool_go_putb(p, end, need, h.value, h.value_len);
  }
}

// The timings of `r` or, when `e` is set, of `e`: the seven phases, reuse,
// connects, remote ip and port.
static void h2pool_go_timings(uint8_t **p, uint8_t *end, size_t *need,
                              const h2pool_response *r, const h2pool_error *e) {
  for (int i = 0; i <= H2POOL_TIMING_TOTAL; i++)
    h2pool_go_put64(p, end, need,
                    (uint64_t)(e ? h2pool_error_timing_us(e, (h2pool_timing)i)
                                 : h2pool_response_timing_us(r, (h2pool_timing)i)));
  h2pool_go_put32(p, end, need,
                  (uint32_t)(e ? h2pool_error_connection_reused(e)
                               : h2pool_response_connection_reused(r)));
  h2pool_go_put32(p, end, need,
                  (uint32_t)(e ? h2pool_error_num_connects(e)
                               : h2pool_response_num_connects(r)));
  const char *ip = e ? h2pool_error_remote_ip(e) : h2pool_response_remote_ip(r);
  h2pool_go_putb(p, end, need, ip, strlen(ip));
  h2pool_go_put32(p, end, need,
                  (uint32_t)(e ? h2pool_error_remote_port(e)
                               : h2pool_response_remote_port(r)));
}

// HEADERS: status, protocol, stream id, connection id, content-encoding,
// headers, timings so far.
// COMPLETE: whether a response came, its trailers, then the error's HTTP/2
// code, stream id, GOAWAY last stream id and message, then the final
// timings. Returns the size; writes only when it fits in `cap`.
static size_t h2pool_go_pack(const h2pool_event *ev, uint8_t *buf,
                             size_t cap) {
  uint8_t *p = buf, *end = buf + cap;
  size_t need = 0;
  const h2pool_response *r = h2pool_event_response(ev);
  if (h2pool_event_kind(ev) == H2POOL_EVENT_HEADERS) {
    h2pool_go_put32(&p, end, &need, (uint32_t)h2pool_response_status(r));
    h2pool_go_put32(&p, end, &need, (uint32_t)h2pool_response_protocol(r));
    h2pool_go_put32(&p, end, &need, (uint32_t)h2pool_response_stream_id(r));
    h2pool_go_put64(&p, end, &need, h2pool_response_connection_id(r));
    const char *ce = h2pool_response_content_encoding(r);
    h2pool_go_putb(&p, end, &need, ce, ce ? strlen(ce) : 0);
    h2pool_go_fields(&p, end, &need, r, 0);
    h2pool_go_timings(&p, end, &need, r, NULL);
    return need;
  }
  h2pool_go_put32(&p, end, &need, r != NULL);
  if (r)
    h2pool_go_fields(&p, end, &need, r, 1);
  const h2pool_error *e = h2pool_event_error(ev);
  h2pool_go_put64(&p, end, &need, (uint64_t)h2pool_error_http2_code(e));
  h2pool_go_put32(&p, end, &need, (uint32_t)h2pool_error_stream_id(e));
  h2pool_go_put64(&p, end, &need,
                  (uint64_t)h2pool_error_goaway_last_stream_id(e));
  const char *m = h2pool_error_message(e);
  h2pool_go_putb(&p, end, &need, m, strlen(m));
  h2pool_go_timings(&p, end, &need, r, e);
  return need;
}

// Frees `nfree` events the drainer is done with, then takes the next
// batch (waiting up to `timeout_ms`), packing heads into `scratch`.
static int h2pool_go_next(h2pool_queue *q, h2pool_go_event *out, int max,
                          int timeout_ms, h2pool_event **to_free, int nfree,
                          uint8_t *scratch, size_t cap) {
  for (int i = 0; i < nfree; i++)
    h2pool_event_free(to_free[i]);
  h2pool_event *evs[256];
  if (max > 256)
    max = 256;
  int n = h2pool_queue_next(q, evs, (size_t)max, timeout_ms);
  size_t used = 0;
  for (int i = 0; i < n; i++) {
    h2pool_go_event *o = &out[i];
    o->ev = evs[i];
    o->kind = h2pool_event_kind(evs[i]);
    o->handle = (uintptr_t)h2pool_event_user_data(evs[i]);
    o->id = h2pool_event_request_id(evs[i]);
    o->data = h2pool_event_data(evs[i], &o->len);
    o->code = h2pool_error_code(h2pool_event_error(evs[i]));
    if (h2pool_event_error(evs[i]) == NULL)
      o->code = 0;
    o->off = (size_t)-1;
    o->packed = 0;
    if (o->kind == H2POOL_EVENT_HEADERS || o->kind == H2POOL_EVENT_COMPLETE) {
      size_t need = h2pool_go_pack(evs[i], scratch + used, cap - used);
      o->packed = need;
      if (need <= cap - used) {
        o->off = used;
        used += need;
      }
    }
  }
  return n;
}

static void h2pool_go_free_events(h2pool_event **evs, int n) {
  for (int i = 0; i < n; i++)
    h2pool_event_free(evs[i]);
}
*/
import "C"

import (
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	drainBatch   = 256
	drainScratch = 256 << 10
)

// drainer owns the C memory the drain loop uses.
type drainer struct {
	calls   *callTable
	q       *C.h2pool_queue
	out     *C.h2pool_go_event
	toFree  **C.h2pool_event
	scratch *C.uint8_t
	done    chan struct{}
	addrs   addrCache // peers' "ip:port", for the timings
}

func newDrainer(q *C.h2pool_queue, calls *callTable) *drainer {
	d := &drainer{q: q, calls: calls, done: make(chan struct{})}
	d.out = (*C.h2pool_go_event)(C.calloc(drainBatch, C.size_t(unsafe.Sizeof(C.h2pool_go_event{}))))
	d.toFree = (**C.h2pool_event)(C.calloc(drainBatch, C.size_t(unsafe.Sizeof((*C.h2pool_event)(nil)))))
	d.scratch = (*C.uint8_t)(C.malloc(drainScratch))
	return d
}

func (d *drainer) ok() bool { return d.out != nil && d.toFree != nil && d.scratch != nil }

func (d *drainer) free() {
	C.free(unsafe.Pointer(d.out))
	C.free(unsafe.Pointer(d.toFree))
	C.free(unsafe.Pointer(d.scratch))
}

// run drains until the queue is shut down and empty.
//
// Per batch it takes the call table's lock twice (once to look every
// event's call up, once to release the completed ones) and wakes each
// caller once, after its events of the batch are all delivered: a small
// response usually arrives as HEADERS, DATA and COMPLETE in one batch, and
// waking at each of them would make its goroutine run and park up to three
// times.
func (d *drainer) run() {
	defer close(d.done)
	out := unsafe.Slice(d.out, drainBatch)
	toFree := unsafe.Slice(d.toFree, drainBatch)
	scratch := unsafe.Slice((*byte)(unsafe.Pointer(d.scratch)), drainScratch)
	calls := make([]*call, drainBatch)
	wake := make([]*call, 0, drainBatch)
	done := make([]uintptr, 0, drainBatch)
	var seq uint64
	nfree := 0
	for {
		n := int(C.h2pool_go_next(d.q, d.out, drainBatch, -1, d.toFree,
			C.int(nfree), d.scratch, drainScratch))
		nfree = 0
		if n < 0 {
			return // H2POOL_ERR_QUEUE_CLOSED: every request has completed
		}
		batch := out[:n]
		d.calls.lookup(batch, calls)
		// A call's COMPLETE is its last event, so a call marked here gets
		// no data after this batch.
		seq++
		for i := range batch {
			if batch[i].kind == C.H2POOL_EVENT_COMPLETE {
				calls[i].completesIn = seq
			}
		}
		for i := range batch {
			ev := &batch[i]
			c := calls[i]
			calls[i] = nil
			var packed []byte
			if ev.kind == C.H2POOL_EVENT_HEADERS || ev.kind == C.H2POOL_EVENT_COMPLETE {
				if ev.off != ^C.size_t(0) {
					packed = scratch[ev.off : ev.off+ev.packed]
				} else {
					packed = packSlow(ev.ev, int(ev.packed))
				}
			}
			keep, woken := false, false
			switch ev.kind {
			case C.H2POOL_EVENT_HEADERS:
				c.onHeaders(uint64(ev.id), packed)
				woken = true
			case C.H2POOL_EVENT_DATA:
				// When the request's completion is in this same batch no
				// more data will come: the bytes are copied and the event
				// freed with the batch, saving a cgo call per response.
				data := unsafe.Slice((*byte)(unsafe.Pointer(ev.data)), int(ev.len))
				if c.completesIn == seq {
					woken = c.onData(nil, data)
				} else {
					keep = c.onData(ev.ev, data)
					woken = keep
				}
			case C.H2POOL_EVENT_WRITABLE:
				c.onWritable()
			case C.H2POOL_EVENT_COMPLETE:
				done = append(done, uintptr(ev.handle))
				c.onComplete(Code(ev.code), packed)
				woken = true
			}
			if woken && !c.wakeQueued {
				c.wakeQueued = true
				wake = append(wake, c)
			}
			if !keep {
				toFree[nfree] = ev.ev
				nfree++
			}
		}
		d.calls.removeAll(done)
		done = done[:0]
		for i, c := range wake {
			c.wakeQueued = false
			c.notify()
			wake[i] = nil
		}
		wake = wake[:0]
	}
}

func packSlow(ev *C.h2pool_event, n int) []byte {
	buf := C.malloc(C.size_t(n))
	if buf == nil {
		return nil
	}
	defer C.free(buf)
	C.h2pool_go_pack(ev, (*C.uint8_t)(buf), C.size_t(n))
	return C.GoBytes(buf, C.int(n))
}

func freeEvents(evs []*C.h2pool_event) {
	if len(evs) > 0 {
		C.h2pool_go_free_events(&evs[0], C.int(len(evs)))
	}
}

func freeEvent(ev *C.h2pool_event) { C.h2pool_event_free(ev) }

// unpacker reads what h2pool_go_pack wrote.
type unpacker struct {
	b   []byte
	bad bool
}

func (u *unpacker) u32() uint32 {
	if len(u.b) < 4 {
		u.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(u.b)
	u.b = u.b[4:]
	return v
}

func (u *unpacker) u64() uint64 {
	lo := uint64(u.u32())
	return lo | uint64(u.u32())<<32
}

// raw is a length-prefixed field's bytes, aliasing the packed buffer.
func (u *unpacker) raw() []byte {
	n := int(u.u32())
	if n > len(u.b) {
		u.bad = true
		return nil
	}
	b := u.b[:n]
	u.b = u.b[n:]
	return b
}

func (u *unpacker) str() string {
	n := int(u.u32())
	if n > len(u.b) {
		u.bad = true
		return ""
	}
	s := string(u.b[:n])
	u.b = u.b[n:]
	return s
}

// fields reads a field list into an http.Header under canonical keys. One
// string holds every name and value (the rest are substrings of it) and
// one slice every first value, so a response head costs a few
// allocations, not several per field.
func (u *unpacker) fields() http.Header {
	n := int(u.u32())
	if n == 0 || u.bad {
		return nil
	}
	all := string(u.b)
	base := len(u.b)
	sub := func() string {
		k := int(u.u32())
		if k > len(u.b) {
			u.bad = true
			return ""
		}
		at := base - len(u.b)
		u.b = u.b[k:]
		return all[at : at+k]
	}
	h := make(http.Header, n)
	vals := make([]string, n)
	for i := 0; i < n && !u.bad; i++ {
		name, value := sub(), sub()
		k, ok := commonFields[name]
		if !ok {
			k = http.CanonicalHeaderKey(name)
		}
		if old, dup := h[k]; dup {
			h[k] = append(old, value)
			continue
		}
		vals[i] = value
		h[k] = vals[i : i+1 : i+1]
	}
	return h
}

// commonFields maps frequent lower-case HTTP/2 field names to the
// canonical keys of http.Header without building them each time.
var commonFields = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept-Ranges", "Age", "Cache-Control",
		"Content-Encoding", "Content-Language", "Content-Length",
		"Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Link",
		"Location", "Server", "Set-Cookie", "Trailer", "Vary", "Via",
		"X-Content-Type-Options", "X-Request-Count", "X-Request-Body-Length"} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// callTable maps the user data of queued requests (a small integer) to
// their calls: a slice with a free list under one mutex, cheaper than a
// cgo.Handle (a sync.Map) per request.
type callTable struct {
	mu    sync.Mutex
	slots []*call
	free  []uintptr
}

func (t *callTable) add(c *call) uintptr {
	t.mu.Lock()
	var h uintptr
	if n := len(t.free); n > 0 {
		h = t.free[n-1]
		t.free = t.free[:n-1]
		t.slots[h-1] = c
	} else {
		t.slots = append(t.slots, c)
		h = uintptr(len(t.slots))
	}
	t.mu.Unlock()
	atomic.AddInt64(&liveHandles, 1)
	return h
}

// lookup fills calls[i] with the call of batch[i], under one lock.
func (t *callTable) lookup(batch []C.h2pool_go_event, calls []*call) {
	t.mu.Lock()
	for i := range batch {
		calls[i] = t.slots[batch[i].handle-1]
	}
	t.mu.Unlock()
}

func (t *callTable) remove(h uintptr) {
	t.removeAll([]uintptr{h})
}

// removeAll frees the slots of calls that are over, under one lock.
func (t *callTable) removeAll(hs []uintptr) {
	if len(hs) == 0 {
		return
	}
	t.mu.Lock()
	for _, h := range hs {
		t.slots[h-1] = nil
	}
	t.free = append(t.free, hs...)
	t.mu.Unlock()
	atomic.AddInt64(&liveHandles, -int64(len(hs)))
}

// bufPool recycles the buffers upload goroutines read request bodies into.
var bufPool = sync.Pool{New: func() interface{} {
	b := make([]byte, 64<<10)
	return &b
}}
