/* The completion queue: argument validation, exactly one COMPLETE event per
 * accepted request (also when the pool or the queue is destroyed with
 * events undrained), batching and the eventfd, timeouts, streamed downloads
 * with backpressure, streamed uploads with trailers, cancellation and
 * shutdown. */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool fd_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static h2pool_queue *new_queue(void) {
  h2pool_queue *q = NULL;
  assert_int_equal(h2pool_queue_create(&q), H2POOL_OK);
  assert_non_null(q);
  return q;
}

/* Takes one event, waiting up to WAIT_MS; fails the test if none comes. */
static h2pool_event *next_event(h2pool_queue *q) {
  h2pool_event *ev = NULL;
  int n = h2pool_queue_next(q, &ev, 1, (int)WAIT_MS);
  if (n != 1)
    fail_msg("no event within %u ms (got %d)", WAIT_MS, n);
  return ev;
}

/* Submits GET base+path_query to `q`; fails the test if refused. */
static uint64_t queue_get(fixture *f, h2pool_queue *q, const char *path_query,
                          const h2pool_request_opts *opts, void *user_data) {
  char url[192];
  fixture_url(f, url, sizeof url, path_query);
  uint64_t id = 0;
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        0, opts, user_data, &id),
                   H2POOL_OK);
  return id;
}

/* Request options: streamed responses if `streaming`, and both queue
 * buffers set to `buffers` unless it is 0. */
static h2pool_request_opts *new_opts(int streaming, uint32_t buffers) {
  h2pool_request_opts *opts;
  assert_int_equal(h2pool_request_opts_new(&opts), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_streaming(opts, streaming),
                   H2POOL_OK);
  if (buffers)
    assert_int_equal(
        h2pool_request_opts_set_queue_buffers(opts, buffers, buffers),
        H2POOL_OK);
  return opts;
}

/* Takes the next event, which must be a COMPLETE with error `code` (0:
 * success). The caller frees it. */
static h2pool_event *next_complete(h2pool_queue *q, int code) {
  h2pool_event *ev = next_event(q);
  assert_int_equal(h2pool_event_kind(ev), H2POOL_EVENT_COMPLETE);
  if (code == H2POOL_OK)
    assert_null(h2pool_event_error(ev));
  else
    assert_int_equal(h2pool_error_code(h2pool_event_error(ev)), code);
  return ev;
}

/* ---- argument validation ------------------------------------------------ */

static void test_queue_functions_validate_arguments(void **state) {
  fixture *f = *state;
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  h2pool_queue *q = new_queue();
  h2pool_event *evs[4];
  char url[128];
  fixture_url(f, url, sizeof url, "/");

  assert_int_equal(h2pool_queue_create(NULL), E);
  assert_int_equal(h2pool_queue_shutdown(NULL), E);
  h2pool_queue_destroy(NULL);
  assert_int_equal(h2pool_queue_fd(NULL), E);
  assert_true(h2pool_queue_fd(q) >= 0);
  assert_int_equal(h2pool_queue_next(NULL, evs, 4, 0), E);
  assert_int_equal(h2pool_queue_next(q, NULL, 4, 0), E);
  assert_int_equal(h2pool_queue_next(q, evs, 0, 0), E);
  assert_int_equal(h2pool_queue_next(q, evs, 4, -2), E);
  assert_int_equal(h2pool_queue_next(q, evs, 4, 0), 0);

  assert_int_equal(h2pool_event_kind(NULL), E);
  assert_int_equal(h2pool_event_request_id(NULL), 0);
  assert_null(h2pool_event_user_data(NULL));
  assert_null(h2pool_event_response(NULL));
  assert_null(h2pool_event_error(NULL));
  size_t len = 99;
  assert_null(h2pool_event_data(NULL, &len));
  assert_int_equal(len, 0);
  assert_null(h2pool_event_data(NULL, NULL));
  h2pool_event_free(NULL);

  assert_int_equal(h2pool_request_opts_set_queue_streaming(NULL, 1), E);
  assert_int_equal(h2pool_request_opts_set_queue_upload(NULL, 1, -1), E);
  assert_int_equal(h2pool_request_opts_set_queue_buffers(NULL, 1, 1), E);
  h2pool_request_opts *opts;
  assert_int_equal(h2pool_request_opts_new(&opts), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_upload(opts, 1, -2), E);
  assert_int_equal(h2pool_request_opts_set_queue_buffers(opts, 0, 1), E);
  assert_int_equal(h2pool_request_opts_set_queue_buffers(opts, 1, 0), E);
  assert_int_equal(
      h2pool_request_opts_set_queue_buffers(opts, (1u << 30) + 1, 1), E);
  assert_int_equal(
      h2pool_request_opts_set_queue_buffers(opts, 1, (1u << 30) + 1), E);
  assert_int_equal(h2pool_request_opts_set_queue_buffers(opts, 1u << 30, 1),
                   H2POOL_OK);

  uint64_t id = 7;
  assert_int_equal(h2pool_queue_request(NULL, q, "GET", url, NULL, 0, NULL, 0,
                                        NULL, NULL, &id),
                   E);
  assert_int_equal(id, 0);
  assert_int_equal(h2pool_queue_request(f->pool, NULL, "GET", url, NULL, 0,
                                        NULL, 0, NULL, NULL, &id),
                   E);
  assert_int_equal(h2pool_queue_request(f->pool, q, NULL, url, NULL, 0, NULL, 0,
                                        NULL, NULL, &id),
                   E);
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", NULL, NULL, 0, NULL,
                                        0, NULL, NULL, &id),
                   E);
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 1, NULL,
                                        0, NULL, NULL, &id),
                   E);
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        1, NULL, NULL, &id),
                   E);
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", "ftp://x/", NULL, 0,
                                        NULL, 0, NULL, NULL, &id),
                   H2POOL_ERR_UNSUPPORTED_SCHEME);
  assert_int_equal(h2pool_queue_request(f->pool, q, "G T", url, NULL, 0, NULL,
                                        0, NULL, NULL, &id),
                   H2POOL_ERR_INVALID_METHOD);
  /* A streamed upload takes no body argument ... */
  assert_int_equal(h2pool_request_opts_set_queue_upload(opts, 1, 3), H2POOL_OK);
  assert_int_equal(h2pool_queue_request(f->pool, q, "POST", url, NULL, 0,
                                        (const uint8_t *)"abc", 3, opts, NULL,
                                        &id),
                   E);
  /* ... and the callback API refuses it. */
  assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, NULL, 0, opts,
                                  count_cb, &f->w, &id),
                   E);
  assert_int_equal(h2pool_request_opts_set_queue_upload(opts, 0, 0), H2POOL_OK);
  /* Options that install callbacks are refused: none would run. */
  assert_int_equal(h2pool_request_opts_set_on_data(
                       opts, (h2pool_data_cb)(void (*)(void))count_cb),
                   H2POOL_OK);
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        0, opts, NULL, &id),
                   E);
  h2pool_request_opts_free(opts);

  const uint8_t b[1] = {0};
  size_t acc = 5;
  assert_int_equal(h2pool_request_write_body(NULL, 1, b, 1, &acc), E);
  assert_int_equal(acc, 0);
  assert_int_equal(h2pool_request_write_body(f->pool, 0, b, 1, &acc), E);
  assert_int_equal(h2pool_request_write_body(f->pool, 1, NULL, 1, &acc), E);
  assert_int_equal(h2pool_request_write_body(f->pool, 1, b, 1, NULL), E);
  assert_int_equal(h2pool_request_write_body(f->pool, 999, b, 1, &acc),
                   H2POOL_ERR_NO_SUCH_REQUEST);
  assert_int_equal(h2pool_request_end_body(NULL, 1, NULL, 0), E);
  assert_int_equal(h2pool_request_end_body(f->pool, 0, NULL, 0), E);
  assert_int_equal(h2pool_request_end_body(f->pool, 1, NULL, 1), E);
  assert_int_equal(h2pool_request_end_body(f->pool, 999, NULL, 0),
                   H2POOL_ERR_NO_SUCH_REQUEST);

  /* Nothing was accepted, so nothing is delivered. */
  assert_int_equal(h2pool_queue_next(q, evs, 4, 0), 0);
  h2pool_queue_destroy(q);
}

/* ---- buffered requests, batching, the descriptor ------------------------ */

static void test_buffered_get_yields_one_complete_with_body(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  int tag;
  uint64_t id = queue_get(f, q, "/?size=100000&seed=3", NULL, &tag);
  assert_true(id != 0);
  h2pool_event *ev = next_complete(q, H2POOL_OK);
  assert_int_equal(h2pool_event_request_id(ev), id);
  assert_ptr_equal(h2pool_event_user_data(ev), &tag);
  assert_null(h2pool_event_data(ev, NULL));
  const h2pool_response *resp = h2pool_event_response(ev);
  assert_non_null(resp);
  assert_int_equal(h2pool_response_status(resp), 200);
  assert_int_equal(h2pool_response_request_id(resp), id);
  size_t len;
  const uint8_t *body = h2pool_response_body(resp, &len);
  assert_int_equal(len, 100000);
  uint8_t *want = malloc(len);
  h2ts_test_body(3, len, want);
  assert_memory_equal(body, want, len);
  free(want);
  h2pool_event_free(ev);
  /* Nothing after the completion. */
  assert_int_equal(h2pool_queue_next(q, &ev, 1, 0), 0);
  h2pool_queue_destroy(q);
}

/* A pool-wide figure, or UINT64_MAX if no snapshot could be taken. */
static uint64_t pool_stat(h2pool *pool, h2pool_stat which) {
  h2pool_stats *st;
  if (h2pool_stats_get(pool, &st) != H2POOL_OK)
    return UINT64_MAX;
  uint64_t v = h2pool_stats_value(st, which);
  h2pool_stats_free(st);
  return v;
}

typedef struct completed_arg {
  h2pool *pool;
  uint64_t n;
} completed_arg;

static bool completed_at_least(void *arg) {
  completed_arg *a = arg;
  uint64_t ok = pool_stat(a->pool, H2POOL_STAT_REQUESTS_COMPLETED);
  uint64_t failed = pool_stat(a->pool, H2POOL_STAT_REQUESTS_FAILED);
  return ok != UINT64_MAX && failed != UINT64_MAX && ok + failed >= a->n;
}

static void test_many_requests_one_wake_and_one_complete_each(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  int fd = h2pool_queue_fd(q);
  assert_false(fd_readable(fd));
  enum { N = 300 };
  static uint64_t ids[N];
  static int seen[N];
  memset(seen, 0, sizeof seen);
  char url[128];
  fixture_url(f, url, sizeof url, "/?size=10");
  for (int i = 0; i < N; i++)
    assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                          0, NULL, (void *)(intptr_t)(i + 1),
                                          &ids[i]),
                     H2POOL_OK);
  completed_arg a = {f->pool, N};
  assert_true(poll_until(completed_at_least, &a, WAIT_MS));
  /* Every completion is queued, undrained: the descriptor was made
   * readable once for all of them (an eventfd counts its writes). */
  assert_true(fd_readable(fd));
  uint64_t writes = 0;
  assert_int_equal(read(fd, &writes, sizeof writes), (ssize_t)sizeof writes);
  assert_int_equal(writes, 1);

  h2pool_event *evs[64];
  int total = 0, batches = 0;
  while (total < N) {
    int n = h2pool_queue_next(q, evs, ARRAY_LEN(evs), 0);
    assert_true(n > 0);
    assert_true(n <= (int)ARRAY_LEN(evs));
    batches++;
    for (int i = 0; i < n; i++) {
      assert_int_equal(h2pool_event_kind(evs[i]), H2POOL_EVENT_COMPLETE);
      assert_null(h2pool_event_error(evs[i]));
      intptr_t k = (intptr_t)h2pool_event_user_data(evs[i]) - 1;
      assert_true(k >= 0 && k < N);
      assert_int_equal(h2pool_event_request_id(evs[i]), ids[k]);
      seen[k]++;
      h2pool_event_free(evs[i]);
    }
    total += n;
  }
  assert_int_equal(batches, (N + 63) / 64);
  for (int i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);
  assert_int_equal(h2pool_queue_next(q, evs, 1, 0), 0);
  assert_false(fd_readable(fd));
  h2pool_queue_destroy(q);
}

static void test_descriptor_follows_pending_events(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  int fd = h2pool_queue_fd(q);
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  for (int round = 0; round < 3; round++) {
    assert_false(fd_readable(fd));
    assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                          0, NULL, NULL, NULL),
                     H2POOL_OK);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, (int)WAIT_MS), 1);
    h2pool_event *ev;
    assert_int_equal(h2pool_queue_next(q, &ev, 1, 0), 1);
    assert_int_equal(h2pool_event_kind(ev), H2POOL_EVENT_COMPLETE);
    h2pool_event_free(ev);
  }
  assert_false(fd_readable(fd));
  h2pool_queue_destroy(q);
}

static void test_next_times_out_empty(void **state) {
  (void)state;
  h2pool_queue *q = new_queue();
  h2pool_event *ev = NULL;
  int64_t t0 = now_ms();
  assert_int_equal(h2pool_queue_next(q, &ev, 1, 0), 0);
  assert_int_equal(h2pool_queue_next(q, &ev, 1, 50), 0);
  int64_t waited = now_ms() - t0;
  assert_true(waited >= 49);
  assert_true(waited < 5000);
  assert_null(ev);
  h2pool_queue_destroy(q);
}

/* ---- streamed downloads ------------------------------------------------ */

static void
test_streamed_download_headers_data_trailers_complete(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  h2pool_request_opts *opts = new_opts(1, 0);
  char url[160];
  const size_t size = 300000;
  fixture_url(f, url, sizeof url,
              "/?size=300000&seed=9&status=203&trailer=x-sum:ok");
  uint64_t id;
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        0, opts, NULL, &id),
                   H2POOL_OK);
  h2pool_request_opts_free(opts);
  uint8_t *want = malloc(size);
  h2ts_test_body(9, size, want);
  size_t got = 0;
  int headers = 0;
  for (;;) {
    h2pool_event *ev = next_event(q);
    assert_int_equal(h2pool_event_request_id(ev), id);
    int kind = h2pool_event_kind(ev);
    if (kind == H2POOL_EVENT_HEADERS) {
      assert_int_equal(headers++, 0);
      assert_int_equal(got, 0);
      const h2pool_response *r = h2pool_event_response(ev);
      assert_int_equal(h2pool_response_status(r), 203);
      size_t blen = 1;
      h2pool_response_body(r, &blen);
      assert_int_equal(blen, 0);
      assert_null(h2pool_event_error(ev));
    } else if (kind == H2POOL_EVENT_DATA) {
      assert_int_equal(headers, 1);
      size_t n;
      const uint8_t *d = h2pool_event_data(ev, &n);
      assert_true(got + n <= size);
      assert_memory_equal(d, want + got, n);
      got += n;
      assert_null(h2pool_event_response(ev));
    } else {
      assert_int_equal(kind, H2POOL_EVENT_COMPLETE);
      assert_null(h2pool_event_error(ev));
      const h2pool_response *r = h2pool_event_response(ev);
      assert_int_equal(h2pool_response_status(r), 203);
      size_t blen = 1;
      h2pool_response_body(r, &blen);
      assert_int_equal(blen, 0);
      assert_string_equal(h2pool_response_trailer(r, "x-sum", NULL), "ok");
      h2pool_event_free(ev);
      break;
    }
    h2pool_event_free(ev);
  }
  assert_int_equal(got, size);
  free(want);
  h2pool_queue_destroy(q);
}

static void
test_download_buffer_holds_server_back_until_events_freed(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  const uint32_t buf = 65536;
  h2pool_request_opts *opts = new_opts(1, buf);
  const size_t size = 4u << 20;
  char url[160];
  fixture_url(f, url, sizeof url, "/?size=4194304&seed=5");
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        0, opts, NULL, NULL),
                   H2POOL_OK);
  h2pool_request_opts_free(opts);

  /* Hold every DATA event: once they reach the buffer, no more come. */
  enum { MAX_HELD = 64 };
  h2pool_event *held[MAX_HELD];
  size_t nheld = 0, held_bytes = 0;
  while (held_bytes < buf) {
    h2pool_event *ev = next_event(q);
    int kind = h2pool_event_kind(ev);
    assert_true(kind == H2POOL_EVENT_HEADERS || kind == H2POOL_EVENT_DATA);
    if (kind == H2POOL_EVENT_HEADERS) {
      h2pool_event_free(ev);
      continue;
    }
    size_t n;
    h2pool_event_data(ev, &n);
    assert_true(nheld < MAX_HELD);
    held[nheld++] = ev;
    held_bytes += n;
  }
  /* Paused: the stream delivers nothing more while the events are held
   * (a chunk already being handed over when the buffer filled may follow). */
  h2pool_event *extra = NULL;
  int n = h2pool_queue_next(q, &extra, 1, 300);
  assert_true(n == 0 || n == 1);
  if (n == 1) {
    assert_int_equal(h2pool_event_kind(extra), H2POOL_EVENT_DATA);
    held[nheld++] = extra;
    assert_int_equal(h2pool_queue_next(q, &extra, 1, 300), 0);
  }
  uint8_t *want = malloc(size);
  h2ts_test_body(5, size, want);
  size_t got = 0;
  for (size_t i = 0; i < nheld; i++) {
    size_t len;
    const uint8_t *d = h2pool_event_data(held[i], &len);
    assert_memory_equal(d, want + got, len);
    got += len;
    h2pool_event_free(held[i]);
  }
  /* Freed: the rest flows, byte-exact. */
  for (;;) {
    h2pool_event *ev = next_event(q);
    int kind = h2pool_event_kind(ev);
    if (kind == H2POOL_EVENT_COMPLETE) {
      assert_null(h2pool_event_error(ev));
      h2pool_event_free(ev);
      break;
    }
    assert_int_equal(kind, H2POOL_EVENT_DATA);
    size_t len;
    const uint8_t *d = h2pool_event_data(ev, &len);
    assert_true(got + len <= size);
    assert_memory_equal(d, want + got, len);
    got += len;
    h2pool_event_free(ev);
  }
  assert_int_equal(got, size);
  free(want);
  h2pool_queue_destroy(q);
}

/* ---- streamed uploads -------------------------------------------------- */

typedef struct writer {
  h2pool *pool;
  uint64_t id;
  const uint8_t *data;
  size_t len;
  size_t off;
} writer;

/* Writes what the buffer takes; returns whether everything was written. */
static bool write_some(writer *w) {
  while (w->off < w->len) {
    size_t acc = 0;
    size_t chunk = w->len - w->off < 50000 ? w->len - w->off : 50000;
    assert_int_equal(h2pool_request_write_body(w->pool, w->id, w->data + w->off,
                                               chunk, &acc),
                     H2POOL_OK);
    w->off += acc;
    if (acc < chunk)
      return false;
  }
  return true;
}

static void test_streamed_upload_with_trailers_is_echoed(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  h2pool_request_opts *opts;
  assert_int_equal(h2pool_request_opts_new(&opts), H2POOL_OK);
  const size_t size = 3u << 20;
  assert_int_equal(h2pool_request_opts_set_queue_upload(opts, 1, -1),
                   H2POOL_OK);
  assert_int_equal(
      h2pool_request_opts_set_queue_buffers(opts, 1 << 16, 1 << 16), H2POOL_OK);
  char url[160];
  fixture_url(f, url, sizeof url, "/echo?echo_header=x-check");
  uint64_t id;
  assert_int_equal(h2pool_queue_request(f->pool, q, "POST", url, NULL, 0, NULL,
                                        0, opts, NULL, &id),
                   H2POOL_OK);
  h2pool_request_opts_free(opts);
  uint8_t *body = malloc(size);
  h2ts_test_body(11, size, body);
  writer w = {f->pool, id, body, size, 0};
  int writable_events = 0;
  while (!write_some(&w)) {
    h2pool_event *ev = next_event(q);
    assert_int_equal(h2pool_event_kind(ev), H2POOL_EVENT_WRITABLE);
    assert_int_equal(h2pool_event_request_id(ev), id);
    writable_events++;
    h2pool_event_free(ev);
  }
  assert_true(writable_events > 0); /* 3 MiB through a 64 KiB buffer */
  h2pool_header bad = {"host", 4, "x", 1};
  assert_int_equal(h2pool_request_end_body(f->pool, id, &bad, 1),
                   H2POOL_ERR_INVALID_HEADER);
  h2pool_header t = {"X-Check", 7, "done", 4};
  assert_int_equal(h2pool_request_end_body(f->pool, id, &t, 1), H2POOL_OK);
  assert_int_equal(h2pool_request_end_body(f->pool, id, NULL, 0),
                   H2POOL_ERR_NO_SUCH_REQUEST);
  size_t acc;
  assert_int_equal(h2pool_request_write_body(f->pool, id, body, 1, &acc),
                   H2POOL_ERR_NO_SUCH_REQUEST);
  h2pool_event *ev;
  for (;;) {
    ev = next_event(q);
    if (h2pool_event_kind(ev) == H2POOL_EVENT_COMPLETE)
      break;
    assert_int_equal(h2pool_event_kind(ev), H2POOL_EVENT_WRITABLE);
    h2pool_event_free(ev);
  }
  assert_null(h2pool_event_error(ev));
  const h2pool_response *r = h2pool_event_response(ev);
  assert_int_equal(h2pool_response_status(r), 200);
  size_t len;
  const uint8_t *echoed = h2pool_response_body(r, &len);
  assert_int_equal(len, size);
  assert_memory_equal(echoed, body, size);
  /* The trailer reached the server after the body. */
  const char *v = h2pool_response_header(r, "x-echo-x-check", NULL);
  assert_non_null(v);
  assert_string_equal(v, "done");
  h2pool_event_free(ev);
  /* Over: writing is refused. */
  assert_int_equal(h2pool_request_write_body(f->pool, id, body, 1, &acc),
                   H2POOL_ERR_NO_SUCH_REQUEST);
  free(body);
  h2pool_queue_destroy(q);
}

static void test_short_streamed_upload_with_content_length(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  h2pool_request_opts *opts;
  assert_int_equal(h2pool_request_opts_new(&opts), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_upload(opts, 1, 5), H2POOL_OK);
  char url[160];
  fixture_url(f, url, sizeof url, "/echo");
  uint64_t id;
  assert_int_equal(h2pool_queue_request(f->pool, q, "PUT", url, NULL, 0, NULL,
                                        0, opts, NULL, &id),
                   H2POOL_OK);
  h2pool_request_opts_free(opts);
  size_t acc;
  assert_int_equal(
      h2pool_request_write_body(f->pool, id, (const uint8_t *)"hello", 5, &acc),
      H2POOL_OK);
  assert_int_equal(acc, 5);
  assert_int_equal(h2pool_request_end_body(f->pool, id, NULL, 0), H2POOL_OK);
  h2pool_event *ev = next_complete(q, H2POOL_OK);
  size_t len;
  const uint8_t *b = h2pool_response_body(h2pool_event_response(ev), &len);
  assert_int_equal(len, 5);
  assert_memory_equal(b, "hello", 5);
  h2pool_event_free(ev);
  h2pool_queue_destroy(q);
}

/* ---- cancellation, shutdown, destruction ------------------------------ */

static void test_cancel_completes_with_cancelled(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  uint64_t id = queue_get(f, q, "/?delay_ms=20000", NULL, NULL);
  assert_true(wait_server_requests(f->ts, 1, WAIT_MS));
  assert_int_equal(h2pool_cancel(f->pool, id), H2POOL_OK);
  h2pool_event_free(next_complete(q, H2POOL_ERR_CANCELLED));
  h2pool_queue_destroy(q);
}

typedef struct blocked_next {
  h2pool_queue *q;
  int rc;
} blocked_next;

static void *wait_forever(void *arg) {
  blocked_next *b = arg;
  h2pool_event *ev;
  for (;;) {
    b->rc = h2pool_queue_next(b->q, &ev, 1, -1);
    if (b->rc != 1)
      return NULL;
    h2pool_event_free(ev);
  }
}

static void test_shutdown_refuses_new_and_ends_waits_after_last(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  uint64_t id = queue_get(f, q, "/?delay_ms=20000", NULL, NULL);
  blocked_next b = {q, 99};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, wait_forever, &b), 0);
  assert_int_equal(h2pool_queue_shutdown(q), H2POOL_OK);
  assert_int_equal(h2pool_queue_shutdown(q), H2POOL_OK);
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  assert_int_equal(h2pool_queue_request(f->pool, q, "GET", url, NULL, 0, NULL,
                                        0, NULL, NULL, NULL),
                   H2POOL_ERR_QUEUE_CLOSED);
  /* The outstanding request keeps the waiter waiting until it completes. */
  assert_int_equal(h2pool_cancel(f->pool, id), H2POOL_OK);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(b.rc, H2POOL_ERR_QUEUE_CLOSED);
  h2pool_event *ev;
  assert_int_equal(h2pool_queue_next(q, &ev, 1, 0), H2POOL_ERR_QUEUE_CLOSED);
  assert_int_equal(h2pool_queue_next(q, &ev, 1, -1), H2POOL_ERR_QUEUE_CLOSED);
  assert_true(fd_readable(h2pool_queue_fd(q)));
  h2pool_queue_destroy(q);
}

static void test_pool_destroy_completes_every_queued_request(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  enum { N = 40 };
  uint64_t ids[N];
  char fast[128], slow[128], upload[128];
  fixture_url(f, fast, sizeof fast, "/?size=70000");
  fixture_url(f, slow, sizeof slow, "/?delay_ms=20000");
  fixture_url(f, upload, sizeof upload, "/echo");
  h2pool_request_opts *stream, *up;
  assert_int_equal(h2pool_request_opts_new(&stream), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_streaming(stream, 1),
                   H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_buffers(stream, 1, 1),
                   H2POOL_OK);
  assert_int_equal(h2pool_request_opts_new(&up), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_queue_upload(up, 1, -1), H2POOL_OK);
  for (int i = 0; i < N; i++) {
    const char *u = i % 3 == 0 ? fast : i % 3 == 1 ? slow : upload;
    const h2pool_request_opts *o = i % 3 == 0 ? stream : i % 3 == 1 ? NULL : up;
    assert_int_equal(
        h2pool_queue_request(f->pool, q, i % 3 == 2 ? "POST" : "GET", u, NULL,
                             0, NULL, 0, o, (void *)(intptr_t)(i + 1), &ids[i]),
        H2POOL_OK);
  }
  h2pool_request_opts_free(stream);
  h2pool_request_opts_free(up);
  /* Destroyed with DATA events undrained (their buffer is 1 byte, so the
   * streams are paused) and uploads that never end. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  int complete[N] = {0};
  h2pool_event *evs[16];
  int done = 0;
  while (done < N) {
    int n = h2pool_queue_next(q, evs, ARRAY_LEN(evs), 0);
    assert_true(n > 0); /* every completion is queued before destroy returns */
    for (int i = 0; i < n; i++) {
      intptr_t k = (intptr_t)h2pool_event_user_data(evs[i]) - 1;
      assert_true(k >= 0 && k < N);
      if (h2pool_event_kind(evs[i]) == H2POOL_EVENT_COMPLETE) {
        complete[k]++;
        done++;
        if (k % 3 != 0)
          assert_int_equal(h2pool_error_code(h2pool_event_error(evs[i])),
                           H2POOL_ERR_POOL_CLOSED);
      }
      /* Freed after the pool is gone, DATA events included. */
      h2pool_event_free(evs[i]);
    }
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(complete[i], 1);
  assert_int_equal(h2pool_queue_next(q, evs, 1, 0), 0);
  h2pool_queue_destroy(q);
}

static void test_queue_destroy_with_work_outstanding(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  h2pool_request_opts *opts = new_opts(1, 1024);
  char big[128], slow[128];
  fixture_url(f, big, sizeof big, "/?size=2000000");
  fixture_url(f, slow, sizeof slow, "/?delay_ms=20000");
  for (int i = 0; i < 10; i++)
    assert_int_equal(h2pool_queue_request(f->pool, q, "GET", i % 2 ? big : slow,
                                          NULL, 0, NULL, 0, opts, NULL, NULL),
                     H2POOL_OK);
  h2pool_request_opts_free(opts);
  /* Take a DATA event and keep it past the queue's end. */
  h2pool_event *kept = NULL;
  while (!kept) {
    h2pool_event *ev = next_event(q);
    if (h2pool_event_kind(ev) == H2POOL_EVENT_DATA)
      kept = ev;
    else
      h2pool_event_free(ev);
  }
  h2pool_queue_destroy(q); /* cancels the rest; undrained events freed */
  /* The cancelled requests complete inside the pool (callbacks still work
   * on it), and nothing hangs. */
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_int_equal(c->status, 200);
  completed_arg a = {f->pool, 11};
  assert_true(poll_until(completed_at_least, &a, WAIT_MS));
  size_t len;
  assert_non_null(h2pool_event_data(kept, &len));
  assert_true(len > 0);
  h2pool_event_free(kept);
}

/* Threads submit queued requests while the pool is destroyed: every accepted
 * one completes exactly once, every refused one never. */
typedef struct racer {
  h2pool *pool;
  h2pool_queue *q;
  const char *url;
  atomic_int accepted;
  atomic_int unexpected; /* a refusal other than POOL_CLOSED */
} racer;

static void *race_submit(void *arg) {
  racer *r = arg;
  for (int i = 0; i < 2000; i++) {
    int rc = h2pool_queue_request(r->pool, r->q, "GET", r->url, NULL, 0, NULL,
                                  0, NULL, NULL, NULL);
    if (rc == H2POOL_ERR_POOL_CLOSED)
      return NULL;
    if (rc != H2POOL_OK) {
      atomic_fetch_add(&r->unexpected, 1);
      return NULL;
    }
    atomic_fetch_add(&r->accepted, 1);
  }
  return NULL;
}

static void test_destroy_race_exactly_one_complete_per_accepted(void **state) {
  fixture *f = *state;
  h2pool_queue *q = new_queue();
  char url[128];
  fixture_url(f, url, sizeof url, "/?size=100");
  racer r = {f->pool, q, url, 0, 0};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&t[i], NULL, race_submit, &r), 0);
  /* Let some requests through before destroying. */
  h2pool_event *ev = next_event(q);
  int complete = h2pool_event_kind(ev) == H2POOL_EVENT_COMPLETE;
  h2pool_event_free(ev);
  h2pool_destroy(f->pool);
  f->pool = NULL;
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  h2pool_event *evs[128];
  for (;;) {
    int n = h2pool_queue_next(q, evs, ARRAY_LEN(evs), 0);
    assert_true(n >= 0);
    if (n == 0)
      break;
    for (int i = 0; i < n; i++) {
      complete += h2pool_event_kind(evs[i]) == H2POOL_EVENT_COMPLETE;
      h2pool_event_free(evs[i]);
    }
  }
  assert_int_equal(atomic_load(&r.unexpected), 0);
  assert_int_equal(complete, atomic_load(&r.accepted));
  assert_int_equal(h2pool_queue_shutdown(q), H2POOL_OK);
  assert_int_equal(h2pool_queue_next(q, evs, 1, 0), H2POOL_ERR_QUEUE_CLOSED);
  h2pool_queue_destroy(q);
}

/* ---- closing idle connections ----------------------------------------- */

typedef struct open_arg {
  h2pool *pool;
  uint64_t open;
} open_arg;

static bool connections_open_is(void *arg) {
  open_arg *a = arg;
  return pool_stat(a->pool, H2POOL_STAT_CONNECTIONS_OPEN) == a->open;
}

static void test_close_idle_connections_spares_busy_ones(void **state) {
  fixture *f = *state;
  assert_int_equal(h2pool_close_idle_connections(NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  char fast[128], slow[128];
  fixture_url(f, fast, sizeof fast, "/");
  fixture_url(f, slow, sizeof slow, "/?delay_ms=20000");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, fast, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  open_arg one = {f->pool, 1}, none = {f->pool, 0};
  assert_true(poll_until(connections_open_is, &one, WAIT_MS));
  assert_int_equal(h2pool_close_idle_connections(f->pool), H2POOL_OK);
  assert_true(poll_until(connections_open_is, &none, WAIT_MS));
  /* A connection with a stream in flight stays. */
  uint64_t id;
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[1], &id),
                   H2POOL_OK);
  assert_true(wait_server_requests(f->ts, 2, WAIT_MS));
  assert_int_equal(h2pool_close_idle_connections(f->pool), H2POOL_OK);
  /* A snapshot is taken by a task queued after that one: it has run. */
  assert_true(connections_open_is(&one));
  assert_int_equal(h2pool_cancel(f->pool, id), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_int_equal(f->cap[1].err, H2POOL_ERR_CANCELLED);
  /* The pool connects again for the next request. */
  assert_int_equal(get_capture(f->pool, fast, NULL, &f->cap[2], NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 3, WAIT_MS));
  assert_int_equal(f->cap[2].status, 200);
  assert_int_equal(h2ts_connections_accepted(f->ts), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_queue_functions_validate_arguments,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_buffered_get_yields_one_complete_with_body, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_many_requests_one_wake_and_one_complete_each, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_descriptor_follows_pending_events,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test(test_next_times_out_empty),
      cmocka_unit_test_setup_teardown(
          test_streamed_download_headers_data_trailers_complete, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_download_buffer_holds_server_back_until_events_freed,
          fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_streamed_upload_with_trailers_is_echoed, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_short_streamed_upload_with_content_length, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_cancel_completes_with_cancelled,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_shutdown_refuses_new_and_ends_waits_after_last, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_pool_destroy_completes_every_queued_request, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_queue_destroy_with_work_outstanding,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_destroy_race_exactly_one_complete_per_accepted, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_close_idle_connections_spares_busy_ones, fixture_setup,
          fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
