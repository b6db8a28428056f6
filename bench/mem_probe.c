/*
 * mem_probe: resident memory of h2pool per pooled connection and per
 * in-flight stream, measured through the public C API only.
 *
 *   mem_probe conns K URL [-k]    K connections, one stream each
 *   mem_probe streams S URL [-k]  one connection carrying S streams
 *
 * URL should hold the response open for a while (`h2pool serve` with
 * ?delay_ms=N) so that all requests are in flight at once; the probe waits
 * until the pool reports them active (H2POOL_STAT_STREAMS_ACTIVE), or, for a
 * server that answers at once (no delay), just submits them all in one batch.
 *
 * Steps: create a pool (idle timeout and PINGs off), complete one warm-up
 * request (so the loop thread, resolver, TLS context and first connection
 * exist), take the baseline RSS; submit K (or S) requests, sample RSS while
 * they are in flight; wait for all to complete and sample RSS again with the
 * connections pooled and idle, before and after malloc_trim(0) (which hands
 * freed heap back to the kernel, so the figure counts live memory only).
 * RSS is read from /proc/self/statm; the live heap (mallinfo2) is printed
 * beside it, to tell live memory from fragmentation. The last line is a
 * JSON object.
 */
#define _GNU_SOURCE
#include <h2pool.h>

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t done_ok, done_err;
static char first_err[256];

static void on_done(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  (void)resp;
  (void)user_data;
  pthread_mutex_lock(&mu);
  if (err) {
    if (done_err++ == 0)
      snprintf(first_err, sizeof first_err, "%s: %s",
               h2pool_strerror(h2pool_error_code(err)),
               h2pool_error_message(err));
  } else {
    ++done_ok;
  }
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void wait_done(uint64_t target) {
  pthread_mutex_lock(&mu);
  while (done_ok + done_err < target)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (!f || fscanf(f, "%ld %ld", &size, &res) != 2) {
    perror("mem_probe: /proc/self/statm");
    exit(1);
  }
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Bytes the process's malloc has handed out and not had back (all arenas,
 * its mmap'ed blocks included): live heap, without the free chunks and
 * fragmentation that RSS also counts. Blocks h2pool maps itself (each
 * session's frame buffer, see src/session_alloc.h) are not in it. */
static long heap_kib(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static uint64_t stat_of(h2pool *pool, h2pool_stat which) {
  h2pool_stats *st = NULL;
  if (h2pool_stats_get(pool, &st) != 0)
    return 0;
  uint64_t v = h2pool_stats_value(st, which);
  h2pool_stats_free(st);
  return v;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void submit(h2pool *pool, const char *url) {
  int rc = h2pool_request(pool, "GET", url, NULL, 0, NULL, 0, NULL, on_done,
                          NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "mem_probe: request refused: %s\n", h2pool_strerror(rc));
    exit(1);
  }
}

#define CHECK(call)                                                            \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "mem_probe: %s: %s\n", #call, h2pool_strerror(rc_));     \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "conns") && strcmp(argv[1], "streams"))) {
    fprintf(stderr, "usage: mem_probe conns K URL [-k]\n"
                    "       mem_probe streams S URL [-k]\n");
    return 2;
  }
  int conns_mode = strcmp(argv[1], "conns") == 0;
  long k = strtol(argv[2], NULL, 10);
  const char *url = argv[3];
  int insecure = argc > 4 && strcmp(argv[4], "-k") == 0;
  if (k < 1 || k > 10000) {
    fprintf(stderr, "mem_probe: count must be 1..10000\n");
    return 2;
  }

  h2pool_config *cfg;
  h2pool *pool;
  CHECK(h2pool_config_new(&cfg));
  CHECK(h2pool_config_set_max_connections_per_endpoint(
      cfg, conns_mode ? (uint32_t)k : 1));
  CHECK(h2pool_config_set_max_concurrent_streams(cfg,
                                                 conns_mode ? 1 : (uint32_t)k));
  CHECK(h2pool_config_set_idle_timeout_ms(cfg, 0));
  CHECK(h2pool_config_set_ping(cfg, 0, 10000));
  CHECK(h2pool_config_set_max_lifetime_ms(cfg, 0));
  CHECK(h2pool_config_set_request_timeout_ms(cfg, 60000));
  if (insecure)
    CHECK(h2pool_config_set_tls_insecure_skip_verify(cfg, 1));
  CHECK(h2pool_create(cfg, &pool));
  h2pool_config_free(cfg);

  /* Warm-up: one request, one connection. */
  submit(pool, url);
  wait_done(1);
  if (done_err) {
    fprintf(stderr, "mem_probe: warm-up failed: %s\n", first_err);
    return 1;
  }
  malloc_trim(0);
  long rss_base = rss_kib();
  long heap_base = heap_kib();
  uint64_t open_base = stat_of(pool, H2POOL_STAT_CONNECTIONS_OPEN);

  for (long i = 0; i < k; ++i)
    submit(pool, url);
  /* Wait (up to 30 s) until all are in flight, or all are done. */
  uint64_t active = 0;
  for (int i = 0; i < 3000; ++i) {
    active = stat_of(pool, H2POOL_STAT_STREAMS_ACTIVE);
    pthread_mutex_lock(&mu);
    uint64_t finished = done_ok + done_err - 1;
    pthread_mutex_unlock(&mu);
    if (active >= (uint64_t)k || finished >= (uint64_t)k)
      break;
    sleep_ms(10);
  }
  long rss_inflight = rss_kib();
  long heap_inflight = heap_kib();
  uint64_t open_inflight = stat_of(pool, H2POOL_STAT_CONNECTIONS_OPEN);

  wait_done(1 + (uint64_t)k);
  sleep_ms(100);
  long rss_idle_raw = rss_kib();
  malloc_trim(0);
  long rss_idle = rss_kib();
  long heap_idle = heap_kib();
  uint64_t open_idle = stat_of(pool, H2POOL_STAT_CONNECTIONS_OPEN);
  uint64_t idle = stat_of(pool, H2POOL_STAT_CONNECTIONS_IDLE);
  uint64_t created = stat_of(pool, H2POOL_STAT_CONNECTIONS_CREATED);

  h2pool_destroy(pool);

  uint64_t new_conns = open_idle > open_base ? open_idle - open_base : 0;
  double per_conn_idle =
      new_conns ? (double)(rss_idle - rss_base) / (double)new_conns : 0;
  double per_unit_inflight = (double)(rss_inflight - rss_base) / (double)k;
  double heap_per_conn_idle =
      new_conns ? (double)(heap_idle - heap_base) / (double)new_conns : 0;
  double heap_per_unit_inflight =
      (double)(heap_inflight - heap_base) / (double)k;
  printf("mem_probe %s %ld %s\n", argv[1], k, url);
  printf("  baseline (1 idle connection): %ld KiB\n", rss_base);
  printf("  in flight: %ld KiB, %llu streams active, %llu connections open\n",
         rss_inflight, (unsigned long long)active,
         (unsigned long long)open_inflight);
  printf("  after completion: %ld KiB (%ld KiB after malloc_trim), "
         "%llu open, %llu idle, %llu created\n",
         rss_idle_raw, rss_idle, (unsigned long long)open_idle,
         (unsigned long long)idle, (unsigned long long)created);
  printf("  %.1f KiB per in-flight %s; %.1f KiB per idle pooled connection\n",
         per_unit_inflight, conns_mode ? "connection+stream" : "stream",
         per_conn_idle);
  printf("  live heap: %.1f KiB per in-flight %s; %.1f KiB per idle "
         "pooled connection\n",
         heap_per_unit_inflight, conns_mode ? "connection+stream" : "stream",
         heap_per_conn_idle);
  if (done_err)
    printf("  %llu requests failed; first: %s\n", (unsigned long long)done_err,
           first_err);
  printf("{\"mode\":\"%s\",\"count\":%ld,\"failed\":%llu,\"rss_base_kib\":%ld,"
         "\"rss_inflight_kib\":%ld,\"rss_idle_raw_kib\":%ld,"
         "\"rss_idle_kib\":%ld,\"streams_active\":%llu,"
         "\"connections_open_inflight\":%llu,\"connections_open_idle\":%llu,"
         "\"connections_idle\":%llu,\"kib_per_inflight\":%.2f,"
         "\"kib_per_idle_connection\":%.2f,"
         "\"heap_kib_per_inflight\":%.2f,"
         "\"heap_kib_per_idle_connection\":%.2f}\n",
         argv[1], k, (unsigned long long)done_err, rss_base, rss_inflight,
         rss_idle_raw, rss_idle, (unsigned long long)active,
         (unsigned long long)open_inflight, (unsigned long long)open_idle,
         (unsigned long long)idle, per_unit_inflight, per_conn_idle,
         heap_per_unit_inflight, heap_per_conn_idle);
  return done_err ? 1 : 0;
}
