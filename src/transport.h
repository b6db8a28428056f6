// The byte stream under one connection: a connected non-blocking
// socket, in the clear or through TLS.
//
// The session reads and writes through it directly rather than through a
// libevent bufferevent: reads go straight into one large buffer shared by
// every connection of the loop thread and from there into nghttp2, and
// writes send nghttp2's coalesced output in one call. The bufferevent path
// asked the kernel how much was readable (ioctl) before every read, read
// into freshly allocated evbuffer chains, and copied each of them again into
// nghttp2; for 1 MiB responses that was more than half of the client's CPU.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct event;

namespace h2pool_core {

class Transport {
public:
  // want_read / want_write: nothing more can happen until the socket is
  // readable / writable (a TLS read can need the socket writable and a TLS
  // write readable). eof: the peer closed its side. error: the connection
  // is unusable; sys_error() has the errno when there is one.
  enum class Status { ok, want_read, want_write, eof, error };
  struct Result {
    size_t bytes = 0;
    Status status = Status::ok;
  };

  explicit Transport(int fd) : fd_(fd) {}
  virtual ~Transport();
  Transport(const Transport &) = delete;
  Transport &operator=(const Transport &) = delete;

  int fd() const { return fd_; }
  int sys_error() const { return sys_error_; }
  // Gives up the socket without closing it, and returns it.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Reads up to `len` bytes. A TLS transport may return fewer bytes than
  // are available (one record at a time); callers read until want_read.
  virtual Result read(uint8_t *buf, size_t len) = 0;
  // Writes up to `len` bytes; `bytes` says how many went.
  virtual Result write(const uint8_t *buf, size_t len) = 0;
  // Like read(), leaving the bytes to be read again: a proxy tunnel's setup
  // reads exactly its own reply and no byte of the origin's that follows.
  virtual Result peek(uint8_t *buf, size_t len) = 0;
  // Whether a short read means the socket has nothing more right now (plain
  // sockets: a recv() returns all that is queued, up to the length asked).
  virtual bool short_read_drains() const { return true; }
  // Whether the eof a read reported was the peer's orderly close: always
  // over TCP; over TLS only with close_notify, without which the stream may
  // have been cut short by someone else.
  virtual bool eof_was_clean() const { return true; }

protected:
  Result fail_errno(int err);

  int fd_;
  int sys_error_ = 0;
};

class PlainTransport final : public Transport {
public:
  using Transport::Transport;
  Result read(uint8_t *buf, size_t len) override;
  Result write(const uint8_t *buf, size_t len) override;
  Result peek(uint8_t *buf, size_t len) override;

private:
  Result receive(uint8_t *buf, size_t len, int flags);
};

class TlsTransport final : public Transport {
public:
  // Takes ownership of `ssl` (freed with the transport) and of `fd`, and
  // puts the SSL object in client mode on that socket.
  TlsTransport(int fd, SSL *ssl);
  // TLS inside another byte stream (to an origin through an https://
  // proxy, itself a TLS connection): records go to and come from `lower`
  // through a BIO, so both layers share lower's socket, and what one
  // layer waits for (readable, writable) is what the socket must become.
  TlsTransport(std::unique_ptr<Transport> lower, SSL *ssl);
  ~TlsTransport() override;

  // Advances the handshake: ok once it is complete.
  Status handshake();
  Result read(uint8_t *buf, size_t len) override;
  Result write(const uint8_t *buf, size_t len) override;
  Result peek(uint8_t *buf, size_t len) override;
  bool short_read_drains() const override { return false; }
  bool eof_was_clean() const override { return close_notify_; }
  // Best effort close_notify; never blocks. Without it OpenSSL marks the
  // session as not resumable when the SSL object is freed. Skipped once the
  // connection has failed (OpenSSL forbids it then).
  void shutdown();

  SSL *ssl() const { return ssl_; }
  // The TLS session is with a proxy (an https:// proxy whose tunnel
  // carries cleartext to the origin), not with the origin: a close before
  // the origin's first bytes is then no failing origin handshake.
  void set_to_proxy() { to_proxy_ = true; }
  bool to_proxy() const { return to_proxy_; }
  // The first OpenSSL error code (with a library set) seen by the failing
  // call, 0 if there was none: the handshake error's real cause.
  unsigned long last_error() const { return last_error_; }

private:
  Status status_of(int rc);
  void set_modes();
  // SSL_read_ex or SSL_peek_ex, with the error mapping of both.
  Result receive(uint8_t *buf, size_t len,
                 int (*op)(SSL *, void *, size_t, size_t *));

  std::unique_ptr<Transport> lower_; // null: directly on the socket
  SSL *ssl_;
  unsigned long last_error_ = 0;
  bool fatal_ = false;
  bool close_notify_ = false; // the peer's close_notify arrived
  bool to_proxy_ = false;
};

// The loop thread's read buffer, shared by every connection it serves:
// whatever is read is handed to nghttp2 before the next read, so one buffer
// per thread suffices and idle connections hold none.
struct ReadBuffer {
  uint8_t *data;
  size_t size;
};
ReadBuffer thread_read_buffer();

// What the sessions share of moving bytes; they differ in what they make of
// them.

// Output waiting for a transport: appended at the end, written from the
// front as far as the socket takes it. Once drained, a buffer a bulk upload
// grew is given back, so an idle connection keeps little.
class OutputBuffer {
public:
  // For appending: drops what was written first, so the buffer holds only
  // what still has to go.
  std::string &tail() {
    if (off_ > 0) {
      buf_.erase(0, off_);
      off_ = 0;
    }
    return buf_;
  }
  size_t pending() const { return buf_.size() - off_; }
  bool empty() const { return off_ == buf_.size(); }
  void clear() {
    buf_.clear();
    off_ = 0;
  }
  // Writes until drained (ok) or the transport takes no more now
  // (want_read, want_write), or fails (eof, error).
  Transport::Status write_to(Transport &t);

private:
  std::string buf_;
  size_t off_ = 0;
};

enum class WriteResult { done, blocked, closed };
// Writes `out`: done once drained; blocked when the socket is full
// (`write_event` is then armed) or TLS must read first (`*wants_read` is
// set: the session's read event resumes the write); closed on EOF or error,
// with the status in `*closed`.
WriteResult write_pending(OutputBuffer &out, Transport &t, event *write_event,
                          bool *wants_read, Transport::Status *closed);

// Reads what `t` holds into the loop thread's buffer (`fallback` if it has
// none) and hands it to `feed`, at most `rounds` full buffers, so that one
// connection streaming a large body does not starve the others. `feed`
// returns false to stop (the session ended, or stopped reading). Returns
// how reading ended: want_read (the socket is drained), ok (rounds used up
// with input left, or `feed` stopped), want_write (a TLS read needs the
// socket writable), eof or error.
template <typename Feed>
Transport::Status read_rounds(Transport &t, int rounds, ReadBuffer fallback,
                              Feed &&feed) {
  ReadBuffer buf = thread_read_buffer();
  if (buf.size == 0)
    buf = fallback;
  for (int round = 0; round < rounds; ++round) {
    size_t filled = 0;
    Transport::Status st = Transport::Status::ok;
    while (filled < buf.size) {
      Transport::Result r = t.read(buf.data + filled, buf.size - filled);
      filled += r.bytes;
      st = r.status;
      if (st != Transport::Status::ok)
        break;
      if (t.short_read_drains() && filled < buf.size) {
        st = Transport::Status::want_read; // the socket is empty
        break;
      }
    }
    if (filled > 0 && !feed(buf.data, filled))
      return Transport::Status::ok;
    if (st != Transport::Status::ok)
      return st;
  }
  return Transport::Status::ok;
}

} // namespace h2pool_core
