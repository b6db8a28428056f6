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

  // Reads up to `len` bytes. A TLS transport may return fewer bytes than
  // are available (one record at a time); callers read until want_read.
  virtual Result read(uint8_t *buf, size_t len) = 0;
  // Writes up to `len` bytes; `bytes` says how many went.
  virtual Result write(const uint8_t *buf, size_t len) = 0;
  // Whether a short read means the socket has nothing more right now (plain
  // sockets: a recv() returns all that is queued, up to the length asked).
  virtual bool short_read_drains() const { return true; }

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
};

class TlsTransport final : public Transport {
public:
  // Takes ownership of `ssl` (freed with the transport) and of `fd`, and
  // puts the SSL object in client mode on that socket.
  TlsTransport(int fd, SSL *ssl);
  ~TlsTransport() override;

  // Advances the handshake: ok once it is complete.
  Status handshake();
  Result read(uint8_t *buf, size_t len) override;
  Result write(const uint8_t *buf, size_t len) override;
  bool short_read_drains() const override { return false; }
  // Best effort close_notify; never blocks. Without it OpenSSL marks the
  // session as not resumable when the SSL object is freed. Skipped once the
  // connection has failed (OpenSSL forbids it then).
  void shutdown();

  SSL *ssl() const { return ssl_; }
  // The first OpenSSL error code (with a library set) seen by the failing
  // call, 0 if there was none: the handshake error's real cause.
  unsigned long last_error() const { return last_error_; }

private:
  Status status_of(int rc);

  SSL *ssl_;
  unsigned long last_error_ = 0;
  bool fatal_ = false;
};

// The loop thread's read buffer, shared by every connection it serves:
// whatever is read is handed to nghttp2 before the next read, so one buffer
// per thread suffices and idle connections hold none.
struct ReadBuffer {
  uint8_t *data;
  size_t size;
};
ReadBuffer thread_read_buffer();

} // namespace h2pool_core
