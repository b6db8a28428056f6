#define _POSIX_C_SOURCE 200809L

#include "waiter.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void waiter_init(waiter *w) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&w->mu, NULL);
  w->count = 0;
}

void waiter_destroy(waiter *w) {
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

void waiter_signal(waiter *w) {
  pthread_mutex_lock(&w->mu);
  w->count++;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

size_t waiter_count(waiter *w) {
  pthread_mutex_lock(&w->mu);
  size_t n = w->count;
  pthread_mutex_unlock(&w->mu);
  return n;
}

bool waiter_wait(waiter *w, size_t n, uint32_t timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&w->mu);
  while (w->count < n) {
    int rc = pthread_cond_timedwait(&w->cv, &w->mu, &deadline);
    if (rc == ETIMEDOUT)
      break;
  }
  bool reached = w->count >= n;
  pthread_mutex_unlock(&w->mu);
  return reached;
}

bool poll_until(bool (*pred)(void *arg), void *arg, uint32_t timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    if (pred(arg))
      return true;
    if (now_ms() >= deadline)
      return false;
    struct timespec one_ms = {0, 1000000L};
    nanosleep(&one_ms, NULL);
  }
}

struct server_requests_arg {
  h2ts *ts;
  uint64_t n;
};

static bool server_requests_reached(void *arg) {
  struct server_requests_arg *a = arg;
  return h2ts_requests(a->ts) >= a->n;
}

bool wait_server_requests(h2ts *ts, uint64_t n, uint32_t timeout_ms) {
  struct server_requests_arg a = {ts, n};
  return poll_until(server_requests_reached, &a, timeout_ms);
}

void capture_init(capture *c, waiter *w) {
  memset(c, 0, sizeof *c);
  c->w = w;
  atomic_init(&c->calls, 0);
  c->err = H2POOL_OK;
  c->http2_code = -1;
}

void capture_free(capture *c) {
  free(c->body);
  for (size_t i = 0; i < c->nheaders; i++) {
    free(c->headers[i].name);
    free(c->headers[i].value);
  }
  free(c->headers);
  c->body = NULL;
  c->headers = NULL;
  c->nheaders = 0;
}

static char *copy_bytes(const char *p, size_t n) {
  char *out = malloc(n + 1);
  if (!out)
    abort();
  if (n)
    memcpy(out, p, n);
  out[n] = '\0';
  return out;
}

void capture_cb(const h2pool_response *resp, const h2pool_error *err,
                void *user_data) {
  capture *c = user_data;
  if (atomic_fetch_add(&c->calls, 1) == 0) {
    c->done_ms = now_ms();
    if (err) {
      c->had_err = true;
      c->err = h2pool_error_code(err);
      c->http2_code = h2pool_error_http2_code(err);
      c->err_stream_id = h2pool_error_stream_id(err);
      const char *m = h2pool_error_message(err);
      snprintf(c->message, sizeof c->message, "%s", m ? m : "(null)");
    }
    if (resp) {
      c->had_resp = true;
      c->status = h2pool_response_status(resp);
      size_t len = 0;
      const uint8_t *b = h2pool_response_body(resp, &len);
      c->body_ptr_null = b == NULL;
      c->body_len = len;
      c->body = malloc(len ? len : 1);
      if (!c->body)
        abort();
      if (b && len)
        memcpy(c->body, b, len);
      c->stream_id = h2pool_response_stream_id(resp);
      c->protocol = h2pool_response_protocol(resp);
      c->conn_id = h2pool_response_connection_id(resp);
      c->req_id = h2pool_response_request_id(resp);
      size_t n = h2pool_response_header_count(resp);
      c->headers = calloc(n ? n : 1, sizeof *c->headers);
      if (!c->headers)
        abort();
      for (size_t i = 0; i < n; i++) {
        h2pool_header h;
        if (h2pool_response_header_at(resp, i, &h) != 0)
          break;
        c->headers[i].name = copy_bytes(h.name, h.name_len);
        c->headers[i].name_len = h.name_len;
        c->headers[i].value = copy_bytes(h.value, h.value_len);
        c->headers[i].value_len = h.value_len;
        c->nheaders = i + 1;
      }
    }
  }
  waiter_signal(c->w);
}

const char *capture_header(const capture *c, const char *name) {
  for (size_t i = 0; i < c->nheaders; i++)
    if (strcmp(c->headers[i].name, name) == 0)
      return c->headers[i].value;
  return NULL;
}

bool capture_body_is_test_body(const capture *c, uint64_t seed, size_t n) {
  if (c->body_len != n)
    return false;
  uint8_t *want = malloc(n ? n : 1);
  if (!want)
    abort();
  h2ts_test_body(seed, n, want);
  bool same = n == 0 || memcmp(want, c->body, n) == 0;
  free(want);
  return same;
}

void count_cb(const h2pool_response *resp, const h2pool_error *err,
              void *user_data) {
  (void)resp;
  (void)err;
  waiter_signal(user_data);
}

int fixture_start(void **state, uint32_t mcs, bool make_pool,
                  const h2pool_config *cfg) {
  fixture *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  waiter_init(&f->w);
  for (size_t i = 0; i < FIXTURE_CAPTURES; i++)
    capture_init(&f->cap[i], &f->w);
  *state = f;
  int rc = h2ts_start(mcs, &f->ts);
  if (rc != 0) {
    print_error("h2ts_start failed: %d\n", rc);
    return -1;
  }
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u",
           (unsigned)h2ts_port(f->ts));
  if (make_pool) {
    rc = h2pool_create(cfg, &f->pool);
    if (rc != 0) {
      print_error("h2pool_create failed: %d (%s)\n", rc, h2pool_strerror(rc));
      return -1;
    }
  }
  return 0;
}

int fixture_teardown(void **state) {
  fixture *f = *state;
  if (!f)
    return 0;
  h2pool_destroy(f->pool); /* runs every outstanding callback first */
  f->pool = NULL;
  h2ts_stop(f->ts);
  for (size_t i = 0; i < FIXTURE_CAPTURES; i++)
    capture_free(&f->cap[i]);
  waiter_destroy(&f->w);
  free(f);
  *state = NULL;
  return 0;
}

int fixture_setup(void **state) {
  return fixture_start(state, 100, true, NULL);
}

int fixture_setup_no_pool(void **state) {
  return fixture_start(state, 100, false, NULL);
}

void fixture_url(const fixture *f, char *buf, size_t n,
                 const char *path_query) {
  snprintf(buf, n, "%s%s", f->base, path_query);
}

int get_capture(h2pool *pool, const char *url, const h2pool_request_opts *opts,
                capture *c, uint64_t *out_id) {
  return h2pool_request(pool, "GET", url, NULL, 0, NULL, 0, opts, capture_cb, c,
                        out_id);
}

h2pool_config *make_config(uint32_t max_conns, uint32_t max_pending) {
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_non_null(cfg);
  if (max_conns)
    assert_int_equal(
        h2pool_config_set_max_connections_per_endpoint(cfg, max_conns),
        H2POOL_OK);
  if (max_pending)
    assert_int_equal(h2pool_config_set_max_pending_requests(cfg, max_pending),
                     H2POOL_OK);
  return cfg;
}
