/* What running inside the caller's loop costs, against a pool with its own
 * thread: the same requests through h2pool_create() (a loop thread of
 * h2pool's; the main thread waits), h2pool_create_on_base() (the caller's
 * libevent base) and h2pool_create_external() (a plain epoll loop calling
 * h2pool_socket_action()). Each run keeps `concurrency` requests in flight,
 * submitting the next from each completion, and prints wall time, requests
 * per second and the process's CPU time (user + system) per request.
 *
 *   loop_bench thread|base|external URL requests concurrency
 */
#define _POSIX_C_SOURCE 200809L
#include <h2pool.h>

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

struct run {
  h2pool *pool;
  const char *url;
  long total, submitted, completed, failed;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct event_base *base; /* base mode: stopped when the last completes */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void submit_one(struct run *r);

/* Runs on the pool's loop thread in every mode. */
static void on_done(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  struct run *r = user_data;
  if (err || h2pool_response_status(resp) != 200) {
    if (r->failed++ == 0 && err)
      fprintf(stderr, "first failure: %s\n", h2pool_error_message(err));
  }
  if (r->submitted < r->total)
    submit_one(r);
  /* Under the lock in every mode, so that each pays the same. */
  pthread_mutex_lock(&r->mu);
  if (++r->completed == r->total) {
    if (r->base)
      event_base_loopbreak(r->base);
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

static void submit_one(struct run *r) {
  r->submitted++;
  int rc = h2pool_request(r->pool, "GET", r->url, NULL, 0, NULL, 0, NULL,
                          on_done, r, NULL);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "h2pool_request: %s\n", h2pool_strerror(rc));
    exit(1);
  }
}

/* The external loop: epoll for descriptors, one deadline for the timer. */
struct ext {
  int epfd;
  double timer_at; /* < 0: none */
};

static void on_socket(int fd, int what, void *user_data) {
  struct ext *x = user_data;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.data.fd = fd;
  if (what == H2POOL_POLL_REMOVE) {
    epoll_ctl(x->epfd, EPOLL_CTL_DEL, fd, &ev);
    return;
  }
  ev.events = ((what & H2POOL_POLL_IN) ? EPOLLIN : 0) |
              ((what & H2POOL_POLL_OUT) ? EPOLLOUT : 0);
  if (epoll_ctl(x->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void on_timer(long timeout_ms, void *user_data) {
  struct ext *x = user_data;
  x->timer_at = timeout_ms < 0 ? -1 : now_s() + timeout_ms / 1e3;
}

static void run_external(struct run *r, struct ext *x) {
  while (r->completed < r->total) {
    int wait_ms = -1;
    if (x->timer_at >= 0) {
      double left = x->timer_at - now_s();
      wait_ms = left <= 0 ? 0 : (int)(left * 1e3) + 1;
    }
    struct epoll_event evs[64];
    int n = epoll_wait(x->epfd, evs, 64, wait_ms);
    for (int i = 0; i < n; ++i) {
      int ev =
          ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? H2POOL_POLL_IN
                                                             : 0) |
          ((evs[i].events & EPOLLOUT) ? H2POOL_POLL_OUT : 0);
      h2pool_socket_action(r->pool, evs[i].data.fd, ev);
    }
    if (x->timer_at >= 0 && now_s() >= x->timer_at) {
      x->timer_at = -1;
      h2pool_socket_action(r->pool, H2POOL_SOCKET_TIMEOUT, 0);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s thread|base|external URL requests concurrency\n",
            argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  struct run r;
  memset(&r, 0, sizeof r);
  r.url = argv[2];
  r.total = atol(argv[3]);
  long conc = atol(argv[4]);
  if (r.total <= 0 || conc <= 0) {
    fprintf(stderr, "requests and concurrency must be positive\n");
    return 2;
  }
  if (conc > r.total)
    conc = r.total;
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);

  struct ext x = {-1, -1};
  h2pool_config *cfg = NULL;
  if (h2pool_config_new(&cfg) != H2POOL_OK)
    return 1;
  int rc;
  if (strcmp(mode, "thread") == 0) {
    rc = h2pool_create(cfg, &r.pool);
  } else if (strcmp(mode, "base") == 0) {
    r.base = event_base_new();
    rc =
        r.base ? h2pool_create_on_base(cfg, r.base, &r.pool) : H2POOL_ERR_NOMEM;
  } else if (strcmp(mode, "external") == 0) {
    x.epfd = epoll_create1(EPOLL_CLOEXEC);
    h2pool_config_set_socket_callback(cfg, on_socket, &x);
    h2pool_config_set_timer_callback(cfg, on_timer, &x);
    rc = h2pool_create_external(cfg, &r.pool);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "create: %s\n", h2pool_strerror(rc));
    return 1;
  }

  double t0 = now_s(), c0 = cpu_s();
  /* The first batch comes from the main thread, which is the loop thread
   * in the base and external modes; the rest from completions. */
  for (long i = 0; i < conc; ++i)
    submit_one(&r);
  if (r.base) {
    event_base_dispatch(r.base);
  } else if (x.epfd >= 0) {
    run_external(&r, &x);
  } else {
    pthread_mutex_lock(&r.mu);
    while (r.completed < r.total)
      pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
  }
  double wall = now_s() - t0, cpu = cpu_s() - c0;
  printf("%-8s %ld requests, %ld in flight: %.3f s, %.0f req/s, "
         "%.2f us CPU/request, %ld failed\n",
         mode, r.total, conc, wall, r.total / wall, cpu / r.total * 1e6,
         r.failed);
  h2pool_destroy(r.pool);
  if (r.base)
    event_base_free(r.base);
  return r.failed ? 1 : 0;
}
