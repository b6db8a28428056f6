/* Shared machinery for the CMocka tests of the public C API: waiting for
 * completion callbacks without sleeping, capturing what a callback saw (the
 * response is borrowed, so everything is copied), and a fixture holding a
 * test server and a pool.
 *
 * Assertions only ever run on the test's main thread: callbacks run on the
 * pool's loop thread, so they record and the test checks afterwards. */
#ifndef H2POOL_TESTS_C_WAITER_H
#define H2POOL_TESTS_C_WAITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2pool.h"
#include "test_server_c.h"

/* Generous bound for one request against the loopback test server. */
#define WAIT_MS 10000u

/* A counter that callbacks bump and tests wait on with a deadline. */
typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC */
  size_t count;
} waiter;

void waiter_init(waiter *w);
void waiter_destroy(waiter *w);
/* Adds one and wakes every waiter. Callable from any thread. */
void waiter_signal(waiter *w);
size_t waiter_count(waiter *w);
/* Waits until the count reaches `n` or `timeout_ms` passes. Returns whether
 * the count reached `n`. */
bool waiter_wait(waiter *w, size_t n, uint32_t timeout_ms);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

/* Some states can only be observed by asking (the test server's request
 * count, a stats snapshot): re-evaluates `pred` every millisecond until it
 * holds or `timeout_ms` passes. Returns whether it held. This is polling for
 * the state that proves the event, not a sleep standing in for one. */
bool poll_until(bool (*pred)(void *arg), void *arg, uint32_t timeout_ms);
/* poll_until(h2ts_requests(ts) >= n). */
bool wait_server_requests(h2ts *ts, uint64_t n, uint32_t timeout_ms);

typedef struct captured_header {
  char *name;
  size_t name_len;
  char *value;
  size_t value_len;
} captured_header;

/* Everything one completion callback saw, copied. */
typedef struct capture {
  waiter *w;        /* signalled once per callback; may be shared */
  atomic_int calls; /* callbacks received: must end up exactly 1 */
  /* The fields below describe the first callback only. */
  bool had_err;
  int err; /* h2pool_error_code(), or H2POOL_OK */
  int64_t http2_code;
  int32_t err_stream_id;
  char message[256];
  bool had_resp;
  int status;
  uint8_t *body;
  size_t body_len;
  bool body_ptr_null; /* h2pool_response_body() returned NULL */
  int32_t stream_id;
  int protocol; /* h2pool_response_protocol() */
  uint64_t conn_id;
  uint64_t req_id;
  size_t nheaders;
  captured_header *headers;
  int64_t done_ms; /* now_ms() when the callback ran */
} capture;

void capture_init(capture *c, waiter *w);
/* Frees the copies; the capture may be reused after capture_init(). */
void capture_free(capture *c);
/* An h2pool_response_cb; user_data is a capture *. */
void capture_cb(const h2pool_response *resp, const h2pool_error *err,
                void *user_data);
/* The value of the first captured header named `name` (exact, lower-case),
 * or NULL. */
const char *capture_header(const capture *c, const char *name);
/* Whether c->body is exactly h2ts_test_body(seed, n). */
bool capture_body_is_test_body(const capture *c, uint64_t seed, size_t n);

/* A callback that only counts (user_data is a waiter *). */
void count_cb(const h2pool_response *resp, const h2pool_error *err,
              void *user_data);

#define FIXTURE_CAPTURES 16

/* A test server on 127.0.0.1 and (optionally) a pool. Teardown destroys the
 * pool before freeing the captures, so a failed test cannot leave a callback
 * pointing at freed memory. */
typedef struct fixture {
  h2ts *ts;
  h2pool *pool;
  char base[64]; /* "http://127.0.0.1:PORT" */
  waiter w;
  capture cap[FIXTURE_CAPTURES];
} fixture;

/* Starts a server announcing `mcs` concurrent streams; creates a pool from
 * `cfg` when `make_pool` (cfg NULL: defaults). Returns 0 or -1. */
int fixture_start(void **state, uint32_t mcs, bool make_pool,
                  const h2pool_config *cfg);
/* Destroys the pool, stops the server, frees everything. */
int fixture_teardown(void **state);
/* CMocka setups: server with max_concurrent_streams 100, with/without a
 * default pool. */
int fixture_setup(void **state);
int fixture_setup_no_pool(void **state);

/* Formats base + path_query into buf. */
void fixture_url(const fixture *f, char *buf, size_t n, const char *path_query);

/* Submits GET url with capture c; returns h2pool_request()'s result. */
int get_capture(h2pool *pool, const char *url, const h2pool_request_opts *opts,
                capture *c, uint64_t *out_id);

/* A config with the given limits (0 leaves the default). Aborts the test on
 * failure. */
h2pool_config *make_config(uint32_t max_conns, uint32_t max_pending);

#endif
