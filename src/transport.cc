#include "transport.h"
#include "socket_close.h"

#include <event2/event.h>

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <new>

namespace h2pool_core {

Transport::~Transport() { close_socket(fd_); }

Transport::Result Transport::fail_errno(int err) {
  sys_error_ = err;
  return {0, Status::error};
}

// --- Plain TCP --------------------------------------------------------------

Transport::Result PlainTransport::read(uint8_t *buf, size_t len) {
  return receive(buf, len, 0);
}

Transport::Result PlainTransport::peek(uint8_t *buf, size_t len) {
  return receive(buf, len, MSG_PEEK);
}

Transport::Result PlainTransport::receive(uint8_t *buf, size_t len, int flags) {
  for (;;) {
    ssize_t n = ::recv(fd_, buf, len, flags);
    if (n > 0)
      return {size_t(n), Status::ok};
    if (n == 0)
      return {0, Status::eof};
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return {0, Status::want_read};
    return fail_errno(errno);
  }
}

Transport::Result PlainTransport::write(const uint8_t *buf, size_t len) {
  for (;;) {
    // MSG_NOSIGNAL: a peer that has gone away yields EPIPE, never SIGPIPE,
    // whichever thread drives the connection.
    ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
      return {size_t(n), Status::ok};
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return {0, Status::want_write};
    return fail_errno(errno);
  }
}

// --- TLS --------------------------------------------------------------------

namespace {

// A BIO over a Transport, for TLS inside TLS. Retry flags tell the SSL
// object above what the transport below waits for.
Transport *bio_transport(BIO *bio) {
  return static_cast<Transport *>(BIO_get_data(bio));
}

int retry_or_fail(BIO *bio, Transport::Status st, int sys_error) {
  switch (st) {
  case Transport::Status::want_read:
    BIO_set_retry_read(bio);
    return -1;
  case Transport::Status::want_write:
    BIO_set_retry_write(bio);
    return -1;
  case Transport::Status::eof:
    return 0;
  default:
    errno = sys_error ? sys_error : EIO;
    return -1;
  }
}

int transport_bio_write(BIO *bio, const char *data, int len) {
  BIO_clear_retry_flags(bio);
  Transport *t = bio_transport(bio);
  Transport::Result r =
      t->write(reinterpret_cast<const uint8_t *>(data), size_t(len));
  if (r.bytes > 0)
    return int(r.bytes);
  if (r.status == Transport::Status::eof)
    return -1; // no writing to a closed stream
  return retry_or_fail(bio, r.status, t->sys_error());
}

int transport_bio_read(BIO *bio, char *data, int len) {
  BIO_clear_retry_flags(bio);
  Transport *t = bio_transport(bio);
  Transport::Result r = t->read(reinterpret_cast<uint8_t *>(data), size_t(len));
  if (r.bytes > 0)
    return int(r.bytes);
  return retry_or_fail(bio, r.status, t->sys_error());
}

long transport_bio_ctrl(BIO *, int cmd, long, void *) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO_METHOD *transport_bio_method() {
  static BIO_METHOD *method = [] {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "h2pool transport");
    if (m) {
      BIO_meth_set_write(m, transport_bio_write);
      BIO_meth_set_read(m, transport_bio_read);
      BIO_meth_set_ctrl(m, transport_bio_ctrl);
    }
    return m;
  }();
  return method;
}

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the
// peer has gone; a pool running on the caller's thread (h2pool_create_on_base,
// h2pool_create_external) cannot block that signal there as its own loop
// thread does. This BIO is the socket BIO with send(MSG_NOSIGNAL) for its
// writes; everything else (reads, the descriptor, shutdown) is OpenSSL's.
int nosignal_socket_write(BIO *bio, const char *data, int len) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  BIO_clear_retry_flags(bio);
  ssize_t n = ::send(fd, data, size_t(len), MSG_NOSIGNAL);
  if (n < 0 && BIO_sock_should_retry(int(n)))
    BIO_set_retry_write(bio);
  return int(n);
}

const BIO_METHOD *nosignal_socket_method() {
  static BIO_METHOD *method = [] {
    const BIO_METHOD *sock = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "h2pool socket");
    if (m) {
      BIO_meth_set_write(m, nosignal_socket_write);
      BIO_meth_set_read(m, BIO_meth_get_read(sock));
      BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
      BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
      BIO_meth_set_create(m, BIO_meth_get_create(sock));
      BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
    }
    return m;
  }();
  return method;
}

} // namespace

TlsTransport::TlsTransport(int fd, SSL *ssl) : Transport(fd), ssl_(ssl) {
  const BIO_METHOD *method = nosignal_socket_method();
  BIO *bio = method ? BIO_new(method) : nullptr;
  if (bio) {
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl_, bio, bio);
  } else {
    SSL_set_fd(ssl_, fd); // out of memory: the plain socket BIO still works
  }
  set_modes();
}

TlsTransport::TlsTransport(std::unique_ptr<Transport> lower, SSL *ssl)
    : Transport(lower->fd()), lower_(std::move(lower)), ssl_(ssl) {
  BIO_METHOD *method = transport_bio_method();
  BIO *bio = method ? BIO_new(method) : nullptr;
  if (bio) {
    BIO_set_data(bio, lower_.get());
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);
  }
  // Without a BIO every call fails (SSL_ERROR_SYSCALL): the connection
  // reports an error rather than crash.
  set_modes();
}

void TlsTransport::set_modes() {
  SSL_set_connect_state(ssl_);
  // Partial writes let one call send what the socket takes and report it,
  // like send(); the moving buffer lets the retry start from a different
  // address once earlier bytes have been dropped from the output buffer.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE |
                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read ahead: one recv() takes several records when they are queued,
  // instead of a 5-byte header read and a body read per record.
  SSL_set_read_ahead(ssl_, 1);
  SSL_set_default_read_buffer_len(ssl_, 64u << 10);
}

TlsTransport::~TlsTransport() {
  SSL_free(ssl_);
  if (lower_)
    fd_ = -1; // the lower transport closes it
}

Transport::Status TlsTransport::status_of(int rc) {
  int err = SSL_get_error(ssl_, rc);
  // OpenSSL forbids SSL_shutdown() after either of these.
  if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)
    fatal_ = true;
  Status st = Status::error;
  switch (err) {
  case SSL_ERROR_WANT_READ:
    st = Status::want_read;
    break;
  case SSL_ERROR_WANT_WRITE:
    st = Status::want_write;
    break;
  case SSL_ERROR_ZERO_RETURN:
    st = Status::eof;
    close_notify_ = true;
    break;
  case SSL_ERROR_SYSCALL:
    // No OpenSSL error and no errno: the peer closed the TCP connection
    // without close_notify. Many servers do; for HTTP/2 it is an ordinary
    // EOF, since the framing shows whether a response was complete.
    if (errno == 0) {
      st = Status::eof;
    } else {
      sys_error_ = errno;
    }
    break;
  case SSL_ERROR_SSL: {
    unsigned long first = ERR_peek_error();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
        ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      st = Status::eof; // OpenSSL 3's name for the same unclean close
      break;
    }
    while (unsigned long e = ERR_get_error())
      if (last_error_ == 0 && ERR_GET_LIB(e) != 0)
        last_error_ = e;
    break;
  }
  default:
    break;
  }
  // Leave nothing in this thread's queue for the next caller to misread.
  ERR_clear_error();
  return st;
}

Transport::Status TlsTransport::handshake() {
  ERR_clear_error();
  errno = 0;
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1)
    return Status::ok;
  return status_of(rc);
}

Transport::Result TlsTransport::read(uint8_t *buf, size_t len) {
  return receive(buf, len, SSL_read_ex);
}

Transport::Result TlsTransport::peek(uint8_t *buf, size_t len) {
  return receive(buf, len, SSL_peek_ex);
}

Transport::Result TlsTransport::receive(uint8_t *buf, size_t len,
                                        int (*op)(SSL *, void *, size_t,
                                                  size_t *)) {
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  int rc = op(ssl_, buf, len, &n);
  if (rc == 1)
    return {n, Status::ok};
  return {0, status_of(rc)};
}

Transport::Result TlsTransport::write(const uint8_t *buf, size_t len) {
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  int rc = SSL_write_ex(ssl_, buf, len, &n);
  if (rc == 1)
    return {n, Status::ok};
  return {0, status_of(rc)};
}

void TlsTransport::shutdown() {
  if (fatal_)
    return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

Transport::Status OutputBuffer::write_to(Transport &t) {
  // Capacity kept once everything is written; more is freed. A loop turn
  // of small requests serialises a few KiB per connection, which this
  // keeps; a burst (a thousand request heads at once, a bulk upload's
  // megabyte) is given back once it is out rather than held by every
  // connection that once had one, at the cost of regrowing it next time.
  constexpr size_t kKeptCapacity = 16u << 10;
  while (off_ < buf_.size()) {
    Transport::Result r =
        t.write(reinterpret_cast<const uint8_t *>(buf_.data()) + off_,
                buf_.size() - off_);
    off_ += r.bytes;
    if (r.status != Transport::Status::ok)
      return r.status;
  }
  clear();
  if (buf_.capacity() > kKeptCapacity)
    std::string().swap(buf_);
  return Transport::Status::ok;
}

WriteResult write_pending(OutputBuffer &out, Transport &t, event *write_event,
                          bool *wants_read, Transport::Status *closed) {
  Transport::Status st = out.write_to(t);
  switch (st) {
  case Transport::Status::ok:
    return WriteResult::done;
  case Transport::Status::want_write:
    event_add(write_event, nullptr);
    return WriteResult::blocked;
  case Transport::Status::want_read:
    *wants_read = true; // the read event is always armed
    return WriteResult::blocked;
  default:
    *closed = st;
    return WriteResult::closed;
  }
}

ReadBuffer thread_read_buffer() {
  // 256 KiB: bulk responses arrive faster than the loop turns around, and
  // each read costs a system call whatever its size.
  constexpr size_t kSize = 256u << 10;
  static thread_local std::unique_ptr<uint8_t[]> buffer;
  if (!buffer)
    buffer.reset(new (std::nothrow) uint8_t[kSize]);
  return {buffer.get(), buffer ? kSize : 0};
}

} // namespace h2pool_core
