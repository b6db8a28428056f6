/* h2pool inside a plain epoll loop, with no thread of h2pool's: the pool is
 * made with h2pool_create_external(), tells the loop which descriptors to
 * watch and when its next timer is due, and does its work whenever the loop
 * calls h2pool_socket_action(). Fetches every URL given, all at once, and
 * prints each one's status and size.
 *
 *   cc epoll_loop.c $(pkg-config --cflags --libs h2pool) -o epoll_loop
 *   ./epoll_loop http://127.0.0.1:PORT/a http://127.0.0.1:PORT/b
 */
#define _POSIX_C_SOURCE 200809L
#include <h2pool.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

struct loop {
  int epfd;
  long long timer_at_ms; /* -1: no timer */
  int failed;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* h2pool says what to watch `fd` for, or to stop watching it. */
static void on_socket(int fd, int what, void *user_data) {
  struct loop *l = user_data;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.data.fd = fd;
  if (what == H2POOL_POLL_REMOVE) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, &ev);
    return;
  }
  ev.events = ((what & H2POOL_POLL_IN) ? EPOLLIN : 0) |
              ((what & H2POOL_POLL_OUT) ? EPOLLOUT : 0);
  /* A descriptor seen for the first time is added, a known one modified. */
  if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* h2pool says when to call in at the latest (-1: no timer). */
static void on_timer(long timeout_ms, void *user_data) {
  struct loop *l = user_data;
  l->timer_at_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

struct fetch {
  const char *url;
  int done;
  struct loop *loop;
};

static void on_done(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  struct fetch *f = user_data;
  f->done = 1;
  if (err) {
    fprintf(stderr, "%s: %s\n", f->url, h2pool_error_message(err));
    f->loop->failed = 1;
    return;
  }
  size_t len = 0;
  h2pool_response_body(resp, &len);
  printf("%s: %d, %zu bytes\n", f->url, h2pool_response_status(resp), len);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 65) {
    fprintf(stderr, "usage: %s URL... (at most 64)\n", argv[0]);
    return 2;
  }
  struct loop l = {epoll_create1(EPOLL_CLOEXEC), -1, 0};
  if (l.epfd < 0) {
    perror("epoll_create1");
    return 1;
  }
  h2pool_config *cfg = NULL;
  h2pool *pool = NULL;
  int rc = h2pool_config_new(&cfg);
  if (rc == H2POOL_OK)
    rc = h2pool_config_set_socket_callback(cfg, on_socket, &l);
  if (rc == H2POOL_OK)
    rc = h2pool_config_set_timer_callback(cfg, on_timer, &l);
  if (rc == H2POOL_OK)
    rc = h2pool_create_external(cfg, &pool);
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "cannot create the pool: %s\n", h2pool_strerror(rc));
    return 1;
  }

  struct fetch fetches[64];
  int n = argc - 1;
  for (int i = 0; i < n; i++) {
    fetches[i] = (struct fetch){argv[i + 1], 0, &l};
    rc = h2pool_request(pool, "GET", argv[i + 1], NULL, 0, NULL, 0, NULL,
                        on_done, &fetches[i], NULL);
    if (rc != H2POOL_OK) {
      fprintf(stderr, "%s: %s\n", argv[i + 1], h2pool_strerror(rc));
      fetches[i].done = 1;
      l.failed = 1;
    }
  }

  for (;;) {
    int pending = 0;
    for (int i = 0; i < n; i++)
      pending += !fetches[i].done;
    if (!pending)
      break;
    int wait_ms = -1;
    if (l.timer_at_ms >= 0) {
      long long left = l.timer_at_ms - now_ms();
      wait_ms = left > 0 ? (int)left : 0;
    }
    struct epoll_event evs[16];
    int k = epoll_wait(l.epfd, evs, 16, wait_ms);
    for (int i = 0; i < k; i++) {
      int events =
          ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? H2POOL_POLL_IN
                                                             : 0) |
          ((evs[i].events & EPOLLOUT) ? H2POOL_POLL_OUT : 0);
      h2pool_socket_action(pool, evs[i].data.fd, events);
    }
    if (l.timer_at_ms >= 0 && now_ms() >= l.timer_at_ms) {
      l.timer_at_ms = -1;
      h2pool_socket_action(pool, H2POOL_SOCKET_TIMEOUT, 0);
    }
  }
  /* Between two loop turns: synchronous, and every descriptor is reported
   * removed before it returns. */
  h2pool_destroy(pool);
  return l.failed;
}
