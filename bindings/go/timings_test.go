package h2pool

// Response.Timings, Error.Timings and the httptrace hooks fired from them,
// against Go's HTTP/2 TLS server on loopback.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTimingsFollowTheServersDelayAndReuse(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			time.Sleep(100 * time.Millisecond) // the server's think time
		}
		io.WriteString(w, "ok")
	}), Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.Do(ctx, &Request{URL: s.URL + "/?slow=1"})
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, resp.Body)
	tm := resp.Timings()
	if tm.StartTransfer-tm.PreTransfer < 100*time.Millisecond {
		t.Errorf("first byte %v after the request went out, want >= 100ms: %+v",
			tm.StartTransfer-tm.PreTransfer, tm)
	}
	if !(0 <= tm.NameLookup && tm.NameLookup <= tm.Connect && tm.Connect < tm.AppConnect &&
		tm.AppConnect <= tm.PreTransfer && tm.PreTransfer <= tm.StartTransfer &&
		tm.StartTransfer <= tm.Total) {
		t.Errorf("phases out of order: %+v", tm)
	}
	if tm.Reused || tm.NumConnects != 1 || tm.RemoteAddr != strings.TrimPrefix(s.URL, "https://") {
		t.Errorf("new connection: %+v (server %s)", tm, s.URL)
	}

	resp, err = p.Do(ctx, &Request{URL: s.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, resp.Body)
	tm2 := resp.Timings()
	if !tm2.Reused || tm2.Connect != 0 || tm2.AppConnect != 0 || tm2.NumConnects != 0 ||
		tm2.RemoteAddr != tm.RemoteAddr {
		t.Errorf("reused connection: %+v", tm2)
	}
}

func TestHTTPTraceHooksFireFromTheTimings(t *testing.T) {
	s, p := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), Config{})
	var mu sync.Mutex
	var got []string
	note := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	trace := &httptrace.ClientTrace{
		GetConn:          func(hp string) { note("GetConn " + hp) },
		DNSDone:          func(httptrace.DNSDoneInfo) { note("DNSDone") },
		ConnectDone:      func(_, addr string, err error) { note("ConnectDone " + addr) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { note("TLSHandshakeDone") },
		GotConn: func(i httptrace.GotConnInfo) {
			note("GotConn reused=" + strconv.FormatBool(i.Reused) + " " + i.Conn.RemoteAddr().String())
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { note("WroteRequest") },
		GotFirstResponseByte: func() { note("GotFirstResponseByte") },
	}
	addr := strings.TrimPrefix(s.URL, "https://")
	for round, want := range []string{
		// An IP address: no DNS hooks, as in net/http.
		"GetConn " + addr + ",ConnectDone " + addr + ",TLSHandshakeDone,GotConn reused=false " + addr + ",WroteRequest,GotFirstResponseByte",
		"GetConn " + addr + ",GotConn reused=true " + addr + ",WroteRequest,GotFirstResponseByte",
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", s.URL+"/", nil)
		resp, err := client(p).Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		mustRead(t, resp.Body)
		resp.Body.Close()
		cancel()
		mu.Lock()
		if g := strings.Join(got, ","); g != want {
			t.Errorf("round %d hooks:\n got %s\nwant %s", round, g, want)
		}
		mu.Unlock()
	}
}

// refusedAddr is a loopback address nothing listens on (any more).
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestErrorTimingsOfARefusedConnection(t *testing.T) {
	addr := refusedAddr(t)
	p := newPool(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var connectErr error
	trace := &httptrace.ClientTrace{ConnectDone: func(_, _ string, err error) { connectErr = err }}
	_, err := p.Do(httptrace.WithClientTrace(ctx, trace), &Request{URL: "http://" + addr + "/"})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrConnect) {
		t.Fatalf("error %v, want ErrConnect", err)
	}
	tm := e.Timings
	if tm.Connect != -1 || tm.Queued != -1 || tm.StartTransfer != -1 || tm.Total < 0 || tm.NameLookup < 0 {
		t.Errorf("timings of a refused connection: %+v", tm)
	}
	if connectErr == nil {
		t.Errorf("ConnectDone was not given the error")
	}
}
