/* Request and response bodies through the public API: buffered and
 * streamed downloads, uploads from a buffer, a borrowed buffer and a read
 * callback, pause and resume, aborts, and bodiless responses. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Sizes around the 16 KiB frame size, where off-by-one errors live. */
static const size_t kSizes[] = {0, 1, 16383, 16384, 16385, 1u << 20};

/* ---- streaming download ---------------------------------------------- */

/* Checks each chunk against the expected test body as it arrives, so a
 * 256 MiB download needs no 256 MiB buffer to verify. */
typedef struct stream_check {
  waiter *w;
  uint64_t seed;
  size_t expected_len;
  size_t received;
  uint8_t *expect_chunk; /* scratch for h2ts_test_body slices */
  size_t expect_cap;
  uint8_t *whole; /* the full expected body, for small sizes */
  bool mismatch;
  atomic_int headers_calls;
  int status_at_headers;
  size_t body_len_at_headers;
  atomic_int data_calls;
  atomic_int done_calls;
  int err;
  size_t final_body_len;
  int pause_after; /* pause (return H2POOL_DATA_PAUSE) after this many calls */
  atomic_int paused;
} stream_check;

static int sc_on_headers(const h2pool_response *resp, void *user_data) {
  stream_check *s = user_data;
  atomic_fetch_add(&s->headers_calls, 1);
  s->status_at_headers = h2pool_response_status(resp);
  h2pool_response_body(resp, &s->body_len_at_headers);
  return 0;
}

static int sc_on_data(const uint8_t *data, size_t len, void *user_data) {
  stream_check *s = user_data;
  int calls = atomic_fetch_add(&s->data_calls, 1) + 1;
  if (s->received + len > s->expected_len) {
    s->mismatch = true;
  } else if (s->whole) {
    if (memcmp(s->whole + s->received, data, len) != 0)
      s->mismatch = true;
  }
  s->received += len;
  if (s->pause_after && calls == s->pause_after) {
    atomic_store(&s->paused, 1);
    waiter_signal(s->w);
    return H2POOL_DATA_PAUSE;
  }
  return 0;
}

static void sc_done(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  stream_check *s = user_data;
  atomic_fetch_add(&s->done_calls, 1);
  s->err = err ? h2pool_error_code(err) : H2POOL_OK;
  if (resp)
    h2pool_response_body(resp, &s->final_body_len);
  waiter_signal(s->w);
}

static h2pool_request_opts *streaming_opts(void) {
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_headers(o, sc_on_headers),
                   H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_data(o, sc_on_data), H2POOL_OK);
  return o;
}

static void stream_check_init(stream_check *s, waiter *w, uint64_t seed,
                              size_t n, bool keep_whole) {
  memset(s, 0, sizeof *s);
  s->w = w;
  s->seed = seed;
  s->expected_len = n;
  if (keep_whole) {
    s->whole = malloc(n ? n : 1);
    assert_non_null(s->whole);
    h2ts_test_body(seed, n, s->whole);
  }
}

static void test_streamed_download_is_byte_exact_at_every_size(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = streaming_opts();
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    stream_check s;
    waiter w;
    waiter_init(&w);
    stream_check_init(&s, &w, 100 + i, kSizes[i], true);
    char url[160];
    snprintf(url, sizeof url, "%s/s?size=%zu&seed=%zu", f->base, kSizes[i],
             (size_t)(100 + i));
    assert_int_equal(h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, o,
                                    sc_done, &s, NULL),
                     H2POOL_OK);
    assert_true(waiter_wait(&w, 1, 30000));
    assert_int_equal(s.err, H2POOL_OK);
    assert_int_equal(atomic_load(&s.done_calls), 1);
    assert_int_equal(atomic_load(&s.headers_calls), 1);
    assert_int_equal(s.status_at_headers, 200);
    assert_int_equal(s.body_len_at_headers, 0);
    assert_false(s.mismatch);
    assert_int_equal(s.received, kSizes[i]);
    /* Streamed bodies are not also buffered. */
    assert_int_equal(s.final_body_len, 0);
    free(s.whole);
    waiter_destroy(&w);
  }
  h2pool_request_opts_free(o);
}

static void test_buffered_download_is_byte_exact_at_every_size(void **state) {
  fixture *f = *state;
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    char url[160];
    snprintf(url, sizeof url, "%s/b?size=%zu&seed=%zu", f->base, kSizes[i],
             (size_t)(200 + i));
    capture *c = &f->cap[i];
    assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  }
  assert_true(waiter_wait(&f->w, ARRAY_LEN(kSizes), 30000));
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    capture *c = &f->cap[i];
    assert_false(c->had_err);
    assert_int_equal(c->body_len, kSizes[i]);
    assert_true(capture_body_is_test_body(c, 200 + i, kSizes[i]));
  }
}

/* 256 MiB through on_data, each chunk checked against the generator at its
 * offset, with memory bounded by the largest chunk. */
static int big_on_data(const uint8_t *data, size_t len, void *user_data) {
  stream_check *s = user_data;
  if (s->expect_cap < len) {
    free(s->expect_chunk);
    s->expect_chunk = malloc(len);
    assert_non_null(s->expect_chunk);
    s->expect_cap = len;
  }
  h2ts_fill_test_body(s->seed, s->received, len, s->expect_chunk);
  if (memcmp(s->expect_chunk, data, len) != 0)
    s->mismatch = true;
  s->received += len;
  atomic_fetch_add(&s->data_calls, 1);
  return 0;
}

static void test_streamed_256mib_download(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_data(o, big_on_data), H2POOL_OK);
  stream_check s;
  waiter w;
  waiter_init(&w);
  const size_t n = (size_t)256 << 20;
  stream_check_init(&s, &w, 7, n, false);
  char url[160];
  snprintf(url, sizeof url, "%s/big?size=%zu&seed=7", f->base, n);
  assert_int_equal(h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, o,
                                  sc_done, &s, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&w, 1, 110000));
  assert_int_equal(s.err, H2POOL_OK);
  assert_false(s.mismatch);
  assert_int_equal(s.received, n);
  free(s.expect_chunk);
  waiter_destroy(&w);
  h2pool_request_opts_free(o);
}

/* ---- pause and resume -------------------------------------------------- */

static void test_paused_stream_resumes_while_another_flows(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = streaming_opts();
  waiter w;
  waiter_init(&w);
  stream_check slow;
  const size_t n = 4u << 20; /* beyond the stream window, so it must wait */
  stream_check_init(&slow, &w, 31, n, true);
  slow.pause_after = 1;
  char url[160];
  snprintf(url, sizeof url, "%s/p?size=%zu&seed=31", f->base, n);
  uint64_t id = 0;
  assert_int_equal(h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, o,
                                  sc_done, &slow, &id),
                   H2POOL_OK);
  assert_true(waiter_wait(&w, 1, 10000)); /* paused */
  assert_int_equal(atomic_load(&slow.paused), 1);

  /* Another request on the same pool completes while the first is held. */
  capture *c = &f->cap[0];
  char url2[160];
  snprintf(url2, sizeof url2, "%s/q?size=100000&seed=32", f->base);
  assert_int_equal(get_capture(f->pool, url2, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 10000));
  assert_false(c->had_err);
  assert_true(capture_body_is_test_body(c, 32, 100000));
  assert_int_equal(atomic_load(&slow.done_calls), 0);
  assert_true(slow.received < n);

  assert_int_equal(h2pool_request_resume_download(f->pool, id), H2POOL_OK);
  assert_true(waiter_wait(&w, 2, 30000)); /* completion */
  assert_int_equal(slow.err, H2POOL_OK);
  assert_false(slow.mismatch);
  assert_int_equal(slow.received, n);
  free(slow.whole);
  waiter_destroy(&w);
  h2pool_request_opts_free(o);
}

static int abort_on_data(const uint8_t *data, size_t len, void *user_data) {
  (void)data;
  (void)len;
  (void)user_data;
  return -1;
}

static void test_on_data_abort_fails_with_aborted(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_data(o, abort_on_data),
                   H2POOL_OK);
  char url[160];
  snprintf(url, sizeof url, "%s/a?size=1000000", f->base);
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, o, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 10000));
  assert_int_equal(atomic_load(&c->calls), 1);
  assert_int_equal(c->err, H2POOL_ERR_ABORTED);
  h2pool_request_opts_free(o);
}

/* ---- bodiless responses ------------------------------------------------ */

static void test_head_and_204_have_no_body(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/h?size=5000", f->base);
  capture *head = &f->cap[0];
  assert_int_equal(h2pool_request(f->pool, "HEAD", url, NULL, 0, NULL, 0, NULL,
                                  capture_cb, head, NULL),
                   H2POOL_OK);
  char url2[160];
  snprintf(url2, sizeof url2, "%s/n?status=204", f->base);
  capture *nc = &f->cap[1];
  assert_int_equal(get_capture(f->pool, url2, NULL, nc, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, 10000));
  assert_false(head->had_err);
  assert_int_equal(head->status, 200);
  assert_int_equal(head->body_len, 0);
  assert_false(nc->had_err);
  assert_int_equal(nc->status, 204);
  assert_int_equal(nc->body_len, 0);
}

/* ---- uploads ------------------------------------------------------------ */

static void test_copied_upload_reaches_server_at_every_size(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    size_t n = kSizes[i];
    uint8_t *body = malloc(n ? n : 1);
    assert_non_null(body);
    h2ts_test_body(300 + i, n, body);
    capture *c = &f->cap[i];
    assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0,
                                    n ? body : NULL, n, NULL, capture_cb, c,
                                    NULL),
                     H2POOL_OK);
    free(body); /* copied: free at once */
  }
  assert_true(waiter_wait(&f->w, ARRAY_LEN(kSizes), 30000));
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    capture *c = &f->cap[i];
    assert_false(c->had_err);
    assert_int_equal(c->body_len, kSizes[i]);
    assert_true(capture_body_is_test_body(c, 300 + i, kSizes[i]));
  }
}

typedef struct borrowed {
  uint8_t *buf;
  atomic_int released;
  capture cap;
} borrowed;

static void release_cb(const uint8_t *body, void *user_data) {
  borrowed *b = user_data;
  assert_ptr_equal(body, b->buf);
  atomic_fetch_add(&b->released, 1);
}

static void borrowed_done(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data) {
  borrowed *b = user_data;
  /* Released before the completion callback, exactly once. */
  assert_int_equal(atomic_load(&b->released), 1);
  capture_cb(resp, err, &b->cap);
}

static void
test_borrowed_upload_is_released_once_before_completion(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_body_release(o, release_cb),
                   H2POOL_OK);
  borrowed b;
  memset(&b, 0, sizeof b);
  capture_init(&b.cap, &f->w);
  const size_t n = 70000;
  b.buf = malloc(n);
  assert_non_null(b.buf);
  h2ts_test_body(77, n, b.buf);
  assert_int_equal(h2pool_request(f->pool, "PUT", url, NULL, 0, b.buf, n, o,
                                  borrowed_done, &b, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 10000));
  assert_int_equal(atomic_load(&b.released), 1);
  assert_false(b.cap.had_err);
  assert_true(capture_body_is_test_body(&b.cap, 77, n));
  capture_free(&b.cap);
  free(b.buf);
  h2pool_request_opts_free(o);
}

/* Records what a release and the completion saw, for the test thread to
 * judge (an assertion on the loop thread could not stop the test). */
typedef struct release_record {
  const uint8_t *buf;
  atomic_int released;
  atomic_int wrong_pointer;
  atomic_int released_at_completion; /* -1 until the completion ran */
  capture cap;
} release_record;

static void record_release(const uint8_t *body, void *user_data) {
  release_record *r = user_data;
  if (body != r->buf)
    atomic_fetch_add(&r->wrong_pointer, 1);
  atomic_fetch_add(&r->released, 1);
}

static void record_completion(const h2pool_response *resp,
                              const h2pool_error *err, void *user_data) {
  release_record *r = user_data;
  atomic_store(&r->released_at_completion, atomic_load(&r->released));
  capture_cb(resp, err, &r->cap);
}

static void release_record_init(release_record *r, const uint8_t *buf,
                                waiter *w) {
  memset(r, 0, sizeof *r);
  r->buf = buf;
  atomic_init(&r->released, 0);
  atomic_init(&r->wrong_pointer, 0);
  atomic_init(&r->released_at_completion, -1);
  capture_init(&r->cap, w);
}

/* A borrowed body of length 0 is still borrowed: its pointer is the
 * caller's, so it gets its one release call, before the completion. */
static void
test_borrowed_empty_body_is_released_once_before_completion(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_body_release(o, record_release),
                   H2POOL_OK);
  static const uint8_t empty[1] = {0}; /* non-NULL; none of it is the body */
  release_record r;
  release_record_init(&r, empty, &f->w);
  int rc = h2pool_request(f->pool, "PUT", url, NULL, 0, empty, 0, o,
                          record_completion, &r, NULL);
  bool done = rc == H2POOL_OK && waiter_wait(&f->w, 1, WAIT_MS);
  h2pool_destroy(f->pool); /* no release may come after this */
  f->pool = NULL;
  h2pool_request_opts_free(o);
  assert_int_equal(rc, H2POOL_OK);
  assert_true(done);
  assert_int_equal(atomic_load(&r.cap.calls), 1);
  assert_false(r.cap.had_err);
  assert_int_equal(r.cap.status, 200);
  assert_int_equal(r.cap.body_len, 0);
  assert_int_equal(atomic_load(&r.released), 1);
  assert_int_equal(atomic_load(&r.wrong_pointer), 0);
  assert_int_equal(atomic_load(&r.released_at_completion), 1);
  capture_free(&r.cap);
}

/* With no body pointer there is nothing to release; a refused request
 * borrows nothing either, whatever its pointer. */
static void test_null_or_refused_body_is_never_released(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_body_release(o, record_release),
                   H2POOL_OK);
  static const uint8_t bytes[4] = {1, 2, 3, 4};
  release_record none, refused_empty, refused;
  release_record_init(&none, NULL, &f->w);
  release_record_init(&refused_empty, bytes, &f->w);
  release_record_init(&refused, bytes, &f->w);
  int rc_none = h2pool_request(f->pool, "PUT", url, NULL, 0, NULL, 0, o,
                               record_completion, &none, NULL);
  int rc_refused_empty =
      h2pool_request(f->pool, "PUT", "http://", NULL, 0, bytes, 0, o,
                     record_completion, &refused_empty, NULL);
  int rc_refused =
      h2pool_request(f->pool, "PUT", "http://", NULL, 0, bytes, sizeof bytes, o,
                     record_completion, &refused, NULL);
  bool done = waiter_wait(&f->w, 1, WAIT_MS);
  h2pool_destroy(f->pool); /* no release may come after this */
  f->pool = NULL;
  h2pool_request_opts_free(o);
  assert_int_equal(rc_none, H2POOL_OK);
  assert_int_equal(rc_refused_empty, H2POOL_ERR_INVALID_URL);
  assert_int_equal(rc_refused, H2POOL_ERR_INVALID_URL);
  assert_true(done);
  assert_int_equal(atomic_load(&none.cap.calls), 1);
  assert_false(none.cap.had_err);
  assert_int_equal(atomic_load(&none.released), 0);
  assert_int_equal(atomic_load(&refused_empty.released), 0);
  assert_int_equal(atomic_load(&refused_empty.cap.calls), 0);
  assert_int_equal(atomic_load(&refused.released), 0);
  assert_int_equal(atomic_load(&refused.cap.calls), 0);
  capture_free(&none.cap);
}

/* A reader that hands out test_body(seed, n) in whatever pieces nghttp2
 * asks for; with `wait_once` it first says "no data yet" and a helper
 * thread resumes it. */
typedef struct reader {
  uint64_t seed;
  size_t n;
  size_t off;
  uint8_t *data;
  bool wait_once;
  atomic_int waited;
  capture cap;
  waiter *w;
} reader;

static int64_t read_cb(uint8_t *buf, size_t len, int *eof, void *user_data) {
  reader *r = user_data;
  if (r->wait_once && atomic_load(&r->waited) == 0) {
    atomic_store(&r->waited, 1);
    waiter_signal(r->w);
    return H2POOL_BODY_WAIT;
  }
  size_t take = r->n - r->off < len ? r->n - r->off : len;
  memcpy(buf, r->data + r->off, take);
  r->off += take;
  if (r->off == r->n)
    *eof = 1;
  return (int64_t)take;
}

static void reader_done(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  reader *r = user_data;
  capture_cb(resp, err, &r->cap);
}

static void test_reader_upload_at_every_size(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    reader r;
    memset(&r, 0, sizeof r);
    r.seed = 400 + i;
    r.n = kSizes[i];
    r.data = malloc(r.n ? r.n : 1);
    assert_non_null(r.data);
    h2ts_test_body(r.seed, r.n, r.data);
    waiter w;
    waiter_init(&w);
    capture_init(&r.cap, &w);
    /* Odd sizes go without a declared length (no content-length). */
    int64_t declared = (i % 2) ? (int64_t)r.n : -1;
    assert_int_equal(h2pool_request_opts_set_body_reader(o, read_cb, declared),
                     H2POOL_OK);
    assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, NULL, 0, o,
                                    reader_done, &r, NULL),
                     H2POOL_OK);
    assert_true(waiter_wait(&w, 1, 30000));
    assert_false(r.cap.had_err);
    assert_int_equal(r.cap.body_len, r.n);
    assert_true(capture_body_is_test_body(&r.cap, r.seed, r.n));
    capture_free(&r.cap);
    waiter_destroy(&w);
    free(r.data);
  }
  h2pool_request_opts_free(o);
}

static void test_reader_wait_then_resume_from_another_thread(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_body_reader(o, read_cb, 50000),
                   H2POOL_OK);
  waiter w;
  waiter_init(&w);
  reader r;
  memset(&r, 0, sizeof r);
  r.seed = 55;
  r.n = 50000;
  r.data = malloc(r.n);
  assert_non_null(r.data);
  h2ts_test_body(r.seed, r.n, r.data);
  r.wait_once = true;
  r.w = &w;
  capture_init(&r.cap, &w);
  uint64_t id = 0;
  assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, NULL, 0, o,
                                  reader_done, &r, &id),
                   H2POOL_OK);
  assert_true(waiter_wait(&w, 1, 10000)); /* the reader said "wait" */
  /* Nothing completes while the upload waits. */
  assert_int_equal(atomic_load(&r.cap.calls), 0);
  assert_int_equal(h2pool_request_resume_upload(f->pool, id), H2POOL_OK);
  assert_true(waiter_wait(&w, 2, 10000));
  assert_false(r.cap.had_err);
  assert_true(capture_body_is_test_body(&r.cap, 55, 50000));
  capture_free(&r.cap);
  waiter_destroy(&w);
  free(r.data);
  h2pool_request_opts_free(o);
}

static int64_t abort_reader(uint8_t *buf, size_t len, int *eof,
                            void *user_data) {
  (void)buf;
  (void)len;
  (void)eof;
  (void)user_data;
  return H2POOL_BODY_ABORT;
}

static void test_reader_abort_fails_with_body_source(void **state) {
  fixture *f = *state;
  char url[160];
  snprintf(url, sizeof url, "%s/echo", f->base);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_body_reader(o, abort_reader, -1),
                   H2POOL_OK);
  capture *c = &f->cap[0];
  assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, NULL, 0, o,
                                  capture_cb, c, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 10000));
  assert_int_equal(c->err, H2POOL_ERR_BODY_SOURCE);
  /* A reader and a body argument together are refused. */
  const uint8_t x = 'x';
  capture *d = &f->cap[1];
  assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, &x, 1, o,
                                  capture_cb, d, NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  h2pool_request_opts_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_streamed_download_is_byte_exact_at_every_size, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_buffered_download_is_byte_exact_at_every_size, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_streamed_256mib_download,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_paused_stream_resumes_while_another_flows, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_on_data_abort_fails_with_aborted,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_head_and_204_have_no_body,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_copied_upload_reaches_server_at_every_size, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_borrowed_upload_is_released_once_before_completion,
          fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_borrowed_empty_body_is_released_once_before_completion,
          fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_null_or_refused_body_is_never_released, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_reader_upload_at_every_size,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_reader_wait_then_resume_from_another_thread, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_reader_abort_fails_with_body_source,
                                      fixture_setup, fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
