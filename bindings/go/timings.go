package h2pool

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"time"
)

// Timings tell where a request spent its time, with libcurl's semantics
// (CURLINFO_*_TIME_T; see h2pool_timing in h2pool.h): every duration is
// counted from the request's submission and they are cumulative
// (NameLookup <= Connect <= AppConnect <= PreTransfer <= StartTransfer <=
// Total). A phase never reached is -1 (AppConnect on a cleartext
// connection). On a reused connection NameLookup, Connect and AppConnect
// are 0.
type Timings struct {
	// Queued: until the request was placed on a connection.
	Queued time.Duration
	// NameLookup: until the host name was resolved.
	NameLookup time.Duration
	// Connect: until the TCP connection was up.
	Connect time.Duration
	// AppConnect: until the TLS handshake finished.
	AppConnect time.Duration
	// PreTransfer: until the request's headers were handed to the socket.
	PreTransfer time.Duration
	// StartTransfer: until the first byte of the response arrived.
	StartTransfer time.Duration
	// Total: until the request completed; while the body is still being
	// read, until the response headers arrived.
	Total time.Duration
	// Reused is true when the request went out on a connection that was
	// up before it was submitted (or had finished another exchange).
	Reused bool
	// NumConnects counts the new connections the request waited for
	// (curl's num_connects): 0 when reused.
	NumConnects int
	// RemoteAddr is the peer's "ip:port" (also for a reused connection),
	// or "" when unknown.
	RemoteAddr string
}

var noTimings = Timings{-1, -1, -1, -1, -1, -1, -1, false, 0, ""}

// Timings returns where the request spent its time: final once Body has
// returned io.EOF (or an error), before that as of the response headers.
func (r *Response) Timings() Timings {
	if r.c == nil {
		return noTimings
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.timings
}

// timings reads what h2pool_go_timings wrote. The peer's "ip:port" comes
// from `addrs` when it was seen lately: a pool talks to few peers, and
// building the string for every head and completion was two allocations
// each.
func (u *unpacker) timings(addrs *addrCache) Timings {
	var t Timings
	for _, d := range []*time.Duration{&t.Queued, &t.NameLookup, &t.Connect,
		&t.AppConnect, &t.PreTransfer, &t.StartTransfer, &t.Total} {
		us := int64(u.u64())
		if us < 0 {
			*d = -1
		} else {
			*d = time.Duration(us) * time.Microsecond
		}
	}
	t.Reused = u.u32() == 1
	t.NumConnects = int(int32(u.u32()))
	ip := u.raw()
	port := int(u.u32())
	if len(ip) > 0 {
		t.RemoteAddr = addrs.get(ip, port)
	}
	return t
}

// addrCache remembers the "ip:port" strings of the last few peers. The
// drainer goroutine owns it.
type addrCache struct {
	entries [8]struct {
		ip   string
		port int
		addr string
	}
	next int
}

func (a *addrCache) get(ip []byte, port int) string {
	for i := range a.entries {
		e := &a.entries[i]
		if e.port == port && e.addr != "" && string(ip) == e.ip {
			return e.addr
		}
	}
	e := &a.entries[a.next]
	a.next = (a.next + 1) % len(a.entries)
	e.ip, e.port = string(ip), port
	e.addr = net.JoinHostPort(e.ip, strconv.Itoa(port))
	return e.addr
}

// hostPort is the "host:port" net/http's GetConn hook is given.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// errNotOurs is what the net.Conn handed to GotConn returns: the connection
// belongs to the pool's loop thread, never to the caller.
var errNotOurs = errors.New("h2pool: the connection is owned by the pool")

// tracedConn stands for a pooled connection in httptrace.GotConnInfo: it
// has the peer's address and nothing else.
type tracedConn struct{ remote net.Addr }

func (c tracedConn) Read([]byte) (int, error)         { return 0, errNotOurs }
func (c tracedConn) Write([]byte) (int, error)        { return 0, errNotOurs }
func (c tracedConn) Close() error                     { return errNotOurs }
func (c tracedConn) LocalAddr() net.Addr              { return nil }
func (c tracedConn) RemoteAddr() net.Addr             { return c.remote }
func (c tracedConn) SetDeadline(time.Time) error      { return errNotOurs }
func (c tracedConn) SetReadDeadline(time.Time) error  { return errNotOurs }
func (c tracedConn) SetWriteDeadline(time.Time) error { return errNotOurs }

// traceAfter fires the httptrace hooks the recorded timings cover, in the
// order net/http fires them, once the response headers arrived (or the
// request failed): after the fact, on the goroutine that called Do, since
// the phases happened on the pool's loop thread. `hostPort` is the
// request's. The DNS hooks fire for a host name only (as in net/http, not
// for an IP address), DNSDone with the address connected to; TLSHandshakeDone gets an empty tls.ConnectionState; GotConn's Conn
// only knows its RemoteAddr; WroteHeaders and WroteRequest both stand for
// the request's headers going out (PreTransfer). GetConn was fired before
// the request went out. Hooks with no recorded phase (Got100Continue,
// Wait100Continue, PutIdleConn, GotConn's IdleTime) do not fire.
// A failed request fires the hooks of the phases it reached, and the
// Done hook of the phase it failed in with its error.
func traceAfter(t *httptrace.ClientTrace, hostPort string, tm Timings, err error) {
	var remote net.Addr
	if a, e := net.ResolveTCPAddr("tcp", tm.RemoteAddr); tm.RemoteAddr != "" && e == nil {
		remote = a
	}
	host, _, _ := net.SplitHostPort(hostPort)
	peer, _, _ := net.SplitHostPort(tm.RemoteAddr)
	if !tm.Reused && tm.NameLookup >= 0 {
		if net.ParseIP(host) == nil {
			if t.DNSStart != nil {
				t.DNSStart(httptrace.DNSStartInfo{Host: host})
			}
			if t.DNSDone != nil {
				info := httptrace.DNSDoneInfo{}
				if ip := net.ParseIP(peer); ip != nil {
					info.Addrs = []net.IPAddr{{IP: ip}}
				} else if tm.NameLookup < 0 || tm.Connect < 0 {
					info.Err = err
				}
				t.DNSDone(info)
			}
		}
		if t.ConnectStart != nil {
			t.ConnectStart("tcp", tm.RemoteAddr)
		}
		if t.ConnectDone != nil {
			if tm.Connect >= 0 {
				t.ConnectDone("tcp", tm.RemoteAddr, nil)
			} else if err != nil {
				t.ConnectDone("tcp", tm.RemoteAddr, err)
			}
		}
		if tm.AppConnect >= 0 || (tm.Connect >= 0 && tm.Queued < 0 && err != nil) {
			if t.TLSHandshakeStart != nil {
				t.TLSHandshakeStart()
			}
			if t.TLSHandshakeDone != nil {
				var herr error
				if tm.AppConnect < 0 {
					herr = err
				}
				t.TLSHandshakeDone(tls.ConnectionState{}, herr)
			}
		}
	}
	if tm.Queued < 0 {
		return // never got a connection
	}
	if t.GotConn != nil {
		t.GotConn(httptrace.GotConnInfo{Conn: tracedConn{remote}, Reused: tm.Reused})
	}
	if tm.PreTransfer >= 0 {
		if t.WroteHeaders != nil {
			t.WroteHeaders()
		}
		if t.WroteRequest != nil {
			t.WroteRequest(httptrace.WroteRequestInfo{})
		}
	} else if err != nil && t.WroteRequest != nil {
		t.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	if tm.StartTransfer >= 0 && t.GotFirstResponseByte != nil {
		t.GotFirstResponseByte()
	}
}
