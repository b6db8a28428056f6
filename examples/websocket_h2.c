/*
 * websocket_h2.c - a WebSocket over HTTP/2 (RFC 8441) with libh2pool.
 *
 * Opens one or more WebSocket tunnels on a pooled HTTP/2 connection with
 * extended CONNECT, sends each MESSAGE as a text frame, expects the server
 * to echo it, then performs the close handshake. The WebSocket framing
 * (RFC 6455: masked client frames, text, ping/pong, close) is done here;
 * libh2pool carries the bytes: the request body is the upload, read from a
 * body reader that says H2POOL_BODY_WAIT while there is nothing to send,
 * and the response body arrives through on_data.
 *
 *   cc websocket_h2.c $(pkg-config --cflags --libs h2pool) -pthread \
 *      -o websocket_h2
 *   ./websocket_h2 [--cacert FILE] [--stream-window BYTES] [--tunnels N] \
 *      [--reset-after-close] \
 *      URL [MESSAGE | @SIZE]...
 *
 * URL: ws://, wss://, http:// or https:// (ws maps to http, wss to https);
 * over http:// the server must speak HTTP/2 with prior knowledge (h2c).
 * MESSAGE: a text message; "@SIZE" is SIZE bytes of generated text. With no
 * message, "hello" and "over HTTP/2" are sent. --tunnels N opens N tunnels
 * at once on the same pool, each with every message; --stream-window sets
 * the HTTP/2 stream window h2pool advertises (h2pool's flow control for
 * what the server sends). After the close handshake the example ends its
 * side of the stream and waits for the server to end its own; with
 * --reset-after-close it resets the stream instead, for servers that never
 * end theirs (hypercorn 0.13 does not, and drops the connection on an
 * END_STREAM that arrives after the handshake). Prints one line per tunnel:
 *
 *   tunnel 0: connection 1, 2 messages echoed, close 1000
 *
 * Exits 0 when every tunnel opened (2xx), echoed every message exactly and
 * closed cleanly; 1 otherwise (the reason is printed: a non-2xx status, an
 * h2pool error such as H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED, a wrong
 * echo); 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <h2pool.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TUNNEL_TIMEOUT_MS 30000 /* the whole life of each tunnel */
#define WAIT_SECONDS 40
#define MAX_TUNNELS 64
#define MAX_MESSAGE (64u << 20) /* largest echo accepted */

enum { OP_CONT = 0, OP_TEXT = 1, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

struct buf {
  unsigned char *p;
  size_t len, cap;
};

static int buf_append(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static void buf_consume(struct buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

struct message {
  unsigned char *data;
  size_t len;
};

/* Shared by every tunnel. Every callback runs on the pool's loop thread and
 * holds `mu`, as main() does while it submits: a callback may then read a
 * tunnel's id, which h2pool_request() writes on main's thread. */
struct shared {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  h2pool *pool;
  const struct message *messages;
  int nmessages;
  int remaining; /* tunnels not yet completed */
  int reset_after_close;
};

struct tunnel {
  struct shared *s;
  int index;
  uint64_t id;
  /* Upload: frames not yet taken by the body reader (from out_pos). */
  struct buf out;
  size_t out_pos;
  /* Download: bytes not yet parsed, and the message being assembled. */
  struct buf in;
  struct buf msg;
  int open;
  int next;   /* index of the next message to send */
  int echoed; /* messages echoed correctly */
  int close_sent, close_received, close_code;
  int ended;  /* the body reader reported the end */
  int failed; /* a wrong echo or a framing error */
  char why[256];
  /* Completion. */
  int done, status, error;
  uint64_t connection_id;
};

/* RFC 6455 section 5.3: a client masks every frame with a fresh key. The
 * key only has to be unpredictable to scripts in the same browser; a seeded
 * generator does here. */
static uint32_t next_mask(void) {
  static uint64_t x = 0;
  if (x == 0)
    x = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return (uint32_t)x;
}

static int queue_frame(struct tunnel *t, int opcode, const unsigned char *data,
                       size_t len) {
  unsigned char hdr[14];
  size_t h = 0;
  hdr[h++] = (unsigned char)(0x80 | opcode); /* FIN, never fragmented */
  if (len < 126) {
    hdr[h++] = (unsigned char)(0x80 | len);
  } else if (len <= 0xffff) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (unsigned char)(len >> 8);
    hdr[h++] = (unsigned char)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
  }
  uint32_t m = next_mask();
  unsigned char mask[4] = {(unsigned char)(m >> 24), (unsigned char)(m >> 16),
                           (unsigned char)(m >> 8), (unsigned char)m};
  memcpy(hdr + h, mask, 4);
  h += 4;
  if (buf_append(&t->out, hdr, h) != 0 || buf_append(&t->out, data, len) != 0)
    return -1;
  unsigned char *payload = t->out.p + t->out.len - len;
  for (size_t i = 0; i < len; i++)
    payload[i] ^= mask[i % 4];
  /* The reader said H2POOL_BODY_WAIT: wake the upload. */
  h2pool_request_resume_upload(t->s->pool, t->id);
  return 0;
}

static void send_close(struct tunnel *t, int code, const char *reason) {
  unsigned char payload[125];
  size_t n = strlen(reason);
  if (n > sizeof payload - 2)
    n = sizeof payload - 2;
  payload[0] = (unsigned char)(code >> 8);
  payload[1] = (unsigned char)code;
  memcpy(payload + 2, reason, n);
  t->close_sent = 1;
  queue_frame(t, OP_CLOSE, payload, n + 2);
}

static void fail_tunnel(struct tunnel *t, const char *why) {
  if (!t->failed) {
    t->failed = 1;
    snprintf(t->why, sizeof t->why, "%s", why);
  }
  if (!t->close_sent)
    send_close(t, 1002, "protocol error");
}

/* Sends the next message, or starts the close handshake after the last. */
static void send_next(struct tunnel *t) {
  if (t->next < t->s->nmessages) {
    const struct message *m = &t->s->messages[t->next++];
    if (queue_frame(t, OP_TEXT, m->data, m->len) != 0)
      fail_tunnel(t, "out of memory");
  } else if (!t->close_sent) {
    send_close(t, 1000, "done");
  }
}

static void on_message(struct tunnel *t) {
  if (t->next == 0 || t->echoed >= t->next) {
    fail_tunnel(t, "a message that was not sent came back");
    return;
  }
  const struct message *want = &t->s->messages[t->echoed];
  if (t->msg.len != want->len || memcmp(t->msg.p, want->data, want->len)) {
    fail_tunnel(t, "an echo differs from the message sent");
    return;
  }
  t->echoed++;
  t->msg.len = 0;
  send_next(t);
}

/* Both Close frames are exchanged (ours may still be on its way out). */
static void on_close_handshake(struct tunnel *t) {
  if (t->s->reset_after_close) {
    /* For servers that never end their side after the handshake and fail
     * on an END_STREAM that comes after it (hypercorn 0.13): RST_STREAM,
     * and the completion says H2POOL_ERR_CANCELLED. */
    t->ended = 1;
    h2pool_cancel(t->s->pool, t->id);
  } else {
    /* Wake the reader, which ends our side once our Close is out. */
    h2pool_request_resume_upload(t->s->pool, t->id);
  }
}

/* Parses whole frames from t->in. Server frames are not masked. */
static void parse_frames(struct tunnel *t) {
  for (;;) {
    const unsigned char *p = t->in.p;
    size_t n = t->in.len;
    if (n < 2)
      return;
    int fin = p[0] & 0x80, opcode = p[0] & 0x0f;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (p[1] & 0x80) {
      fail_tunnel(t, "the server masked a frame");
      t->in.len = 0;
      return;
    }
    if (len == 126) {
      if (n < 4)
        return;
      len = ((uint64_t)p[2] << 8) | p[3];
      h = 4;
    } else if (len == 127) {
      if (n < 10)
        return;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = (len << 8) | p[2 + i];
      h = 10;
    }
    if (len > MAX_MESSAGE) {
      fail_tunnel(t, "a frame larger than this example accepts");
      t->in.len = 0;
      return;
    }
    if (n < h + len)
      return;
    const unsigned char *payload = p + h;
    switch (opcode) {
    case OP_TEXT:
    case OP_CONT:
      if (buf_append(&t->msg, payload, (size_t)len) != 0)
        fail_tunnel(t, "out of memory");
      else if (fin)
        on_message(t);
      break;
    case OP_PING:
      queue_frame(t, OP_PONG, payload, (size_t)len);
      break;
    case OP_CLOSE:
      t->close_received = 1;
      t->close_code = len >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      if (!t->close_sent)
        send_close(t, t->close_code == 1005 ? 1000 : t->close_code, "");
      on_close_handshake(t);
      break;
    default:
      break; /* pong, binary: not expected from an echo of text */
    }
    buf_consume(&t->in, h + (size_t)len);
  }
}

/* --- libh2pool callbacks (loop thread) ---------------------------------- */

static int64_t read_upload(uint8_t *dst, size_t len, int *eof,
                           void *user_data) {
  struct tunnel *t = user_data;
  pthread_mutex_lock(&t->s->mu);
  size_t n = t->out.len - t->out_pos;
  if (n > len)
    n = len;
  if (n > 0) /* nothing queued yet: the buffer may not exist */
    memcpy(dst, t->out.p + t->out_pos, n);
  t->out_pos += n;
  if (t->out_pos == t->out.len) {
    t->out.len = t->out_pos = 0;
    /* Both Close frames are through: end our side, as TCP's FIN would
     * (RFC 8441 section 5; RFC 6455 section 7.1.1). With --reset-after-close
     * the stream is reset instead (see on_close_handshake()). */
    if (t->close_sent && t->close_received && !t->s->reset_after_close) {
      *eof = 1;
      t->ended = 1;
    }
  }
  pthread_mutex_unlock(&t->s->mu);
  return (n == 0 && !*eof) ? H2POOL_BODY_WAIT : (int64_t)n;
}

static int on_headers(const h2pool_response *resp, void *user_data) {
  struct tunnel *t = user_data;
  pthread_mutex_lock(&t->s->mu);
  t->status = h2pool_response_status(resp);
  t->connection_id = h2pool_response_connection_id(resp);
  if (t->status / 100 == 2) { /* the tunnel is open */
    t->open = 1;
    send_next(t);
  }
  pthread_mutex_unlock(&t->s->mu);
  return 0;
}

static int on_data(const uint8_t *data, size_t len, void *user_data) {
  struct tunnel *t = user_data;
  pthread_mutex_lock(&t->s->mu);
  if (t->open) {
    if (buf_append(&t->in, data, len) != 0)
      fail_tunnel(t, "out of memory");
    else
      parse_frames(t);
  }
  pthread_mutex_unlock(&t->s->mu);
  return 0;
}

static void on_complete(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  struct tunnel *t = user_data;
  pthread_mutex_lock(&t->s->mu);
  if (err != NULL && t->s->reset_after_close && t->close_received &&
      h2pool_error_code(err) == H2POOL_ERR_CANCELLED) {
    /* The reset on_close_handshake() asked for. */
  } else if (err != NULL) {
    t->error = h2pool_error_code(err);
    snprintf(t->why, sizeof t->why, "%s", h2pool_error_message(err));
  } else if (resp != NULL) {
    t->status = h2pool_response_status(resp);
  }
  t->done = 1;
  t->s->remaining--;
  pthread_cond_signal(&t->s->cv);
  pthread_mutex_unlock(&t->s->mu);
}

/* --- main ---------------------------------------------------------------- */

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--cacert FILE] [--stream-window BYTES] [--tunnels N] "
          "[--reset-after-close] URL [MESSAGE | @SIZE]...\n",
          argv0);
  return 2;
}

/* ws:// -> http://, wss:// -> https://; others unchanged. */
static char *h2_url(const char *url) {
  const char *rest = url;
  const char *scheme = NULL;
  if (strncmp(url, "ws://", 5) == 0) {
    scheme = "http://";
    rest = url + 5;
  } else if (strncmp(url, "wss://", 6) == 0) {
    scheme = "https://";
    rest = url + 6;
  }
  size_t n = (scheme ? strlen(scheme) : 0) + strlen(rest) + 1;
  char *out = malloc(n);
  if (out)
    snprintf(out, n, "%s%s", scheme ? scheme : "", rest);
  return out;
}

int main(int argc, char **argv) {
  const char *cacert = NULL;
  unsigned long window = 0, ntunnels = 1;
  int reset_after_close = 0;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--reset-after-close") == 0) {
      reset_after_close = 1;
      i--; /* no value */
      continue;
    }
    if (i + 1 >= argc)
      return usage(argv[0]);
    if (strcmp(argv[i], "--cacert") == 0)
      cacert = argv[i + 1];
    else if (strcmp(argv[i], "--stream-window") == 0)
      window = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--tunnels") == 0)
      ntunnels = strtoul(argv[i + 1], NULL, 10);
    else
      return usage(argv[0]);
  }
  if (i >= argc || ntunnels < 1 || ntunnels > MAX_TUNNELS)
    return usage(argv[0]);
  char *url = h2_url(argv[i++]);

  static const char *defaults[] = {"hello", "over HTTP/2"};
  int nmessages = i < argc ? argc - i : 2;
  struct message *messages = calloc((size_t)nmessages, sizeof *messages);
  if (url == NULL || messages == NULL)
    return 1;
  for (int m = 0; m < nmessages; m++) {
    const char *arg = i < argc ? argv[i + m] : defaults[m];
    if (arg[0] == '@') {
      size_t n = strtoul(arg + 1, NULL, 10);
      messages[m].data = malloc(n ? n : 1);
      if (messages[m].data == NULL)
        return 1;
      for (size_t k = 0; k < n; k++)
        messages[m].data[k] = (unsigned char)('a' + (k * 7 + (size_t)m) % 26);
      messages[m].len = n;
    } else {
      messages[m].data = (unsigned char *)strdup(arg);
      messages[m].len = strlen(arg);
    }
  }

  h2pool_config *cfg = NULL;
  h2pool_request_opts *opts = NULL;
  struct shared s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  s.messages = messages;
  s.reset_after_close = reset_after_close;
  s.nmessages = nmessages;
  int rc = h2pool_config_new(&cfg);
  if (rc == 0 && cacert)
    rc = h2pool_config_set_tls_ca_file(cfg, cacert);
  if (rc == 0 && window)
    rc = h2pool_config_set_flow_control_windows(cfg, (uint32_t)window,
                                                64u << 20);
  if (rc == 0)
    rc = h2pool_create(cfg, &s.pool);
  h2pool_config_free(cfg);
  if (rc == 0)
    rc = h2pool_request_opts_new(&opts);
  if (rc == 0)
    rc = h2pool_request_opts_set_protocol(opts, "websocket");
  if (rc == 0)
    rc = h2pool_request_opts_set_body_reader(opts, read_upload, -1);
  if (rc == 0)
    rc = h2pool_request_opts_set_on_headers(opts, on_headers);
  if (rc == 0)
    rc = h2pool_request_opts_set_on_data(opts, on_data);
  if (rc == 0)
    rc = h2pool_request_opts_set_timeout_ms(opts, TUNNEL_TIMEOUT_MS);
  if (rc != 0) {
    fprintf(stderr, "setup: %s\n", h2pool_strerror(rc));
    return 1;
  }

  /* RFC 8441 section 5 (RFC 6455 section 4.1 over HTTP/2). */
  const h2pool_header headers[] = {
      {"sec-websocket-version", 21, "13", 2},
      {"origin", 6, "http://localhost", 16},
  };
  struct tunnel *tunnels = calloc(ntunnels, sizeof *tunnels);
  if (tunnels == NULL)
    return 1;
  pthread_mutex_lock(&s.mu);
  for (unsigned long k = 0; k < ntunnels; k++) {
    tunnels[k].s = &s;
    tunnels[k].index = (int)k;
    rc = h2pool_request(s.pool, "CONNECT", url, headers, 2, NULL, 0, opts,
                        on_complete, &tunnels[k], &tunnels[k].id);
    if (rc != 0) {
      fprintf(stderr, "tunnel %lu: %s\n", k, h2pool_strerror(rc));
      tunnels[k].done = 1;
      tunnels[k].error = rc;
    } else {
      s.remaining++;
    }
  }
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_SECONDS;
  int timed_out = 0;
  while (s.remaining > 0 && !timed_out)
    timed_out = pthread_cond_timedwait(&s.cv, &s.mu, &deadline) == ETIMEDOUT;
  pthread_mutex_unlock(&s.mu);
  h2pool_request_opts_free(opts);
  /* Completes whatever is left (H2POOL_ERR_POOL_CLOSED) and joins the
   * loop thread: nothing below races a callback. */
  h2pool_destroy(s.pool);

  int exit_code = timed_out ? 1 : 0;
  if (timed_out)
    fprintf(stderr, "timed out after %d s\n", WAIT_SECONDS);
  for (unsigned long k = 0; k < ntunnels; k++) {
    struct tunnel *t = &tunnels[k];
    if (t->error) {
      printf("tunnel %lu: failed: %s (%s)\n", k, h2pool_strerror(t->error),
             t->why);
      exit_code = 1;
    } else if (!t->open) {
      printf("tunnel %lu: not opened: status %d\n", k, t->status);
      exit_code = 1;
    } else {
      printf("tunnel %lu: connection %llu, %d messages echoed, close %d\n", k,
             (unsigned long long)t->connection_id, t->echoed, t->close_code);
      if (t->failed || t->echoed != nmessages || !t->close_received ||
          !t->ended) {
        printf("tunnel %lu: incomplete: %s\n", k,
               t->failed ? t->why : "not every message echoed and closed");
        exit_code = 1;
      }
    }
    free(t->out.p);
    free(t->in.p);
    free(t->msg.p);
  }
  for (int m = 0; m < nmessages; m++)
    free(messages[m].data);
  free(messages);
  free(tunnels);
  free(url);
  return exit_code;
}
