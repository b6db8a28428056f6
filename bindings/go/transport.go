package h2pool

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Transport is an http.RoundTripper that sends requests through a Pool, so a
// stock *http.Client runs over HTTP/2 with h2pool:
//
//	client := &http.Client{Transport: &h2pool.Transport{Pool: pool}}
//
// It follows http.Transport's semantics: request bodies stream (full
// duplex: the response may arrive while the body is still being written),
// response bodies stream with backpressure, the request's context governs
// every stage, Accept-Encoding set by the caller returns the body untouched
// (only what the Transport asked for itself is decoded, with Uncompressed
// set), ContentLength is -1 when unknown or decoded, Trailer is filled at
// EOF and request trailers are sent, URL userinfo becomes Basic
// authorization. Connection-specific headers, which HTTP/2 forbids, are
// dropped from the request.
type Transport struct {
	Pool *Pool
	// DisableCompression, as in http.Transport, stops h2pool from asking
	// for and decoding compressed bodies. Where http.Transport asks for
	// gzip alone, h2pool asks for every coding SupportedEncodings lists
	// (br and zstd too, when built in), with the same semantics for each.
	DisableCompression bool
}

// RoundTripper returns an http.RoundTripper over the pool.
func (p *Pool) RoundTripper() http.RoundTripper { return &Transport{Pool: p} }

// CloseIdleConnections closes the pool's idle connections (http.Client's
// CloseIdleConnections calls it).
func (t *Transport) CloseIdleConnections() {
	if t.Pool != nil {
		t.Pool.CloseIdleConnections()
	}
}

// hopByHop lists the headers an HTTP/1 client may set that HTTP/2 refuses
// (RFC 9113 section 8.2.2).
var hopByHop = map[string]bool{
	"Connection":        true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
	"Host":              true, // carried by Request.Host
}

// smallBody is the largest in-memory body (one with GetBody) sent as a copy
// rather than streamed: reading it cannot block, so nothing is lost.
const smallBody = 1 << 20

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, also on errors
		}
	}
	if t.Pool == nil {
		closeBody()
		return nil, codeError(CodeInvalidArgument, "h2pool.Transport without a Pool")
	}
	if req.URL == nil {
		closeBody()
		return nil, codeError(CodeInvalidArgument, "request without a URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	c := newCall(t.Pool)
	o := &c.o
	o.method, o.raw = method, t.DisableCompression
	header := sendableHeader(req.Header)
	host := ""
	if req.Host != "" && req.Host != req.URL.Host {
		host = req.Host
	}
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody != nil && req.ContentLength >= 0 &&
			req.ContentLength <= smallBody && len(req.Trailer) == 0 {
			// An in-memory body (bytes or strings): one copy, no goroutine.
			b := make([]byte, req.ContentLength)
			_, err := io.ReadFull(req.Body, b)
			closeBody()
			if err != nil {
				return nil, err
			}
			o.body = b
		} else {
			o.reader = req.Body
			o.closer = req.Body
			if req.ContentLength > 0 {
				o.length = req.ContentLength
			}
			o.trailer = req.Trailer
		}
	} else if req.Body != nil {
		closeBody()
	}
	o.prepare(req.URL.String(), req.URL, header, host)
	ctx := req.Context()
	if err := t.Pool.send(ctx, c); err != nil {
		return nil, err
	}
	r := c.resp
	b := &c.b
	b.setContext(ctx)
	resp := &http.Response{
		Status:        statusLine(r.StatusCode),
		StatusCode:    r.StatusCode,
		Proto:         r.Proto,
		ProtoMajor:    r.ProtoMajor,
		ProtoMinor:    r.ProtoMinor,
		Header:        r.Header,
		Body:          b,
		ContentLength: r.ContentLength,
		Trailer:       r.Trailer,
		Uncompressed:  r.ContentEncoding != "",
		Request:       req,
	}
	b.hresp = resp
	return resp, nil
}

// sendableHeader is h without the fields HTTP/2 forbids (connection-specific
// ones, and TE other than "trailers"): h itself when it has none, which is
// the common case, else a filtered copy (the caller's map is never changed).
func sendableHeader(h http.Header) http.Header {
	clean := true
	for k := range h {
		if ck := http.CanonicalHeaderKey(k); hopByHop[ck] || ck == "Te" {
			clean = false
			break
		}
	}
	if clean {
		return h
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] {
			continue
		}
		if ck == "Te" {
			// Only "TE: trailers" may be sent over HTTP/2.
			for _, v := range vs {
				if strings.EqualFold(strings.TrimSpace(v), "trailers") {
					out.Add(k, "trailers")
				}
			}
			continue
		}
		out[k] = vs
	}
	return out
}

// statusLines holds http.Response.Status for the codes net/http names,
// built once rather than formatted per response.
var statusLines = func() (t [600]string) {
	for code := range t {
		if text := http.StatusText(code); text != "" {
			t[code] = strconv.Itoa(code) + " " + text
		}
	}
	return t
}()

// statusLine is http.Response.Status for code: "200 OK", or "299 " for a
// code without a name, as net/http shows one.
func statusLine(code int) string {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
