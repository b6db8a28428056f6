/* The headline acceptance test: under concurrent load from several threads,
 * every accepted request gets exactly one callback with its own bytes, and
 * the pool keeps within the server's and its own limits. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

enum {
  THREADS = 4,
  PER_THREAD = 2500,
  TOTAL = THREADS * PER_THREAD,
  SERVER_MAX_STREAMS = 50,
  POOL_MAX_CONNS = 4,
  MAX_SIZE = 3000,
};

typedef struct slot {
  atomic_int calls;
  atomic_int result; /* 0 ok, else a reason below or an H2POOL_ERR_* */
  int submit_rc;     /* written by the submitting thread */
  uint64_t out_id;   /* written by the submitting thread */
  uint64_t resp_id;  /* written by the callback */
  uint64_t seed;
  size_t size;
  waiter *w;
} slot;

enum { BAD_STATUS = 1, BAD_BODY = 2, NO_RESPONSE = 3 };

static void load_cb(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  slot *s = user_data;
  int result = 0;
  if (err) {
    result = h2pool_error_code(err);
  } else if (!resp) {
    result = NO_RESPONSE;
  } else if (h2pool_response_status(resp) != 200) {
    result = BAD_STATUS;
  } else {
    size_t len = 0;
    const uint8_t *body = h2pool_response_body(resp, &len);
    uint8_t want[MAX_SIZE];
    h2ts_test_body(s->seed, s->size, want);
    if (!body || len != s->size || (len && memcmp(body, want, len) != 0))
      result = BAD_BODY;
    s->resp_id = h2pool_response_request_id(resp);
  }
  atomic_store(&s->result, result);
  atomic_fetch_add(&s->calls, 1);
  waiter_signal(s->w);
}

typedef struct submitter {
  h2pool *pool;
  const char *base;
  slot *slots; /* this thread's PER_THREAD slots */
  pthread_barrier_t *start;
} submitter;

static void *submit_thread(void *arg) {
  submitter *t = arg;
  pthread_barrier_wait(t->start);
  for (size_t i = 0; i < PER_THREAD; i++) {
    slot *s = &t->slots[i];
    char url[160];
    snprintf(url, sizeof url, "%s/load?size=%zu&seed=%llu", t->base, s->size,
             (unsigned long long)s->seed);
    s->submit_rc = h2pool_request(t->pool, "GET", url, NULL, 0, NULL, 0, NULL,
                                  load_cb, s, &s->out_id);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int setup_load(void **state) {
  return fixture_start(state, SERVER_MAX_STREAMS, false, NULL);
}

static void test_every_request_completes_exactly_once_under_load(void **state) {
  fixture *f = *state;
  h2pool_config *cfg = make_config(POOL_MAX_CONNS, 0);
  assert_int_equal(h2pool_create(cfg, &f->pool), H2POOL_OK);
  h2pool_config_free(cfg);

  slot *slots = calloc(TOTAL, sizeof *slots);
  assert_non_null(slots);
  for (size_t i = 0; i < TOTAL; i++) {
    atomic_init(&slots[i].calls, 0);
    atomic_init(&slots[i].result, -1000);
    slots[i].seed = i + 1; /* distinct seed per request */
    slots[i].size = (i + 1) % MAX_SIZE;
    slots[i].w = &f->w;
  }
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, THREADS);
  pthread_t th[THREADS];
  submitter subs[THREADS];
  for (size_t t = 0; t < THREADS; t++) {
    subs[t] = (submitter){f->pool, f->base, slots + t * PER_THREAD, &start};
    assert_int_equal(pthread_create(&th[t], NULL, submit_thread, &subs[t]), 0);
  }
  for (size_t t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  pthread_barrier_destroy(&start);

  size_t accepted = 0;
  for (size_t i = 0; i < TOTAL; i++)
    accepted += slots[i].submit_rc == 0;
  bool all_done = waiter_wait(&f->w, accepted, 60000);
  size_t done = waiter_count(&f->w);

  h2pool_stats *st = NULL;
  int stats_rc = h2pool_stats_get(f->pool, &st);
  uint64_t completed = h2pool_stats_value(st, H2POOL_STAT_REQUESTS_COMPLETED);
  uint64_t failed = h2pool_stats_value(st, H2POOL_STAT_REQUESTS_FAILED);
  uint64_t created = h2pool_stats_value(st, H2POOL_STAT_CONNECTIONS_CREATED);
  uint64_t peak =
      h2pool_stats_value(st, H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION);
  h2pool_stats_free(st);

  /* Destroy before judging: the slots must outlive every callback. Nothing
   * may be outstanding, so a late or second callback shows up as a count. */
  h2pool_destroy(f->pool);
  f->pool = NULL;

  for (size_t i = 0; i < TOTAL; i++)
    if (slots[i].submit_rc != 0)
      fail_msg("request %zu refused: %d (%s)", i, slots[i].submit_rc,
               h2pool_strerror(slots[i].submit_rc));
  if (!all_done)
    fail_msg("only %zu of %d callbacks within 60 s", done, TOTAL);
  size_t counts[4] = {0}; /* 0, 1, 2, more callbacks */
  for (size_t i = 0; i < TOTAL; i++) {
    int c = atomic_load(&slots[i].calls);
    counts[c > 3 ? 3 : c]++;
  }
  if (counts[1] != TOTAL)
    fail_msg("callbacks per request: %zu none, %zu once, %zu twice, %zu more",
             counts[0], counts[1], counts[2], counts[3]);
  for (size_t i = 0; i < TOTAL; i++) {
    int r = atomic_load(&slots[i].result);
    if (r != 0)
      fail_msg("request %zu (seed %llu size %zu): result %d (%s)", i,
               (unsigned long long)slots[i].seed, slots[i].size, r,
               r < 0           ? h2pool_strerror(r)
               : r == BAD_BODY ? "body differs"
                               : "bad status/response");
  }
  /* Ids: never 0, distinct, and the callback saw its own. */
  uint64_t *ids = malloc(TOTAL * sizeof *ids);
  assert_non_null(ids);
  for (size_t i = 0; i < TOTAL; i++) {
    assert_int_not_equal(slots[i].out_id, 0);
    assert_int_equal(slots[i].resp_id, slots[i].out_id);
    ids[i] = slots[i].out_id;
  }
  qsort(ids, TOTAL, sizeof *ids, cmp_u64);
  for (size_t i = 1; i < TOTAL; i++)
    assert_int_not_equal(ids[i], ids[i - 1]);
  free(ids);

  print_message("%d requests: server saw %llu connections, peak %u streams; "
                "pool peak %llu streams per connection\n",
                TOTAL, (unsigned long long)h2ts_connections_accepted(f->ts),
                (unsigned)h2ts_peak_concurrent_streams(f->ts),
                (unsigned long long)peak);
  /* Limits: the server's SETTINGS and the pool's connection cap. */
  assert_true(h2ts_peak_concurrent_streams(f->ts) <= SERVER_MAX_STREAMS);
  assert_true(h2ts_connections_accepted(f->ts) <= POOL_MAX_CONNS);
  assert_true(h2ts_connections_accepted(f->ts) >= 1);
  assert_int_equal(h2ts_requests(f->ts), TOTAL);

  assert_int_equal(stats_rc, H2POOL_OK);
  assert_int_equal(completed, TOTAL);
  assert_int_equal(failed, 0);
  assert_true(created <= POOL_MAX_CONNS);
  assert_true(peak <= SERVER_MAX_STREAMS);
  free(slots);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_every_request_completes_exactly_once_under_load, setup_load,
          fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
