/* Request and pool lifecycle: cancellation, timeouts, the pending-queue
 * limit, and shutdown with requests outstanding. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

static void assert_success(const capture *c, int status) {
  assert_int_equal(atomic_load(&c->calls), 1);
  if (c->had_err)
    fail_msg("request failed: %d (%s): %s", c->err, h2pool_strerror(c->err),
             c->message);
  assert_true(c->had_resp);
  assert_int_equal(c->status, status);
}

static void assert_failed_with(const capture *c, int code) {
  assert_int_equal(atomic_load(&c->calls), 1);
  assert_true(c->had_err);
  if (c->err != code)
    fail_msg("got error %d (%s: %s), want %d (%s)", c->err,
             h2pool_strerror(c->err), c->message, code, h2pool_strerror(code));
}

/* Creates f->pool from a config with the given limits (0: default) and an
 * optional pool-wide request timeout. */
static void make_pool(fixture *f, uint32_t max_conns, uint32_t max_pending,
                      uint32_t request_timeout_ms) {
  h2pool_config *cfg = make_config(max_conns, max_pending);
  if (request_timeout_ms)
    assert_int_equal(
        h2pool_config_set_request_timeout_ms(cfg, request_timeout_ms), 0);
  int rc = h2pool_create(cfg, &f->pool);
  h2pool_config_free(cfg);
  assert_int_equal(rc, H2POOL_OK);
  assert_non_null(f->pool);
}

/* A server that allows one stream per connection, no pool yet. */
static int setup_one_stream_server(void **state) {
  return fixture_start(state, 1, false, NULL);
}

/* ---- cancellation --------------------------------------------------- */

static void test_cancel_in_flight_request(void **state) {
  fixture *f = *state;
  char slow[128], fast[128];
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  fixture_url(f, fast, sizeof fast, "/fast?size=64&seed=64");
  uint64_t slow_id = 0;
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[0], &slow_id), 0);
  assert_int_not_equal(slow_id, 0);
  /* In flight: the server has it. */
  assert_true(wait_server_requests(f->ts, 1, WAIT_MS));

  /* Another request on the same pool is unaffected. */
  assert_int_equal(get_capture(f->pool, fast, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_int_equal(atomic_load(&f->cap[0].calls), 0);
  assert_success(&f->cap[1], 200);
  assert_true(capture_body_is_test_body(&f->cap[1], 64, 64));

  int64_t t0 = now_ms();
  assert_int_equal(h2pool_cancel(f->pool, slow_id), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, 2500));
  assert_failed_with(&f->cap[0], H2POOL_ERR_CANCELLED);
  assert_true(f->cap[0].done_ms - t0 < 2500);
  /* It had a stream: a client-initiated (odd) one. */
  assert_true(f->cap[0].err_stream_id > 0);
  assert_int_equal(f->cap[0].err_stream_id % 2, 1);

  /* Cancelling a finished request is still "queued", and changes nothing. */
  assert_int_equal(h2pool_cancel(f->pool, slow_id), H2POOL_OK);
  assert_int_equal(h2pool_cancel(f->pool, f->cap[1].req_id), H2POOL_OK);
  assert_int_equal(h2pool_cancel(f->pool, 0), H2POOL_ERR_INVALID_ARGUMENT);
  /* The connection survives the RST_STREAM: a new request reuses it. */
  assert_int_equal(get_capture(f->pool, fast, NULL, &f->cap[2], NULL), 0);
  assert_true(waiter_wait(&f->w, 3, WAIT_MS));
  assert_success(&f->cap[2], 200);
  assert_int_equal(f->cap[2].conn_id, f->cap[1].conn_id);
  assert_int_equal(atomic_load(&f->cap[0].calls), 1);
  assert_int_equal(atomic_load(&f->cap[1].calls), 1);
}

static void test_cancel_immediately_after_submit(void **state) {
  fixture *f = *state;
  char slow[128];
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  uint64_t id = 0;
  int64_t t0 = now_ms();
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[0], &id), 0);
  assert_int_equal(h2pool_cancel(f->pool, id), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 2500));
  assert_failed_with(&f->cap[0], H2POOL_ERR_CANCELLED);
  assert_true(f->cap[0].done_ms - t0 < 2500);
}

static void test_cancel_queued_request(void **state) {
  fixture *f = *state;
  make_pool(f, 1, 0, 0);
  char warm[128], slow[128];
  fixture_url(f, warm, sizeof warm, "/warm");
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  /* Warm up so the server's SETTINGS (one stream) are known. */
  assert_int_equal(get_capture(f->pool, warm, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);

  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[1], NULL), 0);
  assert_true(wait_server_requests(f->ts, 2, WAIT_MS));
  uint64_t queued_id = 0;
  int64_t t0 = now_ms();
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[2], &queued_id), 0);
  assert_int_equal(h2pool_cancel(f->pool, queued_id), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, 2500));
  assert_failed_with(&f->cap[2], H2POOL_ERR_CANCELLED);
  assert_true(f->cap[2].done_ms - t0 < 2500);
  /* It never got a stream, and never reached the server. */
  assert_int_equal(f->cap[2].err_stream_id, 0);
  assert_int_equal(h2ts_requests(f->ts), 2);
  /* The request holding the slot is untouched. */
  assert_int_equal(atomic_load(&f->cap[1].calls), 0);
}

/* The fast request's callback cancels the slow one. */
typedef struct cancel_from_cb {
  capture cap;
  h2pool *pool;
  uint64_t victim;
  int cancel_rc;
} cancel_from_cb;

static void cancel_from_cb_cb(const h2pool_response *resp,
                              const h2pool_error *err, void *user_data) {
  cancel_from_cb *x = user_data;
  x->cancel_rc = h2pool_cancel(x->pool, x->victim);
  capture_cb(resp, err, &x->cap);
}

static void test_cancel_from_callback(void **state) {
  fixture *f = *state;
  char slow[128], fast[128];
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  fixture_url(f, fast, sizeof fast, "/fast");
  cancel_from_cb *x = calloc(1, sizeof *x);
  assert_non_null(x);
  capture_init(&x->cap, &f->w);
  x->pool = f->pool;
  x->cancel_rc = 12345;
  int rc1 = get_capture(f->pool, slow, NULL, &f->cap[0], &x->victim);
  bool seen = rc1 == 0 && wait_server_requests(f->ts, 1, WAIT_MS);
  int rc2 = seen ? h2pool_request(f->pool, "GET", fast, NULL, 0, NULL, 0, NULL,
                                  cancel_from_cb_cb, x, NULL)
                 : -999;
  bool done = rc2 == 0 && waiter_wait(&f->w, 2, 2500);
  int64_t t_done = now_ms();
  /* x is heap memory the pool references: stop the pool before judging. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  assert_int_equal(rc1, 0);
  assert_true(seen);
  assert_int_equal(rc2, 0);
  assert_true(done);
  assert_int_equal(x->cancel_rc, H2POOL_OK);
  assert_success(&x->cap, 200);
  assert_failed_with(&f->cap[0], H2POOL_ERR_CANCELLED);
  assert_true(f->cap[0].done_ms <= t_done);
  capture_free(&x->cap);
  free(x);
}

/* ---- timeouts ------------------------------------------------------- */

static void test_request_timeout_option(void **state) {
  fixture *f = *state;
  make_pool(f, 1, 0, 0);
  char warm[128], slow[128], after[128];
  fixture_url(f, warm, sizeof warm, "/warm");
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  fixture_url(f, after, sizeof after, "/after?size=77&seed=7");
  assert_int_equal(get_capture(f->pool, warm, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);

  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(o, 200), H2POOL_OK);
  int64_t t0 = now_ms();
  int rc = get_capture(f->pool, slow, o, &f->cap[1], NULL);
  h2pool_request_opts_free(o); /* copied by h2pool_request() */
  assert_int_equal(rc, H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, 3000));
  assert_failed_with(&f->cap[1], H2POOL_ERR_TIMEOUT);
  int64_t took = f->cap[1].done_ms - t0;
  assert_true(took >= 150);
  assert_true(took < 3000);

  /* The pool still serves, on the same connection. */
  assert_int_equal(get_capture(f->pool, after, NULL, &f->cap[2], NULL), 0);
  assert_true(waiter_wait(&f->w, 3, WAIT_MS));
  assert_success(&f->cap[2], 200);
  assert_true(capture_body_is_test_body(&f->cap[2], 7, 77));
  assert_int_equal(f->cap[2].conn_id, f->cap[0].conn_id);
  assert_int_equal(h2ts_connections_accepted(f->ts), 1);
}

static void test_pool_default_request_timeout(void **state) {
  fixture *f = *state;
  make_pool(f, 0, 0, 200);
  char slow[128];
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  int64_t t0 = now_ms();
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, 3000));
  assert_failed_with(&f->cap[0], H2POOL_ERR_TIMEOUT);
  assert_true(f->cap[0].done_ms - t0 >= 150);
}

static void test_request_option_overrides_pool_timeout(void **state) {
  fixture *f = *state;
  make_pool(f, 0, 0, 200);
  char slowish[128];
  fixture_url(f, slowish, sizeof slowish,
              "/slowish?delay_ms=600&size=9&seed=9");
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(o, 5000), H2POOL_OK);
  int rc = get_capture(f->pool, slowish, o, &f->cap[0], NULL);
  h2pool_request_opts_free(o);
  assert_int_equal(rc, H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);
  assert_true(capture_body_is_test_body(&f->cap[0], 9, 9));
}

static void test_timeout_counts_time_queued(void **state) {
  fixture *f = *state;
  make_pool(f, 1, 0, 0);
  char warm[128], slow[128];
  fixture_url(f, warm, sizeof warm, "/warm");
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  assert_int_equal(get_capture(f->pool, warm, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);
  /* The only stream slot is taken for 5 s. */
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[1], NULL), 0);
  assert_true(wait_server_requests(f->ts, 2, WAIT_MS));

  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(o, 200), H2POOL_OK);
  int64_t t0 = now_ms();
  int rc = get_capture(f->pool, slow, o, &f->cap[2], NULL);
  h2pool_request_opts_free(o);
  assert_int_equal(rc, H2POOL_OK);
  assert_true(waiter_wait(&f->w, 2, 3000));
  assert_failed_with(&f->cap[2], H2POOL_ERR_TIMEOUT);
  assert_true(f->cap[2].done_ms - t0 < 3000);
  assert_int_equal(f->cap[2].err_stream_id, 0);
  assert_int_equal(atomic_load(&f->cap[1].calls), 0);
}

/* ---- the pending-queue limit ---------------------------------------- */

static void test_queue_full_is_refused_without_callback(void **state) {
  fixture *f = *state;
  make_pool(f, 1, 1, 0); /* one connection, one pending request */
  char warm[128], slow[128];
  fixture_url(f, warm, sizeof warm, "/warm");
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=5000");
  assert_int_equal(get_capture(f->pool, warm, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);

  /* r1 holds the only stream slot (the server has it)... */
  uint64_t r1 = 0, r2 = 0;
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[1], &r1), 0);
  assert_true(wait_server_requests(f->ts, 2, WAIT_MS));
  /* ...r2 fills the queue of one... */
  assert_int_equal(get_capture(f->pool, slow, NULL, &f->cap[2], &r2), 0);
  /* ...so r3 is refused, synchronously. */
  waiter never;
  waiter_init(&never);
  uint64_t r3 = 0;
  int rc3 = h2pool_request(f->pool, "GET", slow, NULL, 0, NULL, 0, NULL,
                           count_cb, &never, &r3);

  /* Cancelling the queued request frees the queue: a new one is accepted. */
  int cancel_rc = h2pool_cancel(f->pool, r2);
  bool cancelled = waiter_wait(&f->w, 2, 2500);
  int rc4 = h2pool_request(f->pool, "GET", slow, NULL, 0, NULL, 0, NULL,
                           capture_cb, &f->cap[3], NULL);
  /* Shut down: r1 and r4 complete with POOL_CLOSED; r3 must never call. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  size_t never_calls = waiter_count(&never);
  waiter_destroy(&never);

  assert_int_equal(rc3, H2POOL_ERR_QUEUE_FULL);
  assert_int_equal(never_calls, 0);
  assert_int_equal(cancel_rc, H2POOL_OK);
  assert_true(cancelled);
  assert_failed_with(&f->cap[2], H2POOL_ERR_CANCELLED);
  assert_int_equal(rc4, H2POOL_OK);
  assert_failed_with(&f->cap[1], H2POOL_ERR_POOL_CLOSED);
  assert_failed_with(&f->cap[3], H2POOL_ERR_POOL_CLOSED);
}

/* ---- shutdown ------------------------------------------------------- */

/* One slot per outstanding request. */
typedef struct tally_slot {
  atomic_int calls;
  atomic_int code;
  waiter *w;
  /* For the nested-call test. */
  waiter *never;
  h2pool *pool;
  const char *url;
  int nested_request_rc;
  int nested_cancel_rc;
  uint64_t id;
} tally_slot;

static void tally_cb(const h2pool_response *resp, const h2pool_error *err,
                     void *user_data) {
  (void)resp;
  tally_slot *s = user_data;
  atomic_store(&s->code, err ? h2pool_error_code(err) : H2POOL_OK);
  atomic_fetch_add(&s->calls, 1);
  waiter_signal(s->w);
}

static tally_slot *tally_new(size_t n, waiter *w) {
  tally_slot *s = calloc(n, sizeof *s);
  assert_non_null(s);
  for (size_t i = 0; i < n; i++) {
    atomic_init(&s[i].calls, 0);
    atomic_init(&s[i].code, 1);
    s[i].w = w;
  }
  return s;
}

/* Every slot was called exactly once with `code`; reports the first that
 * was not. */
static void assert_tally(const tally_slot *s, size_t n, int code) {
  for (size_t i = 0; i < n; i++) {
    int calls = atomic_load(&s[i].calls);
    int got = atomic_load(&s[i].code);
    if (calls != 1 || got != code)
      fail_msg("request %zu: %d callbacks with code %d (%s), want 1 with %d", i,
               calls, got, calls ? h2pool_strerror(got) : "-", code);
  }
}

enum { SHUTDOWN_N = 1000 };

static void test_destroy_completes_requests_in_flight(void **state) {
  fixture *f = *state;
  /* 20 connections x 100 streams: room for every request to be sent. */
  make_pool(f, 20, 0, 0);
  char url[128];
  fixture_url(f, url, sizeof url, "/slow?delay_ms=10000");
  tally_slot *s = tally_new(SHUTDOWN_N, &f->w);
  size_t accepted = 0;
  for (size_t i = 0; i < SHUTDOWN_N; i++)
    if (h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, NULL, tally_cb,
                       &s[i], NULL) == 0)
      accepted++;
  bool all_sent = wait_server_requests(f->ts, SHUTDOWN_N, 20000);
  size_t before = waiter_count(&f->w);
  int64_t t0 = now_ms();
  h2pool_destroy(f->pool);
  int64_t took = now_ms() - t0;
  f->pool = NULL;
  /* Counted the instant destroy returned: nothing may arrive later. */
  size_t after = waiter_count(&f->w);

  assert_int_equal(accepted, SHUTDOWN_N);
  assert_true(all_sent);
  assert_int_equal(before, 0);
  assert_int_equal(after, SHUTDOWN_N);
  assert_tally(s, SHUTDOWN_N, H2POOL_ERR_POOL_CLOSED);
  /* Shutdown does not wait for the server's 10 s responses. */
  assert_true(took < 5000);
  free(s);
}

static void test_destroy_completes_requests_just_submitted(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/slow?delay_ms=10000");
  tally_slot *s = tally_new(SHUTDOWN_N, &f->w);
  size_t accepted = 0;
  for (size_t i = 0; i < SHUTDOWN_N; i++)
    if (h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, NULL, tally_cb,
                       &s[i], NULL) == 0)
      accepted++;
  /* Some are still in the submission queue, some connecting, some sent. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  size_t after = waiter_count(&f->w);
  assert_int_equal(accepted, SHUTDOWN_N);
  assert_int_equal(after, SHUTDOWN_N);
  assert_tally(s, SHUTDOWN_N, H2POOL_ERR_POOL_CLOSED);
  free(s);
}

/* Callbacks run by h2pool_destroy() try to submit and cancel. */
static void nested_cb(const h2pool_response *resp, const h2pool_error *err,
                      void *user_data) {
  tally_slot *s = user_data;
  s->nested_request_rc = h2pool_request(s->pool, "GET", s->url, NULL, 0, NULL,
                                        0, NULL, count_cb, s->never, NULL);
  s->nested_cancel_rc = h2pool_cancel(s->pool, s->id);
  tally_cb(resp, err, user_data);
}

static void test_request_during_destroy_is_pool_closed(void **state) {
  fixture *f = *state;
  enum { N = 20 };
  char url[128];
  fixture_url(f, url, sizeof url, "/slow?delay_ms=10000");
  waiter ws[2]; /* [0] outstanding callbacks, [1] nested ones (never) */
  waiter_init(&ws[0]);
  waiter_init(&ws[1]);
  tally_slot *s = tally_new(N, &ws[0]);
  int rcs[N];
  for (size_t i = 0; i < N; i++) {
    s[i].pool = f->pool;
    s[i].never = &ws[1];
    s[i].url = url;
    s[i].nested_request_rc = 1;
    s[i].nested_cancel_rc = 1;
    rcs[i] = h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, NULL,
                            nested_cb, &s[i], &s[i].id);
  }
  bool sent = wait_server_requests(f->ts, N, WAIT_MS);
  h2pool_destroy(f->pool);
  f->pool = NULL;
  size_t outer = waiter_count(&ws[0]);
  size_t nested = waiter_count(&ws[1]);
  waiter_destroy(&ws[0]);
  waiter_destroy(&ws[1]);

  for (size_t i = 0; i < N; i++)
    assert_int_equal(rcs[i], H2POOL_OK);
  assert_true(sent);
  assert_int_equal(outer, N);
  assert_int_equal(nested, 0);
  assert_tally(s, N, H2POOL_ERR_POOL_CLOSED);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(s[i].nested_request_rc, H2POOL_ERR_POOL_CLOSED);
    assert_int_equal(s[i].nested_cancel_rc, H2POOL_ERR_POOL_CLOSED);
  }
  free(s);
}

/* h2pool_destroy() from a completion callback: asynchronous, and still
 * completes every outstanding request. */
typedef struct destroy_from_cb {
  h2pool *pool;
  waiter *w;
  atomic_int calls;
} destroy_from_cb;

static void destroy_from_cb_cb(const h2pool_response *resp,
                               const h2pool_error *err, void *user_data) {
  (void)resp;
  (void)err;
  destroy_from_cb *d = user_data;
  if (atomic_fetch_add(&d->calls, 1) == 0)
    h2pool_destroy(d->pool);
  waiter_signal(d->w);
}

static void test_destroy_from_callback_completes_outstanding(void **state) {
  fixture *f = *state;
  enum { N = 50 };
  char slow[128], fast[128];
  fixture_url(f, slow, sizeof slow, "/slow?delay_ms=10000");
  fixture_url(f, fast, sizeof fast, "/fast");
  waiter ws;
  waiter_init(&ws);
  tally_slot *s = tally_new(N, &ws);
  destroy_from_cb *d = calloc(1, sizeof *d);
  assert_non_null(d);
  d->pool = f->pool;
  d->w = &ws;
  atomic_init(&d->calls, 0);
  size_t accepted = 0;
  for (size_t i = 0; i < N; i++)
    if (h2pool_request(f->pool, "GET", slow, NULL, 0, NULL, 0, NULL, tally_cb,
                       &s[i], NULL) == 0)
      accepted++;
  bool sent = wait_server_requests(f->ts, N, WAIT_MS);
  int rc = h2pool_request(f->pool, "GET", fast, NULL, 0, NULL, 0, NULL,
                          destroy_from_cb_cb, d, NULL);
  /* From here the pool destroys itself: the fixture must not. */
  h2pool *pool = f->pool;
  f->pool = NULL;
  bool all = rc == 0 && waiter_wait(&ws, N + 1, 10000);
  if (!all && rc != 0)
    h2pool_destroy(pool);

  assert_int_equal(accepted, N);
  assert_true(sent);
  assert_int_equal(rc, H2POOL_OK);
  assert_true(all);
  assert_int_equal(atomic_load(&d->calls), 1);
  assert_tally(s, N, H2POOL_ERR_POOL_CLOSED);
  /* Nothing more may arrive: a deliberately short second look. */
  assert_false(waiter_wait(&ws, N + 2, 200));
  free(d);
  free(s);
  waiter_destroy(&ws);
}

int main(void) {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define T1(fn)                                                                 \
  cmocka_unit_test_setup_teardown(fn, setup_one_stream_server, fixture_teardown)
#define TN(fn)                                                                 \
  cmocka_unit_test_setup_teardown(fn, fixture_setup_no_pool, fixture_teardown)
  const struct CMUnitTest tests[] = {
      T(test_cancel_in_flight_request),
      T(test_cancel_immediately_after_submit),
      T1(test_cancel_queued_request),
      T(test_cancel_from_callback),
      TN(test_request_timeout_option),
      TN(test_pool_default_request_timeout),
      TN(test_request_option_overrides_pool_timeout),
      T1(test_timeout_counts_time_queued),
      T1(test_queue_full_is_refused_without_callback),
      TN(test_destroy_completes_requests_in_flight),
      T(test_destroy_completes_requests_just_submitted),
      T(test_request_during_destroy_is_pool_closed),
      T(test_destroy_from_callback_completes_outstanding),
  };
#undef T
#undef T1
#undef TN
  return cmocka_run_group_tests(tests, NULL, NULL);
}
