package h2pool

// The exported trampolines that libh2pool calls on its loop thread. The cgo
// preamble of this file holds declarations only: cgo copies it into the
// generated _cgo_export.h, so a definition here would be duplicated.

// #include <stdint.h>
// #include <h2pool.h>
import "C"

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"runtime/cgo"
	"unsafe"
)

// h2poolGoComplete is the completion callback of every request (through
// h2pool_go_complete in h2pool.go). It runs exactly once per accepted
// request, on the pool's loop thread: it copies the borrowed response and
// error into Go memory, releases the request's handle and hands the result
// to the waiting goroutine without blocking.
//
//export h2poolGoComplete
func h2poolGoComplete(resp *C.h2pool_response, cerr *C.h2pool_error, handle C.uintptr_t) {
	h := cgo.Handle(handle)
	c := h.Value().(*call)
	deleteHandle(h)

	var r result
	if resp != nil {
		r.resp = copyResponse(resp)
	}
	if cerr != nil {
		e := copyError(cerr)
		e.Partial = r.resp
		r.resp = nil
		r.err = e
	}
	c.done <- r // buffered (capacity 1), written exactly once: never blocks
}

// h2poolGoLog is the log callback of pools created with Config.Logger. It
// runs on the loop thread or on the thread creating or destroying the pool.
//
//export h2poolGoLog
func h2poolGoLog(level C.int, msg *C.char, handle C.uintptr_t) {
	logger, ok := cgo.Handle(handle).Value().(func(LogLevel, string))
	if !ok || logger == nil {
		return
	}
	text := C.GoString(msg)
	defer func() {
		// A panic must not unwind into C; a logger's panic is dropped.
		_ = recover()
	}()
	logger(LogLevel(level), text)
}

// goBytes copies n borrowed bytes at p into Go memory.
func goBytes(p unsafe.Pointer, n C.size_t) []byte {
	if n == 0 || p == nil {
		return []byte{}
	}
	if n <= math.MaxInt32 {
		return C.GoBytes(p, C.int(n))
	}
	b := make([]byte, int(n))
	copy(b, unsafe.Slice((*byte)(p), int(n)))
	return b
}

func copyResponse(resp *C.h2pool_response) *Response {
	count := int(C.h2pool_response_header_count(resp))
	header := make(http.Header, count)
	for i := 0; i < count; i++ {
		var h C.h2pool_header
		if C.h2pool_response_header_at(resp, C.size_t(i), &h) != 0 {
			continue
		}
		header.Add(C.GoStringN(h.name, C.int(h.name_len)),
			C.GoStringN(h.value, C.int(h.value_len)))
	}
	var trailer http.Header
	if count := int(C.h2pool_response_trailer_count(resp)); count > 0 {
		trailer = make(http.Header, count)
		for i := 0; i < count; i++ {
			var h C.h2pool_header
			if C.h2pool_response_trailer_at(resp, C.size_t(i), &h) != 0 {
				continue
			}
			trailer.Add(C.GoStringN(h.name, C.int(h.name_len)),
				C.GoStringN(h.value, C.int(h.value_len)))
		}
	}
	var encoding string
	if e := C.h2pool_response_content_encoding(resp); e != nil {
		encoding = C.GoString(e)
	}
	var n C.size_t
	p := C.h2pool_response_body(resp, &n)
	body := goBytes(unsafe.Pointer(p), n)
	return &Response{
		Trailer:         trailer,
		ContentEncoding: encoding,
		StatusCode:      int(C.h2pool_response_status(resp)),
		Header:          header,
		Body:            io.NopCloser(bytes.NewReader(body)),
		ContentLength:   int64(len(body)),
		StreamID:        int32(C.h2pool_response_stream_id(resp)),
		ConnectionID:    uint64(C.h2pool_response_connection_id(resp)),
		RequestID:       uint64(C.h2pool_response_request_id(resp)),
	}
}

func copyError(cerr *C.h2pool_error) *Error {
	return &Error{
		Code:               Code(C.h2pool_error_code(cerr)),
		HTTP2Code:          int64(C.h2pool_error_http2_code(cerr)),
		StreamID:           int32(C.h2pool_error_stream_id(cerr)),
		GoawayLastStreamID: int64(C.h2pool_error_goaway_last_stream_id(cerr)),
		Message:            C.GoString(C.h2pool_error_message(cerr)),
	}
}
