package h2pool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serverURL is the base URL of `h2pool serve --port 0`, started by TestMain
// when H2POOL_CLI names the tool; tests that need it skip otherwise.
var serverURL string

func TestMain(m *testing.M) {
	os.Exit(runWithServer(m))
}

func runWithServer(m *testing.M) int {
	cli := os.Getenv("H2POOL_CLI")
	if cli == "" {
		fmt.Fprintln(os.Stderr, "H2POOL_CLI is not set: tests that need the test server skip")
		return m.Run()
	}
	cmd := exec.Command(cli, "serve", "--port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test server:", err)
		return 1
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case serverURL = <-line:
	case <-time.After(10 * time.Second):
	}
	if !strings.HasPrefix(serverURL, "http://") {
		fmt.Fprintf(os.Stderr, "the test server printed no URL (%q)\n", serverURL)
		return 1
	}
	return m.Run()
}

func needServer(t *testing.T) {
	t.Helper()
	if serverURL == "" {
		t.Skip("H2POOL_CLI is not set")
	}
}

// newPool creates a pool closed at the end of the test, and then checks that
// every cgo.Handle was released.
func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		if n := atomic.LoadInt64(&liveHandles); n != 0 {
			t.Errorf("%d cgo.Handles still live after Close", n)
		}
	})
	return p
}

// waitFor polls cond (a fact about the pool's state) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stats(t *testing.T, p *Pool) Stats {
	t.Helper()
	s, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *h2pool.Error", err, err)
	}
	return e
}

// getByteExact sends n concurrent GETs of test bodies through p, checks each
// response byte for byte, and returns the connection ids that carried them.
func getByteExact(t *testing.T, p *Pool, n int) map[uint64]bool {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var mu sync.Mutex
	conns := map[uint64]bool{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			size, seed := 1+(i*7919)%20000, uint64(i+1)
			resp, err := p.Do(context.Background(), &Request{
				URL: fmt.Sprintf("%s/?size=%d&seed=%d", serverURL, size, seed),
			})
			if err != nil {
				errs <- fmt.Errorf("request %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !bytes.Equal(body, testBody(seed, size)) {
				errs <- fmt.Errorf("request %d: status %d, %d bytes, body differs", i, resp.StatusCode, len(body))
				return
			}
			if resp.StreamID <= 0 || resp.StreamID%2 != 1 || resp.ConnectionID == 0 {
				errs <- fmt.Errorf("request %d: stream %d, connection %d", i, resp.StreamID, resp.ConnectionID)
				return
			}
			mu.Lock()
			conns[resp.ConnectionID] = true
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := stats(t, p)
	if s.RequestsCompleted != uint64(n) || s.RequestsFailed != 0 {
		t.Errorf("completed %d failed %d, want %d and 0", s.RequestsCompleted, s.RequestsFailed, n)
	}
	if s.ConnectionsCreated > 4 {
		t.Errorf("%d connections created; want at most 4", s.ConnectionsCreated)
	}
	return conns
}

func TestThousandGoroutinesGetByteExactBodies(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{MaxConnsPerEndpoint: 4})
	if conns := getByteExact(t, p, 1000); len(conns) > 4 {
		t.Errorf("%d connections used; want at most 4", len(conns))
	}
}

// Two loop threads: requests alternate between them, each loop with
// connections of its own (the limit of 4 shared out, two each), and the
// pool's figures cover both.
func TestLoopThreadsShareTheLoad(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{LoopThreads: 2, MaxConnsPerEndpoint: 4})
	if conns := getByteExact(t, p, 200); len(conns) < 2 || len(conns) > 4 {
		t.Errorf("%d connections used; want 2 to 4 (each loop its own)", len(conns))
	}
}

func TestEchoSendsMethodHeadersAndBody(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	body := []byte("h2pool\x00binary\xffbody")
	resp, err := p.Do(context.Background(), &Request{
		Method: "PUT",
		URL:    serverURL + "/echo?status=201&header=x-reply:yes",
		Header: http.Header{"X-Custom": {"abc"}},
		Body:   body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 {
		t.Errorf("status %d, want 201", resp.StatusCode)
	}
	if got := readAll(t, resp.Body); !bytes.Equal(got, body) {
		t.Errorf("echoed %q, want %q", got, body)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("ContentLength %d, want %d", resp.ContentLength, len(body))
	}
	if got := resp.Header.Get("X-Reply"); got != "yes" {
		t.Errorf("x-reply %q, want yes", got)
	}
	if got := resp.Header.Get("X-Request-Body-Length"); got != fmt.Sprint(len(body)) {
		t.Errorf("x-request-body-length %q, want %d", got, len(body))
	}
}

func TestPriorityIsSentAsTheHeaderAndTheCallersWins(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	cases := []struct {
		pr     *Priority
		header http.Header
		want   string
	}{
		{&Priority{Urgency: 1, Incremental: true}, nil, "u=1, i"},
		{&Priority{Urgency: 6}, nil, "u=6"},
		{&Priority{Urgency: 3}, nil, ""}, // the default: nothing sent
		{&Priority{Urgency: 0}, http.Header{"Priority": {"u=5"}}, "u=5"},
	}
	for _, c := range cases {
		resp, err := p.Do(context.Background(), &Request{
			URL:      serverURL + "/?echo_header=priority",
			Priority: c.pr,
			Header:   c.header,
		})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp.Body)
		if got := resp.Header.Get("X-Echo-Priority"); got != c.want {
			t.Errorf("priority %+v, header %v: server saw %q, want %q", *c.pr, c.header, got, c.want)
		}
	}
	_, err := p.Do(context.Background(), &Request{URL: serverURL + "/", Priority: &Priority{Urgency: 8}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("urgency 8: %v, want an invalid-argument error", err)
	}
}

func TestPlainBodyIsNotMarkedDecoded(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{MaxDecodedBytes: 1 << 20, MaxDecodeRatio: 10})
	for _, disable := range []bool{false, true} {
		resp, err := p.Do(context.Background(), &Request{
			URL:                  serverURL + "/?size=5000&seed=11",
			DisableDecompression: disable,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp.Body); !bytes.Equal(got, testBody(11, 5000)) {
			t.Errorf("DisableDecompression %v: body differs", disable)
		}
		if resp.ContentEncoding != "" || resp.Trailer != nil {
			t.Errorf("DisableDecompression %v: encoding %q, trailer %v", disable, resp.ContentEncoding, resp.Trailer)
		}
	}
}

func TestErrorStatusIsAResponse(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	resp, err := p.Do(context.Background(), &Request{URL: serverURL + "/?status=503"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

func TestNewRequestReadsReaderInFull(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	want := strings.Repeat("0123456789", 10000)
	req, err := NewRequest("POST", serverURL+"/echo", strings.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, resp.Body)); got != want {
		t.Errorf("echoed %d bytes, want %d", len(got), len(want))
	}
}

func TestCancellingContextCancelsRequestPromptly(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitFor(t, "the request to be in flight", func() bool {
			s, err := p.Stats()
			return err == nil && s.StreamsActive == 1
		})
		cancel()
	}()
	start := time.Now()
	resp, err := p.Do(ctx, &Request{URL: serverURL + "/?delay_ms=5000"})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("got status %d, want a cancellation", resp.StatusCode)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Errorf("error %v: want context.Canceled and ErrCancelled", err)
	}
	if e := asError(t, err); e.Code != CodeCancelled {
		t.Errorf("code %v, want %v", e.Code, CodeCancelled)
	}
	if elapsed > 3*time.Second {
		t.Errorf("cancellation took %v", elapsed)
	}
	if s := stats(t, p); s.RequestsFailed != 1 || s.StreamsActive != 0 {
		t.Errorf("failed %d active %d after cancel, want 1 and 0", s.RequestsFailed, s.StreamsActive)
	}
}

func TestContextDeadlineEndsRequest(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Do(ctx, &Request{URL: serverURL + "/?delay_ms=5000"})
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want context.DeadlineExceeded", err)
	}
	if e := asError(t, err); !e.Timeout() || (e.Code != CodeTimeout && e.Code != CodeCancelled) {
		t.Errorf("error %v: code %v, Timeout() %v", err, e.Code, e.Timeout())
	}
	if elapsed < 150*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("deadline of 200ms ended the request after %v", elapsed)
	}
}

func TestDoneContextIsNotSent(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Do(ctx, &Request{URL: serverURL + "/"})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Errorf("error %v: want context.Canceled", err)
	}
	if s := stats(t, p); s.ConnectionsCreated != 0 {
		t.Errorf("%d connections created for a request never sent", s.ConnectionsCreated)
	}
}

func TestRequestTimeoutFromConfig(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{RequestTimeout: 100 * time.Millisecond})
	_, err := p.Do(context.Background(), &Request{URL: serverURL + "/?delay_ms=5000"})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v: want ErrTimeout", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: no context deadline was involved", err)
	}
	if !asError(t, err).Timeout() {
		t.Errorf("Timeout() is false")
	}
}

func TestCloseFailsRequestsInFlightWithErrPoolClosed(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{MaxConnsPerEndpoint: 1})
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := p.Do(context.Background(), &Request{URL: serverURL + "/?delay_ms=5000"})
			errs <- err
		}()
	}
	waitFor(t, "every request to be in flight", func() bool {
		s, err := p.Stats()
		return err == nil && s.StreamsActive+s.RequestsQueued == n
	})
	if n := atomic.LoadInt64(&liveHandles); n != 20 {
		t.Errorf("%d live handles with 20 requests in flight", n)
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrPoolClosed) {
				t.Errorf("error %v: want ErrPoolClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d requests answered after Close", i, n)
		}
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Close took %v with requests in flight", elapsed)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Do(context.Background(), &Request{URL: serverURL + "/"}); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Do after Close: %v, want ErrPoolClosed", err)
	}
	if _, err := p.Stats(); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Stats after Close: %v, want ErrPoolClosed", err)
	}
}

func TestCloseRacingWithDoAnswersEveryCall(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	var wg sync.WaitGroup
	var ok, closed int64
	started := make(chan struct{}, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				_, err := p.Do(context.Background(), &Request{URL: serverURL + "/?size=64"})
				switch {
				case err == nil:
					atomic.AddInt64(&ok, 1)
					if j == 0 {
						started <- struct{}{}
					}
				case errors.Is(err, ErrPoolClosed):
					atomic.AddInt64(&closed, 1)
					return
				default:
					t.Errorf("unexpected error %v", err)
					return
				}
			}
		}()
	}
	<-started
	p.Close()
	wg.Wait()
	if ok == 0 || closed != 50 {
		t.Errorf("%d succeeded, %d saw ErrPoolClosed; want >0 and 50", ok, closed)
	}
}

func TestHandlesReleasedOnEveryPath(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	ctx := context.Background()
	resp, err := p.Do(ctx, &Request{URL: serverURL + "/"}) // success
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp.Body) // EOF comes with the completion
	resp.Body.Close()
	if _, err := p.Do(ctx, &Request{URL: "bad url"}); err == nil { // refused
		t.Fatal("bad URL accepted")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond) // cancelled
	defer cancel()
	if _, err := p.Do(short, &Request{URL: serverURL + "/?delay_ms=5000"}); err == nil {
		t.Fatal("deadline ignored")
	}
	if n := atomic.LoadInt64(&liveHandles); n != 0 {
		t.Errorf("%d handles live with no request in flight", n)
	}
	errs := make(chan error, 1) // closed in flight
	go func() {
		_, err := p.Do(ctx, &Request{URL: serverURL + "/?delay_ms=5000"})
		errs <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return atomic.LoadInt64(&liveHandles) == 1 })
	p.Close()
	if err := <-errs; !errors.Is(err, ErrPoolClosed) {
		t.Errorf("error %v, want ErrPoolClosed", err)
	}
	if n := atomic.LoadInt64(&liveHandles); n != 0 {
		t.Errorf("%d handles live after Close", n)
	}
}

func TestRefusedRequestsReturnTypedErrors(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	cases := []struct {
		name string
		req  Request
		want *Error
	}{
		{"relative URL", Request{URL: "/relative"}, ErrInvalidURL},
		{"NUL in URL", Request{URL: serverURL + "/\x00x"}, ErrInvalidURL},
		{"scheme", Request{URL: "ftp://127.0.0.1/"}, ErrUnsupportedScheme},
		{"method", Request{Method: "BAD METHOD", URL: serverURL + "/"}, ErrInvalidMethod},
		{"header", Request{URL: serverURL + "/", Header: http.Header{"Connection": {"close"}}}, ErrInvalidHeader},
	}
	for _, c := range cases {
		_, err := p.Do(context.Background(), &c.req)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			continue
		}
		if e := asError(t, err); e.Code != c.want.Code || !strings.HasPrefix(e.Error(), "h2pool: ") {
			t.Errorf("%s: code %v, message %q", c.name, e.Code, e.Error())
		}
	}
	if s := stats(t, p); s.ConnectionsCreated != 0 {
		t.Errorf("refused requests opened %d connections", s.ConnectionsCreated)
	}
}

func TestConnectionRefusedIsErrConnect(t *testing.T) {
	addr := refusedAddr(t)
	p := newPool(t, Config{})
	_, err := p.Do(context.Background(), &Request{URL: "http://" + addr + "/"})
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("error %v, want ErrConnect", err)
	}
	if e := asError(t, err); e.StreamID != 0 || e.HTTP2Code != -1 || e.Message == "" {
		t.Errorf("error fields: stream %d http2 %d message %q", e.StreamID, e.HTTP2Code, e.Message)
	}
}

func TestSentinelsMatchOnlyTheirCode(t *testing.T) {
	err := error(&Error{Code: CodeTLSVerify, Message: "x"})
	if !errors.Is(err, ErrTLSVerify) || !errors.Is(err, ErrTLS) {
		t.Errorf("TLS verify error does not match ErrTLSVerify and ErrTLS")
	}
	if errors.Is(err, ErrTimeout) || errors.Is(&Error{Code: CodeTimeout}, ErrTLS) {
		t.Errorf("sentinels match other codes")
	}
	if errors.Is(&Error{Code: CodeTimeout}, &Error{Code: CodeTimeout}) {
		t.Errorf("non-sentinel errors match by code")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{MaxConnsPerEndpoint: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("MaxConnsPerEndpoint -1: %v", err)
	}
	if _, err := New(Config{LoopThreads: 65}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("LoopThreads 65: %v", err)
	}
	if _, err := New(Config{RequestTimeout: 100 * 24 * time.Hour}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RequestTimeout 100 days: %v", err)
	}
	_, err := New(Config{CAFile: "/nonexistent/h2pool-ca.pem"})
	if !errors.Is(err, ErrTLSConfig) || !errors.Is(err, ErrTLS) {
		t.Errorf("missing CA file: %v, want ErrTLSConfig", err)
	}
	if n := atomic.LoadInt64(&liveHandles); n != 0 {
		t.Errorf("%d handles live", n)
	}
}

func TestNewRejectsOutOfRangeFlowControlWindows(t *testing.T) {
	// Computed, not constant, so that the file builds where int is 32 bits
	// (there the +1 wraps negative, which is out of range too).
	maxWindow := int(^uint32(0) >> 1)
	for _, cfg := range []Config{
		{StreamWindow: -1},
		{ConnectionWindow: -1},
		{StreamWindow: maxWindow + 1},
		{ConnectionWindow: maxWindow + 1},
		{ConnectionWindow: 65534},
		{StreamWindow: 1 << 20, ConnectionWindow: 1},
	} {
		p, err := New(cfg)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("StreamWindow %d ConnectionWindow %d: %v, want ErrInvalidArgument",
				cfg.StreamWindow, cfg.ConnectionWindow, err)
		}
		if p != nil {
			p.Close()
		}
	}
}

func TestFlowControlWindowsGetByteExactBodies(t *testing.T) {
	needServer(t)
	// Bodies several times the windows, so the download only completes if
	// the pool keeps replenishing the windows it advertised.
	const size = 1<<20 + 7
	for i, cfg := range []Config{
		{StreamWindow: 16384, ConnectionWindow: 65535},
		{StreamWindow: 1000},                     // connection window at its default
		{ConnectionWindow: int(^uint32(0) >> 1)}, // stream window at its default
	} {
		p := newPool(t, cfg)
		seed := uint64(100 + i)
		resp, err := p.Do(context.Background(), &Request{
			URL: fmt.Sprintf("%s/?size=%d&seed=%d", serverURL, size, seed),
		})
		if err != nil {
			t.Fatalf("StreamWindow %d ConnectionWindow %d: %v", cfg.StreamWindow, cfg.ConnectionWindow, err)
		}
		body := readAll(t, resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(body, testBody(seed, size)) {
			t.Errorf("StreamWindow %d ConnectionWindow %d: status %d, %d bytes, body differs",
				cfg.StreamWindow, cfg.ConnectionWindow, resp.StatusCode, len(body))
		}
	}
}

func TestLoggerReceivesInsecureWarning(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	p, err := New(Config{Insecure: true, Logger: func(level LogLevel, msg string) {
		mu.Lock()
		msgs = append(msgs, fmt.Sprintf("%d %s", level, msg))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := atomic.LoadInt64(&liveHandles); n != 1 {
		t.Errorf("%d handles live, want the logger's 1", n)
	}
	p.Close() // every log call is done when Close returns
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, m := range msgs {
		if strings.HasPrefix(m, fmt.Sprintf("%d ", LogWarn)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning logged for an insecure pool: %q", msgs)
	}
	if n := atomic.LoadInt64(&liveHandles); n != 0 {
		t.Errorf("%d handles live after Close", n)
	}
}

func TestStatsPerEndpoint(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	if _, err := p.Do(context.Background(), &Request{URL: serverURL + "/"}); err != nil {
		t.Fatal(err)
	}
	s := stats(t, p)
	if len(s.Endpoints) != 1 || s.Endpoints[0].Name != serverURL || s.Endpoints[0].RequestsCompleted != 1 {
		t.Errorf("endpoints %+v, want one named %s with 1 request", s.Endpoints, serverURL)
	}
	if s.ConnectionsCreated != 1 || s.RequestsCompleted != 1 {
		t.Errorf("pool stats %+v", s.Counters)
	}
}

func TestVersionIsConsistent(t *testing.T) {
	num, str := Version()
	if want := fmt.Sprintf("%d.%d.%d", num>>16, (num>>8)&0xff, num&0xff); str != want {
		t.Errorf("Version() = %#x, %q", num, str)
	}
}

func TestRoundTripperWithStockHTTPClient(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{})
	client := &http.Client{Transport: p.RoundTripper()}

	resp, err := client.Get(serverURL + "/?size=3000&seed=7")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !bytes.Equal(body, testBody(7, 3000)) {
		t.Errorf("GET: status %d proto %s, %d bytes", resp.StatusCode, resp.Proto, len(body))
	}

	req, err := http.NewRequest("POST", serverURL+"/echo?header=x-reply:posted", strings.NewReader("posted body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Connection", "keep-alive") // HTTP/1 only: dropped
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp.Body)
	resp.Body.Close()
	if string(body) != "posted body" || resp.Header.Get("X-Reply") != "posted" {
		t.Errorf("POST: %q, x-reply %q", body, resp.Header.Get("X-Reply"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", serverURL+"/?delay_ms=5000", nil)
	if _, err := client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("client.Do with a deadline: %v, want context.DeadlineExceeded", err)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	needServer(t)
	p := newPool(t, Config{ResponseHeaderTimeout: 100 * time.Millisecond, MaxRetries: -1, PingInterval: -1})
	_, err := p.Do(context.Background(), &Request{URL: serverURL + "/?delay_ms=5000"})
	if !errors.Is(err, ErrResponseHeadersTimeout) || !asError(t, err).Timeout() {
		t.Fatalf("error %v: want ErrResponseHeadersTimeout", err)
	}
	if e := asError(t, err); e.StreamID <= 0 {
		t.Errorf("stream id %d: the request had a stream", e.StreamID)
	}
}

// Resolve and ConnectTo reach the test server under names no DNS knows
// (DNSServers points at a UDP port nothing answers on); bad entries fail
// New with ErrInvalidArgument.
func TestResolveAndConnectToOverrides(t *testing.T) {
	needServer(t)
	hostPort := strings.TrimPrefix(serverURL, "http://")
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	p := newPool(t, Config{
		DNSServers: []string{silent.LocalAddr().String()},
		Resolve:    []string{"app.test:" + port + ":127.0.0.1"},
		ConnectTo:  []string{"other.test:80:127.0.0.1:" + port},
		KeepAlive:  30 * time.Second,
	})
	for _, u := range []string{"http://app.test:" + port + "/?size=7&seed=1",
		"http://other.test/?size=7&seed=1"} {
		resp, err := p.Do(context.Background(), &Request{URL: u})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 7 {
			t.Errorf("%s: %d bytes, want 7", u, len(body))
		}
	}
	for _, cfg := range []Config{{Resolve: []string{"app.test:1"}},
		{ConnectTo: []string{"a:b:c:d"}}, {DNSServers: []string{"dns.example"}},
		{LocalAddr: "eth0"}, {UnixSocket: strings.Repeat("x", 200)}} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want ErrInvalidArgument", cfg, err)
		}
	}
}
