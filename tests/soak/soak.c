/* Soak test: many requests through one pool, checking every response body
 * byte for byte and watching the process's resident memory.
 *
 *   soak [REQUESTS [WINDOW]]     defaults: 1000000 requests, 400 in flight
 *
 * The test server runs in a child process, so the client's RSS is the
 * library's alone (the server keeps a bounded log of 100,000 requests that
 * would otherwise swamp a 16 MiB budget). After a warm-up of 10,000 requests
 * (not counted in REQUESTS) it prints RSS, again every 10% and at the end,
 * with requests/s. Requests are submitted from the completion callback, so
 * at most WINDOW are outstanding. Response sizes cycle through a few values,
 * one of them above the 64 KiB default flow-control windows.
 *
 * Exits 0 if every request succeeded with status 200 and the right bytes,
 * and the final RSS is at most 16 MiB above the post-warm-up RSS. Public API
 * only. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h2pool.h"
#include "test_server_c.h"

enum {
  WARMUP = 10000,
  DEFAULT_WINDOW = 400,
  SERVER_MAX_STREAMS = 100,
  MAX_REPORTED_FAILURES = 10,
};
static const uint64_t DEFAULT_REQUESTS = 1000000;
static const long long MAX_GROWTH_BYTES = 16ll << 20;
static const size_t SIZES[] = {0, 1, 100, 1000, 10000, 70000};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define MAX_SIZE 70000

typedef struct slot {
  uint64_t seq; /* request number, 0-based over warm-up + measured */
  size_t size;
} slot;

static struct {
  h2pool *pool;
  char base[64];
  uint64_t total; /* warm-up + measured */
  uint64_t measured;
  slot *slots;

  /* Loop-thread state (callbacks run there, one at a time). */
  uint64_t next_seq;
  uint64_t done;    /* completed or refused */
  uint64_t refused; /* h2pool_request() said no */
  uint64_t next_report;
  double t_start, t_last;
  uint64_t done_last;
  long long rss_start;
  uint8_t want[MAX_SIZE];

  atomic_ullong failed;
  atomic_int reported;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool finished;
} g;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long pages = 0, resident = 0;
  if (!f)
    return -1;
  if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static void report_failure(uint64_t seq, const char *what) {
  atomic_fetch_add(&g.failed, 1);
  if (atomic_fetch_add(&g.reported, 1) < MAX_REPORTED_FAILURES)
    fprintf(stderr, "request %" PRIu64 " failed: %s\n", seq, what);
}

static void finish_one(void) {
  ++g.done;
  if (g.done == WARMUP) {
    g.rss_start = rss_bytes();
    g.t_start = g.t_last = now_s();
    g.done_last = g.done;
    printf("after %d warm-up requests: RSS %.1f MiB\n", WARMUP,
           (double)g.rss_start / (1 << 20));
    fflush(stdout);
  } else if (g.done > WARMUP && g.done == g.next_report) {
    double t = now_s();
    uint64_t n = g.done - WARMUP;
    printf("%3" PRIu64 "%%  %10" PRIu64 " requests  RSS %.1f MiB  %.0f req/s\n",
           n * 100 / g.measured, n, (double)rss_bytes() / (1 << 20),
           (double)(g.done - g.done_last) / (t - g.t_last));
    fflush(stdout);
    g.t_last = t;
    g.done_last = g.done;
    g.next_report += g.measured / 10 ? g.measured / 10 : 1;
  }
  if (g.done == g.total) {
    pthread_mutex_lock(&g.mu);
    g.finished = true;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
  }
}

static void on_response(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data);

/* Puts the next request on slot `s`, if any are left. A refusal counts as a
 * failed request, and the slot moves on to the one after it, so the run
 * always reaches its total. */
static void submit_next(slot *s) {
  while (g.next_seq < g.total) {
    s->seq = g.next_seq++;
    s->size = SIZES[s->seq % NSIZES];
    char url[128];
    snprintf(url, sizeof url, "%s/soak?size=%zu&seed=%" PRIu64, g.base, s->size,
             s->seq);
    int rc = h2pool_request(g.pool, "GET", url, NULL, 0, NULL, 0, NULL,
                            on_response, s, NULL);
    if (rc == H2POOL_OK)
      return;
    ++g.refused;
    char what[128];
    snprintf(what, sizeof what, "refused: %s", h2pool_strerror(rc));
    report_failure(s->seq, what);
    finish_one();
  }
}

static void on_response(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  slot *s = user_data;
  if (err) {
    char what[512];
    snprintf(what, sizeof what, "%s: %s",
             h2pool_strerror(h2pool_error_code(err)),
             h2pool_error_message(err));
    report_failure(s->seq, what);
  } else if (h2pool_response_status(resp) != 200) {
    char what[64];
    snprintf(what, sizeof what, "status %d", h2pool_response_status(resp));
    report_failure(s->seq, what);
  } else {
    size_t len = 0;
    const uint8_t *body = h2pool_response_body(resp, &len);
    h2ts_test_body(s->seq, s->size, g.want);
    if (len != s->size || (len && memcmp(body, g.want, len) != 0)) {
      char what[96];
      snprintf(what, sizeof what,
               "body differs: %zu bytes, expected test_body(%" PRIu64 ", %zu)",
               len, s->seq, s->size);
      report_failure(s->seq, what);
    }
  }
  finish_one();
  submit_next(s);
}

/* The server lives in a child process; it reports its port through `ports`
 * and stops when `control` reaches EOF (the parent closed it or died). */
static pid_t start_server_process(uint16_t *port, int *control_fd) {
  int ports[2], control[2];
  if (pipe(ports) != 0 || pipe(control) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    close(ports[0]);
    close(control[1]);
    h2ts *ts = NULL;
    int rc = h2ts_start(SERVER_MAX_STREAMS, &ts);
    uint16_t p = rc == 0 ? h2ts_port(ts) : 0;
    if (write(ports[1], &p, sizeof p) != (ssize_t)sizeof p || rc != 0)
      _exit(1);
    close(ports[1]);
    char c;
    while (read(control[0], &c, 1) > 0 || errno == EINTR) {
    }
    h2ts_stop(ts);
    _exit(0);
  }
  close(ports[1]);
  close(control[0]);
  uint16_t p = 0;
  ssize_t n;
  do {
    n = read(ports[0], &p, sizeof p);
  } while (n < 0 && errno == EINTR);
  close(ports[0]);
  if (n != (ssize_t)sizeof p || p == 0) {
    close(control[1]);
    waitpid(pid, NULL, 0);
    return -1;
  }
  *port = p;
  *control_fd = control[1];
  return pid;
}

int main(int argc, char **argv) {
  g.measured = argc > 1 ? strtoull(argv[1], NULL, 10) : DEFAULT_REQUESTS;
  unsigned long window = argc > 2 ? strtoul(argv[2], NULL, 10) : DEFAULT_WINDOW;
  if (argc > 3 || g.measured == 0 || window == 0 || window > 100000) {
    fprintf(stderr, "usage: %s [REQUESTS [WINDOW]]\n", argv[0]);
    return 2;
  }
  g.total = g.measured + WARMUP;
  g.next_report = WARMUP + (g.measured / 10 ? g.measured / 10 : 1);
  pthread_mutex_init(&g.mu, NULL);
  pthread_cond_init(&g.cv, NULL);

  /* Fork before any thread exists (the pool's loop thread). */
  uint16_t port = 0;
  int control = -1;
  pid_t server = start_server_process(&port, &control);
  if (server < 0) {
    fprintf(stderr, "cannot start the test server\n");
    return 1;
  }
  snprintf(g.base, sizeof g.base, "http://127.0.0.1:%u", (unsigned)port);
  printf("soak: %" PRIu64 " requests (+%d warm-up), window %lu, server %s\n",
         g.measured, WARMUP, window, g.base);

  int rc = h2pool_create(NULL, &g.pool);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "h2pool_create: %s\n", h2pool_strerror(rc));
    return 1;
  }
  g.slots = calloc(window, sizeof *g.slots);
  if (!g.slots)
    return 1;

  /* The first window goes out from this thread; after that, callbacks on
   * the loop thread own g.next_seq. It is set before the first request is
   * handed to the pool, which orders it before any callback. */
  uint64_t initial = window < g.total ? window : g.total;
  g.next_seq = initial;
  for (uint64_t i = 0; i < initial; i++) {
    slot *s = &g.slots[i];
    s->seq = i;
    s->size = SIZES[i % NSIZES];
    char url[128];
    snprintf(url, sizeof url, "%s/soak?size=%zu&seed=%" PRIu64, g.base, s->size,
             s->seq);
    rc = h2pool_request(g.pool, "GET", url, NULL, 0, NULL, 0, NULL, on_response,
                        s, NULL);
    if (rc != H2POOL_OK) {
      fprintf(stderr, "initial request %" PRIu64 " refused: %s\n", i,
              h2pool_strerror(rc));
      return 1;
    }
  }

  pthread_mutex_lock(&g.mu);
  while (!g.finished)
    pthread_cond_wait(&g.cv, &g.mu);
  pthread_mutex_unlock(&g.mu);

  double elapsed = now_s() - g.t_start;
  long long rss_end = rss_bytes();
  h2pool_stats *stats = NULL;
  uint64_t completed = 0, failed_stat = 0, created = 0;
  if (h2pool_stats_get(g.pool, &stats) == H2POOL_OK) {
    completed = h2pool_stats_value(stats, H2POOL_STAT_REQUESTS_COMPLETED);
    failed_stat = h2pool_stats_value(stats, H2POOL_STAT_REQUESTS_FAILED);
    created = h2pool_stats_value(stats, H2POOL_STAT_CONNECTIONS_CREATED);
    h2pool_stats_free(stats);
  }
  h2pool_destroy(g.pool);
  close(control);
  waitpid(server, NULL, 0);

  uint64_t failed = atomic_load(&g.failed);
  long long growth = rss_end - g.rss_start;
  printf(
      "end: RSS %.1f MiB (start %.1f MiB, %+.1f MiB), %.0f req/s over %" PRIu64
      " requests in %.1f s\n",
      (double)rss_end / (1 << 20), (double)g.rss_start / (1 << 20),
      (double)growth / (1 << 20), (double)g.measured / elapsed, g.measured,
      elapsed);
  printf("pool: %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64
         " connections created; %" PRIu64 " requests failed the checks\n",
         completed, failed_stat, created, failed);
  free(g.slots);

  int status = 0;
  if (failed > 0) {
    fprintf(stderr, "FAIL: %" PRIu64 " requests failed\n", failed);
    status = 1;
  }
  /* Exactly one callback per accepted request, as the pool counts them. */
  if (completed + failed_stat != g.total - g.refused) {
    fprintf(stderr,
            "FAIL: the pool counted %" PRIu64 " outcomes for %" PRIu64
            " accepted requests\n",
            completed + failed_stat, g.total - g.refused);
    status = 1;
  }
  if (growth > MAX_GROWTH_BYTES) {
    fprintf(stderr, "FAIL: RSS grew by %.1f MiB (limit %lld MiB)\n",
            (double)growth / (1 << 20), MAX_GROWTH_BYTES >> 20);
    status = 1;
  }
  return status;
}
