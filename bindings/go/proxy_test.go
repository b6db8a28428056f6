package h2pool

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// connectProxy is a minimal HTTP CONNECT proxy on loopback: it answers 407
// unless the request carries wantAuth (when set), then tunnels.
type connectProxy struct {
	ln       net.Listener
	wantAuth string
	connects int64
	wg       sync.WaitGroup
}

func startConnectProxy(t *testing.T, wantAuth string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, wantAuth: wantAuth}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *connectProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *connectProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.tunnel(c)
		}()
	}
}

func (p *connectProxy) tunnel(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	atomic.AddInt64(&p.connects, 1)
	if p.wantAuth != "" && req.Header.Get("Proxy-Authorization") != p.wantAuth {
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n"+
			"Proxy-Authenticate: Basic realm=\"go\"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	o, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer o.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(o, br); done <- struct{}{} }()
	go func() { io.Copy(c, o); done <- struct{}{} }()
	<-done
}

func TestProxyTunnelsRequests(t *testing.T) {
	needServer(t)
	px := startConnectProxy(t, "Basic Z286cHc=") // go:pw
	p := newPool(t, Config{Proxy: px.url(), ProxyUser: "go", ProxyPassword: "pw"})
	resp, err := p.Do(context.Background(), &Request{URL: serverURL + "/?size=100"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if b := readAll(t, resp.Body); len(b) != 100 {
		t.Errorf("body %d bytes, want 100", len(b))
	}
	if n := atomic.LoadInt64(&px.connects); n != 1 {
		t.Errorf("%d CONNECTs, want 1", n)
	}
}

func TestProxyAuthFailureIsErrProxyAuth(t *testing.T) {
	needServer(t)
	px := startConnectProxy(t, "Basic Z286cHc=")
	p := newPool(t, Config{Proxy: px.url()})
	_, err := p.Do(context.Background(), &Request{URL: serverURL + "/"})
	if !errors.Is(err, ErrProxyAuth) {
		t.Fatalf("error %v, want ErrProxyAuth", err)
	}
	if !strings.Contains(err.Error(), "407") {
		t.Errorf("error %q does not name the status", err)
	}
}

func TestProxyFromEnvironmentIsOptIn(t *testing.T) {
	needServer(t)
	px := startConnectProxy(t, "")
	t.Setenv("HTTP_PROXY", px.url())
	t.Setenv("http_proxy", "") // empty counts as unset
	t.Setenv("no_proxy", "")
	t.Setenv("NO_PROXY", "")
	direct := newPool(t, Config{})
	if _, err := direct.Do(context.Background(), &Request{URL: serverURL + "/"}); err != nil {
		t.Fatalf("Do without opt-in: %v", err)
	}
	if n := atomic.LoadInt64(&px.connects); n != 0 {
		t.Fatalf("%d CONNECTs without ProxyFromEnvironment", n)
	}
	proxied := newPool(t, Config{ProxyFromEnvironment: true})
	if _, err := proxied.Do(context.Background(), &Request{URL: serverURL + "/"}); err != nil {
		t.Fatalf("Do with ProxyFromEnvironment: %v", err)
	}
	if n := atomic.LoadInt64(&px.connects); n != 1 {
		t.Errorf("%d CONNECTs with ProxyFromEnvironment, want 1", n)
	}
}

func TestNewRejectsBadProxy(t *testing.T) {
	if _, err := New(Config{Proxy: "ftp://127.0.0.1:21"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ftp proxy: %v, want ErrInvalidArgument", err)
	}
}
