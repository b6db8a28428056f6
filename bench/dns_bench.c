/* c-ares against libevent's evdns, the two asynchronous resolvers that fit
 * a libevent loop: N lookups of distinct names (A and AAAA each) started at
 * once on one event_base, against a DNS server on loopback, reporting wall
 * time and the CPU the process used. What src/resolver.h's choice rests on.
 *
 *   dns_bench cares|evdns PORT N [NAME_SUFFIX]
 *
 * bench/run_dns.sh starts dnsmasq on a free port and runs both. */
#include <ares.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static int g_left, g_ok;
static struct event_base *g_base;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* --- c-ares on libevent (as src/resolver.cc drives it) */
static ares_channel g_channel;
static struct event *g_events[65536];
static struct event *g_timer;

static void rearm(void) {
  struct timeval tv;
  if (ares_timeout(g_channel, NULL, &tv))
    evtimer_add(g_timer, &tv);
}
static void on_fd(evutil_socket_t fd, short what, void *arg) {
  (void)arg;
  ares_process_fd(g_channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  rearm();
}
static void on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  ares_process_fd(g_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm();
}
static void sock_state(void *data, ares_socket_t fd, int r, int w) {
  (void)data;
  if (g_events[fd]) {
    event_free(g_events[fd]);
    g_events[fd] = NULL;
  }
  if (r || w) {
    g_events[fd] = event_new(
        g_base, fd, EV_PERSIST | (r ? EV_READ : 0) | (w ? EV_WRITE : 0), on_fd,
        NULL);
    event_add(g_events[fd], NULL);
  }
}
static void cares_done(void *arg, int status, int timeouts,
                       struct ares_addrinfo *res) {
  (void)arg, (void)timeouts;
  if (status == ARES_SUCCESS && res && res->nodes)
    ++g_ok;
  if (res)
    ares_freeaddrinfo(res);
  if (--g_left == 0)
    event_base_loopbreak(g_base);
}

/* --- evdns */
static void evdns_done(int result, struct evutil_addrinfo *res, void *arg) {
  (void)arg;
  if (result == 0 && res)
    ++g_ok;
  if (res)
    evutil_freeaddrinfo(res);
  if (--g_left == 0)
    event_base_loopbreak(g_base);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: dns_bench cares|evdns PORT N [SUFFIX]\n");
    return 2;
  }
  int cares = strcmp(argv[1], "cares") == 0;
  int port = atoi(argv[2]);
  int n = atoi(argv[3]);
  const char *suffix = argc > 4 ? argv[4] : "bench.test";
  g_base = event_base_new();
  char server[64];
  snprintf(server, sizeof server, "127.0.0.1:%d", port);
  struct evdns_base *evdns = NULL;
  double cpu0 = cpu_s(), t0 = now_s();
  if (cares) {
    ares_library_init(ARES_LIB_INIT_ALL);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = sock_state;
    char lookups[] = "b";
    o.lookups = lookups;
    /* Both resolvers wait 500 ms per try, so a lost datagram costs the
     * same; c-ares gets the socket buffer src/resolver.cc gives it. */
    o.timeout = 500;
    o.tries = 4;
    o.socket_receive_buffer_size = 1 << 20;
    ares_init_options(&g_channel, &o,
                      ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS |
                          ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                          ARES_OPT_SOCK_RCVBUF);
    ares_set_servers_ports_csv(g_channel, server);
    g_timer = evtimer_new(g_base, on_timer, NULL);
  } else {
    evdns = evdns_base_new(g_base, 0);
    evdns_base_nameserver_ip_add(evdns, server);
    /* evdns allows 64 requests in flight per server by default. */
    evdns_base_set_option(evdns, "max-inflight:", "65535");
    evdns_base_set_option(evdns, "timeout:", "0.5");
    evdns_base_set_option(evdns, "attempts:", "4");
  }
  g_left = n;
  for (int i = 0; i < n; ++i) {
    char name[256];
    snprintf(name, sizeof name, "n%d.%s", i, suffix);
    if (cares) {
      struct ares_addrinfo_hints h;
      memset(&h, 0, sizeof h);
      h.ai_family = AF_UNSPEC;
      h.ai_socktype = SOCK_STREAM;
      ares_getaddrinfo(g_channel, name, NULL, &h, cares_done, NULL);
    } else {
      struct evutil_addrinfo h;
      memset(&h, 0, sizeof h);
      h.ai_family = AF_UNSPEC;
      h.ai_socktype = SOCK_STREAM;
      evdns_getaddrinfo(evdns, name, NULL, &h, evdns_done, NULL);
    }
  }
  if (cares)
    rearm();
  event_base_dispatch(g_base);
  double wall = now_s() - t0, cpu = cpu_s() - cpu0;
  printf("%s: %d lookups, %d answered, wall %.3f s, cpu %.3f s, "
         "%.1f us cpu per lookup\n",
         argv[1], n, g_ok, wall, cpu, cpu * 1e6 / n);
  return g_ok == n ? 0 : 1;
}
