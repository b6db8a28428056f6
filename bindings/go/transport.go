package h2pool

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Transport is an http.RoundTripper that sends requests through a Pool, so a
// stock *http.Client runs over HTTP/2 with h2pool:
//
//	client := &http.Client{Transport: &h2pool.Transport{Pool: pool}}
//
// Responses are buffered in full. Connection-specific headers, which HTTP/2
// forbids, are dropped from the request.
type Transport struct {
	Pool *Pool
	// DisableCompression, as in http.Transport, stops h2pool from asking
	// for and decoding gzip/deflate bodies.
	DisableCompression bool
}

// RoundTripper returns an http.RoundTripper over the pool.
func (p *Pool) RoundTripper() http.RoundTripper { return &Transport{Pool: p} }

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

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close() // RoundTrip must close the body, also on errors
	}
	if t.Pool == nil {
		return nil, codeError(CodeInvalidArgument, "h2pool.Transport without a Pool")
	}
	if req.URL == nil {
		return nil, codeError(CodeInvalidArgument, "request without a URL")
	}
	r := &Request{
		Method:               req.Method,
		URL:                  req.URL.String(),
		Header:               make(http.Header, len(req.Header)),
		DisableDecompression: t.DisableCompression,
	}
	for k, vs := range req.Header {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] {
			continue
		}
		if ck == "Te" {
			// Only "TE: trailers" may be sent over HTTP/2.
			for _, v := range vs {
				if strings.EqualFold(strings.TrimSpace(v), "trailers") {
					r.Header.Add(k, "trailers")
				}
			}
			continue
		}
		r.Header[k] = vs
	}
	if req.Host != "" && req.Host != req.URL.Host {
		r.Host = req.Host
	}
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	resp, err := t.Pool.Do(req.Context(), r)
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)),
		StatusCode:    resp.StatusCode,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        resp.Header,
		Body:          resp.Body,
		ContentLength: resp.ContentLength,
		Trailer:       resp.Trailer,
		Uncompressed:  resp.ContentEncoding != "",
		Request:       req,
	}, nil
}
