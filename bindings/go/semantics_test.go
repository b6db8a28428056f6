package h2pool

// net/http's client semantics, checked against the RoundTripper and Do with
// Go's own HTTP/2 server (httptest over TLS on 127.0.0.1), whose handlers
// can do what a scripted server cannot: answer before the request body
// ends, read request trailers, block until the client goes away.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// h2Server starts an HTTP/2 TLS server on loopback and a pool that trusts
// it.
func h2Server(t *testing.T, h http.Handler, cfg Config) (*httptest.Server, *Pool) {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CAFile = ca
	return s, newPool(t, cfg)
}

func client(p *Pool) *http.Client { return &http.Client{Transport: p.RoundTripper()} }

func mustRead(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return string(b)
}

// A body writer that waits for the response before writing more: the
// response head must arrive while the request body is still open.
func TestFullDuplexEcho(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(bytes.ToUpper(buf[:n]))
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}), Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/", pr)
	go pw.Write([]byte("ping"))
	resp, err := client(p).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "PING" {
		t.Fatalf("first echo %q, %v", buf, err)
	}
	go func() {
		pw.Write([]byte("pong"))
		pw.Close()
	}()
	if rest := mustRead(t, resp.Body); rest != "PONG" {
		t.Fatalf("second echo %q", rest)
	}
}

// The context's deadline holds while the request body blocks (net/http
// returns at the deadline; reading the body in full first would not).
func TestDeadlineWhileRequestBodyBlocks(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}), Config{})
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/", pr)
	start := time.Now()
	_, err := client(p).Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("returned after %v with a 200 ms deadline", d)
	}
	// The transport closes the body it no longer needs, which unblocks the
	// writer side. (A Read still pending may take one more write first.)
	_, err = pw.Write([]byte("x"))
	if err == nil {
		_, err = pw.Write([]byte("x"))
	}
	if err != io.ErrClosedPipe {
		t.Errorf("write to the abandoned body: %v, want io.ErrClosedPipe", err)
	}
}

// One cause, one error: a deadline while waiting for the headers is always
// ErrTimeout wrapping context.DeadlineExceeded, never ErrCancelled.
func TestDeadlineIsAlwaysTheSameError(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{RequestTimeout: 10 * time.Millisecond})
	for i := 0; i < 60; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err := p.Do(ctx, &Request{URL: serverURL + "/?delay_ms=2000"})
		cancel()
		e := asError(t, err)
		if e.Code != CodeTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run %d: %v (code %d), want ErrTimeout wrapping DeadlineExceeded", i, err, e.Code)
		}
	}
}

func TestCancelWhileQueued(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{MaxConnsPerEndpoint: 1, MaxConcurrentStreams: 1})
	busy, stop := context.WithCancel(context.Background())
	defer stop()
	go p.Do(busy, &Request{URL: serverURL + "/?delay_ms=5000"})
	waitFor(t, "the first request to hold the only stream", func() bool {
		s, err := p.Stats()
		return err == nil && s.StreamsActive == 1
	})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := p.Do(ctx, &Request{URL: serverURL + "/"})
		errs <- err
	}()
	waitFor(t, "the second request to queue", func() bool {
		s, err := p.Stats()
		return err == nil && s.RequestsQueued == 1
	})
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
			t.Fatalf("error %v, want ErrCancelled wrapping context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued request not cancelled")
	}
}

// Cancelling while the body is read returns the response and fails the read.
func TestCancelMidBodyFailsRead(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first part"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}), Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/", nil)
	resp, err := client(p).Do(req)
	if err != nil {
		t.Fatalf("Do: %v (the response had begun)", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first part" {
		t.Fatalf("read %q, %v", buf, err)
	}
	cancel()
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
}

func TestBodyCloseStopsStreamAndLaterReadsFail(t *testing.T) {
	gone := make(chan struct{})
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}), Config{})
	resp, err := client(p).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-gone: // the stream was reset
	case <-time.After(5 * time.Second):
		t.Fatal("server still streaming after Body.Close")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err != http.ErrBodyReadAfterClose {
		t.Fatalf("read after close: %v", err)
	}
}

// A reader that takes nothing holds the server back: the bytes the server
// gets out stay near the flow-control window and the pool's buffer.
func TestSlowReaderHoldsServerBack(t *testing.T) {
	const total = 64 << 20
	var written int64
	done := make(chan struct{})
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		chunk := make([]byte, 32<<10)
		for n := 0; n < total; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			atomic.AddInt64(&written, int64(len(chunk)))
		}
	}), Config{StreamWindow: 256 << 10})
	resp, err := client(p).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Unbounded buffering would take the whole body in well under a second
	// on loopback; give it that long, then check.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("server wrote all %d bytes to a reader that read none", total)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if w := atomic.LoadInt64(&written); w > 8<<20 {
		t.Fatalf("server got %d bytes out to a reader that read none", w)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != total {
		t.Fatalf("read %d bytes, %v; want %d", n, err, total)
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte(s))
	z.Close()
	return b.Bytes()
}

func gzipHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Write([]byte(body))
			return
		}
		z := gzipped(body)
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(z)))
		w.Write(z)
	})
}

func TestCallerAcceptEncodingGetsRawBytes(t *testing.T) {
	const text = "hello hello hello hello"
	s, p := h2Server(t, gzipHandler(text), Config{})
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client(p).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := mustRead(t, resp.Body)
	resp.Body.Close()
	if raw != string(gzipped(text)) {
		t.Errorf("body %q: want the gzip bytes untouched", raw)
	}
	if resp.Uncompressed || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.ContentLength != int64(len(raw)) {
		t.Errorf("Uncompressed %v, Content-Encoding %q, ContentLength %d",
			resp.Uncompressed, resp.Header.Get("Content-Encoding"), resp.ContentLength)
	}
}

// Bodies made once with libbrotlienc (quality 5) and libzstd (level 3):
// Go's standard library has no encoder for either.
const (
	preEncodedText = "hello from a pre-encoded body, hello, hello, hello"
	preEncodedBr   = "\x1b\x31\x00\x00\x04\xea\x64\xa9\xde\xfa\x7f\x0d\x8c\xcc\x34\x30\x91\x03\x87\x2c\xd3\x76\x90\xc3\x44\x0e\x30\x2b\xfb\xce\xa6\x25\x5a\x82\xbd\xf6\x11\x97\x9c\x7a\xa1\x1c\x00"
	preEncodedZstd = "\x28\xb5\x2f\xfd\x20\x32\x5d\x01\x00\x44\x02\x68\x65\x6c\x6c\x6f\x20\x66\x72\x6f\x6d\x20\x61\x20\x70\x72\x65\x2d\x65\x6e\x63\x6f\x64\x65\x64\x20\x62\x6f\x64\x79\x2c\x20\x68\x65\x6c\x6c\x6f\x01\x00\x94\x5c\x9e"
)

// br and zstd, when the library has them, behave as gzip does: the
// Transport asks for them itself, decodes them and says so with
// Uncompressed; a caller's own Accept-Encoding gets the bytes as sent.
func TestTransportDecodesBrAndZstdLikeGzip(t *testing.T) {
	supported := SupportedEncodings()
	if !strings.HasPrefix(supported, "gzip, deflate") {
		t.Fatalf("SupportedEncodings() = %q", supported)
	}
	for _, c := range []struct{ coding, body string }{
		{"br", preEncodedBr}, {"zstd", preEncodedZstd},
	} {
		t.Run(c.coding, func(t *testing.T) {
			if !strings.Contains(supported+",", " "+c.coding+",") {
				t.Skipf("libh2pool built without %s (%q)", c.coding, supported)
			}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Got-Accept-Encoding", r.Header.Get("Accept-Encoding"))
				w.Header().Set("Content-Encoding", c.coding)
				w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
				io.WriteString(w, c.body)
			})
			s, p := h2Server(t, h, Config{})
			resp, err := client(p).Get(s.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			got := mustRead(t, resp.Body)
			resp.Body.Close()
			if got != preEncodedText {
				t.Errorf("body %q, want %q", got, preEncodedText)
			}
			if ae := resp.Header.Get("X-Got-Accept-Encoding"); ae != supported {
				t.Errorf("server saw Accept-Encoding %q, want %q", ae, supported)
			}
			if !resp.Uncompressed || resp.ContentLength != -1 ||
				resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("Uncompressed %v, ContentLength %d, headers %v",
					resp.Uncompressed, resp.ContentLength, resp.Header)
			}

			req, _ := http.NewRequest("GET", s.URL+"/", nil)
			req.Header.Set("Accept-Encoding", c.coding)
			resp, err = client(p).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw := mustRead(t, resp.Body)
			resp.Body.Close()
			if raw != c.body || resp.Uncompressed ||
				resp.Header.Get("Content-Encoding") != c.coding {
				t.Errorf("caller's Accept-Encoding: body %q, Uncompressed %v, "+
					"Content-Encoding %q", raw, resp.Uncompressed,
					resp.Header.Get("Content-Encoding"))
			}
		})
	}
}

func TestTransportDecodesWhatItAskedFor(t *testing.T) {
	const text = "hello hello hello hello"
	s, p := h2Server(t, gzipHandler(text), Config{})
	resp, err := client(p).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, resp.Body); got != text {
		t.Errorf("body %q, want %q", got, text)
	}
	resp.Body.Close()
	if !resp.Uncompressed || resp.ContentLength != -1 ||
		resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("Uncompressed %v, ContentLength %d, headers %v", resp.Uncompressed,
			resp.ContentLength, resp.Header)
	}
	tr := &Transport{Pool: p, DisableCompression: true}
	resp, err = (&http.Client{Transport: tr}).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, resp.Body); got != text || resp.Header.Get("X-Got-Accept-Encoding") != "" {
		t.Errorf("DisableCompression: body %q, server saw Accept-Encoding %q", got,
			resp.Header.Get("X-Got-Accept-Encoding"))
	}
	resp.Body.Close()
}

func TestContentLengthKnownUnknownAndHead(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/unknown" {
			w.Write([]byte("abc"))
			w.(http.Flusher).Flush() // no content-length once flushed
			w.Write([]byte("def"))
			return
		}
		w.Header().Set("Content-Length", "5")
		if r.Method != "HEAD" {
			w.Write([]byte("12345"))
		}
	}), Config{})
	c := client(p)
	for _, tc := range []struct {
		method, path string
		want         int64
		body         string
	}{{"GET", "/", 5, "12345"}, {"HEAD", "/", 5, ""}, {"GET", "/unknown", -1, "abcdef"}} {
		req, _ := http.NewRequest(tc.method, s.URL+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := mustRead(t, resp.Body)
		resp.Body.Close()
		if resp.ContentLength != tc.want || got != tc.body {
			t.Errorf("%s %s: ContentLength %d body %q, want %d %q", tc.method, tc.path,
				resp.ContentLength, got, tc.want, tc.body)
		}
	}
}

func TestResponseTrailersFilledAtEOF(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Announced")
		w.Write([]byte("body"))
		w.Header().Set("X-Announced", "yes")
		w.Header().Set(http.TrailerPrefix+"X-Late", "also")
	}), Config{})
	resp, err := client(p).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v, ok := resp.Trailer["X-Announced"]; !ok || v != nil {
		t.Errorf("before EOF: Trailer %v, want the announced key with no value", resp.Trailer)
	}
	mustRead(t, resp.Body)
	if resp.Trailer.Get("X-Announced") != "yes" || resp.Trailer.Get("X-Late") != "also" {
		t.Errorf("after EOF: Trailer %v", resp.Trailer)
	}
}

func TestRequestTrailersAreSent(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", b, r.Trailer.Get("X-Sum"))
	}), Config{})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.URL+"/", pr)
	req.Trailer = http.Header{"X-Sum": nil}
	go func() {
		pw.Write([]byte("payload"))
		req.Trailer.Set("X-Sum", "42") // filled before EOF, as net/http allows
		pw.Close()
	}()
	resp, err := client(p).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := mustRead(t, resp.Body); got != "payload|42" {
		t.Errorf("server saw %q", got)
	}
}

func TestUserinfoIsBasicAuthAndNeverInErrors(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		fmt.Fprintf(w, "%v %s %s", ok, u, pw)
	}), Config{})
	withAuth := strings.Replace(s.URL, "https://", "https://gopher:s3cret@", 1)
	resp, err := client(p).Get(withAuth + "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, resp.Body); got != "true gopher s3cret" {
		t.Errorf("server saw %q", got)
	}
	resp.Body.Close()
	r2, err := p.Do(context.Background(), &Request{URL: withAuth + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, r2.Body); got != "true gopher s3cret" {
		t.Errorf("Do: server saw %q", got)
	}
	r2.Body.Close()

	// Failures name the URL without its password.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://gopher:s3cret@" + l.Addr().String() + "/"
	l.Close()
	for _, u := range []string{refused, "http://gopher:s3cret@bad host/", "ftp://gopher:s3cret@x/"} {
		_, err := p.Do(context.Background(), &Request{URL: u})
		if err == nil {
			t.Fatalf("%s: no error", u)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
		if _, perr := url.Parse(u); perr != nil {
			continue // net/http's own parse error, before any transport
		}
		_, err = client(p).Get(u)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("client error shows the password: %v", err)
		}
	}
}

func TestDefaultUserAgent(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, has := r.Header["User-Agent"]
		fmt.Fprintf(w, "%v:%s", has, r.UserAgent())
	}), Config{})
	c := client(p)
	get := func(set func(h http.Header)) string {
		req, _ := http.NewRequest("GET", s.URL+"/", nil)
		set(req.Header)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return mustRead(t, resp.Body)
	}
	if got := get(func(http.Header) {}); !strings.HasPrefix(got, "true:h2pool-go/") {
		t.Errorf("default: %q", got)
	}
	if got := get(func(h http.Header) { h.Set("User-Agent", "mine/1") }); got != "true:mine/1" {
		t.Errorf("set: %q", got)
	}
	if got := get(func(h http.Header) { h["User-Agent"] = []string{""} }); got != "false:" {
		t.Errorf("empty: %q, want none sent", got)
	}
}

func TestCloseIdleConnections(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	get := func() uint64 {
		resp, err := p.Do(context.Background(), &Request{URL: serverURL + "/"})
		if err != nil {
			t.Fatal(err)
		}
		mustRead(t, resp.Body)
		resp.Body.Close()
		return resp.ConnectionID
	}
	first := get()
	if again := get(); again != first {
		t.Fatalf("connection not reused: %d then %d", first, again)
	}
	(&http.Client{Transport: p.RoundTripper()}).CloseIdleConnections()
	waitFor(t, "the idle connection to close", func() bool {
		s, err := p.Stats()
		return err == nil && s.ConnectionsOpen == 0
	})
	if next := get(); next == first {
		t.Errorf("still on connection %d after CloseIdleConnections", first)
	}
}

func TestRequestBodyReadErrorFailsRequest(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}), Config{})
	boom := errors.New("disk on fire")
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("some"))
		pw.CloseWithError(boom)
	}()
	_, err := p.Do(context.Background(), &Request{Method: "POST", URL: s.URL + "/", BodyReader: pr})
	if !errors.Is(err, boom) || !errors.Is(err, ErrBodySource) {
		t.Fatalf("error %v, want ErrBodySource wrapping the reader's error", err)
	}
}

func TestLargeStreamedUploadIsCounted(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}), Config{})
	const size = 32 << 20
	body := io.LimitReader(zeros{}, size)
	req, _ := http.NewRequest("PUT", s.URL+"/", io.NopCloser(body))
	resp, err := client(p).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := mustRead(t, resp.Body); got != strconv.Itoa(size) {
		t.Errorf("server counted %s bytes, want %d", got, size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

// A slice of net/http's own client tests (client_test.go), against the
// RoundTripper.
func TestClientFollowsRedirectsWithBody(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.Redirect(w, r, "/next", http.StatusFound)
		case "/next":
			fmt.Fprintf(w, "at %s via %s", r.URL.Path, r.Method)
		}
	}), Config{})
	resp, err := client(p).Post(s.URL+"/", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := mustRead(t, resp.Body); got != "at /next via GET" || resp.Request.URL.Path != "/next" {
		t.Errorf("got %q at %s", got, resp.Request.URL)
	}
}

func TestClientHead(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
		w.Write([]byte("not for HEAD"))
	}), Config{})
	resp, err := client(p).Head(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Last-Modified") == "" || mustRead(t, resp.Body) != "" {
		t.Errorf("HEAD: headers %v", resp.Header)
	}
}

func TestClientTimeoutIsNetErrorTimeout(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}), Config{})
	c := &http.Client{Transport: p.RoundTripper(), Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := c.Get(s.URL + "/")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v: want a net.Error with Timeout()", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 100 ms timeout", d)
	}
}

func TestClientSendsCookieFromJarAndHonoursSetCookie(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "k", Value: "v"})
			return
		}
		c, err := r.Cookie("k")
		if err != nil {
			fmt.Fprint(w, "none")
			return
		}
		fmt.Fprint(w, c.Value)
	}), Config{})
	jar := &memJar{}
	c := &http.Client{Transport: p.RoundTripper(), Jar: jar}
	for _, path := range []string{"/set", "/get"} {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got := mustRead(t, resp.Body)
		resp.Body.Close()
		if path == "/get" && got != "v" {
			t.Errorf("cookie %q, want v", got)
		}
	}
}

// memJar is the smallest http.CookieJar (net/http/cookiejar is std too,
// but this keeps the test about the transport).
type memJar struct{ cookies []*http.Cookie }

func (j *memJar) SetCookies(_ *url.URL, cs []*http.Cookie) { j.cookies = append(j.cookies, cs...) }
func (j *memJar) Cookies(*url.URL) []*http.Cookie          { return j.cookies }

// peakRSSKiB is the process's peak resident set (VmHWM).
func peakRSSKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// Memory is bounded by the windows and buffers, not by the body: 256 MiB up
// and 256 MiB down move the process's peak RSS by far less.
func TestBulkTransfersStayBoundedInMemory(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	const size = 256 << 20
	before := peakRSSKiB(t)
	resp, err := p.Do(context.Background(), &Request{Method: "PUT", URL: serverURL + "/",
		BodyReader: io.LimitReader(zeros{}, size), ContentLength: size})
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Body-Length"); got != strconv.Itoa(size) {
		t.Fatalf("server received %s bytes", got)
	}
	resp, err = p.Do(context.Background(), &Request{URL: serverURL + "/?zeros=" + strconv.Itoa(size)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	if grew := (peakRSSKiB(t) - before) / 1024; grew > 96 {
		t.Errorf("peak RSS grew by %d MiB moving 2 x 256 MiB", grew)
	}
}

// Close with a body being read: Read fails with ErrPoolClosed, and every
// event and slot is released.
func TestCloseWhileBodyStreams(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	resp, err := p.Do(context.Background(), &Request{URL: serverURL + "/?zeros=1073741824"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	p.Close()
	var rerr error
	for rerr == nil {
		_, rerr = resp.Body.Read(buf)
	}
	if !errors.Is(rerr, ErrPoolClosed) {
		t.Errorf("read after Close: %v, want ErrPoolClosed", rerr)
	}
	resp.Body.Close()
	if n := atomic.LoadInt64(&liveHandles); n != 0 {
		t.Errorf("%d slots live after Close", n)
	}
}

// Proto, ProtoMajor and ProtoMinor say which protocol carried a response,
// as net/http sets them: HTTP/2 from the TLS server above, HTTP/1.1 from a
// server that speaks nothing else (TLS offering only http/1.1 by ALPN, and
// cleartext with Config.HTTPVersion = HTTP11).
func TestProtoNamesTheProtocolUsed(t *testing.T) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	check := func(name string, p *Pool, url, wantProto string, wantMajor, wantMinor int) {
		t.Helper()
		resp, err := client(p).Get(url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer resp.Body.Close()
		seen := mustRead(t, resp.Body)
		if resp.Proto != wantProto || resp.ProtoMajor != wantMajor || resp.ProtoMinor != wantMinor {
			t.Errorf("%s: Proto %q %d.%d, want %q %d.%d", name, resp.Proto,
				resp.ProtoMajor, resp.ProtoMinor, wantProto, wantMajor, wantMinor)
		}
		if seen != wantProto {
			t.Errorf("%s: the server saw %q, want %q", name, seen, wantProto)
		}
	}

	s2, p2 := h2Server(t, hello, Config{})
	check("h2 over TLS", p2, s2.URL, "HTTP/2.0", 2, 0)

	// TLS without h2 in the server's ALPN list: the pool falls back.
	s1 := httptest.NewUnstartedServer(hello)
	s1.StartTLS()
	t.Cleanup(s1.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s1.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	p1 := newPool(t, Config{CAFile: ca})
	check("http/1.1 by ALPN", p1, s1.URL, "HTTP/1.1", 1, 1)

	plain := httptest.NewServer(hello)
	t.Cleanup(plain.Close)
	pc := newPool(t, Config{HTTPVersion: HTTP11})
	check("cleartext HTTP/1.1", pc, plain.URL, "HTTP/1.1", 1, 1)
	resp, err := pc.Do(context.Background(), &Request{Method: "GET", URL: plain.URL})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || resp.StreamID != 0 {
		t.Errorf("Do over HTTP/1.1: Proto %q, StreamID %d", resp.Proto, resp.StreamID)
	}
}

// Status reads as net/http's does, named codes and unnamed ones alike; the
// fields HTTP/2 forbids are left out (TE only as "trailers") without
// touching the caller's header map.
func TestStatusLineAndConnectionSpecificFields(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.Header().Set("X-Seen", fmt.Sprintf("te=%q keepalive=%q x=%q",
			r.Header.Get("Te"), r.Header.Get("Keep-Alive"), r.Header.Get("X-Mine")))
		w.WriteHeader(code)
	}), Config{})
	c := client(p)
	for _, tc := range []struct {
		code int
		want string
	}{{200, "200 OK"}, {404, "404 Not Found"}, {299, "299 "}, {418, "418 I'm a teapot"}} {
		resp, err := c.Get(fmt.Sprintf("%s/?code=%d", s.URL, tc.code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Status != tc.want {
			t.Errorf("status %d: %q, want %q", tc.code, resp.Status, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", s.URL+"/?code=200", nil)
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-Mine", "1")
	before := fmt.Sprint(req.Header)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("X-Seen"), `te="" keepalive="" x="1"`; got != want {
		t.Errorf("server saw %s, want %s", got, want)
	}
	if after := fmt.Sprint(req.Header); after != before {
		t.Errorf("caller's header changed: %s -> %s", before, after)
	}
	req.Header = http.Header{"Te": {"trailers"}, "X-Mine": {"2"}}
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("X-Seen"), `te="trailers" keepalive="" x="2"`; got != want {
		t.Errorf("server saw %s, want %s", got, want)
	}
}
