/*
 * curl_bench: the libcurl multi-interface counterpart of `h2pool bench` and
 * `h2load`, for bench/run.sh.
 *
 *   curl_bench -n N -c C -m M [-k | --cacert FILE] URL
 *
 * Sends N GET requests to URL over HTTP/2 (ALPN h2 for https://, prior
 * knowledge for http://; see below), multiplexed over at most C connections
 * (CURLMOPT_MAX_HOST_CONNECTIONS) with at most M streams each
 * (CURLMOPT_MAX_CONCURRENT_STREAMS), keeping C*M transfers in flight. Easy
 * handles are reused; bodies go to a sink callback that only counts bytes.
 *
 * Prints a summary and, as the last line, a JSON object with the same
 * field names as `h2pool bench` (requests, succeeded, failed, wall_s,
 * user_s, sys_s, rps, cpu_us_per_req) plus body_bytes, connections,
 * status_2xx and stall_s (seconds spent in polls that saw no event for a
 * whole second: libcurl 7.88 sometimes stops reading multiplexed bulk
 * downloads until the server closes the idle connection; a larger
 * --buffer-size avoids it over TLS).
 *
 * h2c and libcurl 7.88.x: CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE breaks on
 * connection reuse there (every transfer after the first on a connection
 * fails with "Error in the HTTP2 framing layer": curl issue #10634, fixed in
 * 7.89.0 by curl PR #10643; Debian 12 ships 7.88.1). With such a libcurl,
 * http:// URLs use CURL_HTTP_VERSION_2_0 instead: the first request on each
 * connection is an HTTP/1.1 "Upgrade: h2c" request, every later one is an
 * HTTP/2 stream on the same connection. --prior-knowledge / --upgrade
 * force either mode.
 * --http1.1 speaks HTTP/1.1 instead: no multiplexing, C connections with
 * one transfer each (M must be 1), as `h2load --h1` and `h2pool bench
 * --http1.1` do.
 * Exit status: 0 if every request got a response (any HTTP status), 1 if
 * any failed, 2 on usage errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
  CURL *easy;
  uint64_t bytes;
} slot_t;

static size_t sink(char *ptr, size_t size, size_t nmemb, void *userdata) {
  (void)ptr;
  slot_t *s = userdata;
  s->bytes += size * nmemb;
  return size * nmemb;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_times(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: curl_bench -n N -c C -m M [-k | --cacert FILE]\n"
          "                  [--prior-knowledge | --upgrade | --http1.1] URL\n"
          "  -n N        total requests (default 1000)\n"
          "  -c C        maximum connections (default 1)\n"
          "  -m M        concurrent streams per connection (default 1)\n"
          "  -k, --insecure  do not verify the server certificate\n"
          "  --cacert F  trust the CA certificates in F (PEM)\n"
          "  --buffer-size B  CURLOPT_BUFFERSIZE (receive buffer, at most\n"
          "              512 KiB; h2c via Upgrade: set after the upgrade)\n"
          "  --http1.1   HTTP/1.1, one transfer per connection (-m 1)\n"
          "  --prior-knowledge  h2c with prior knowledge (default with\n"
          "              libcurl >= 7.89.0)\n"
          "  --upgrade   h2c via HTTP/1.1 Upgrade (default with older\n"
          "              libcurl, whose prior-knowledge mode breaks on\n"
          "              connection reuse)\n");
}

static unsigned long parse_num(const char *s, const char *what) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v == 0) {
    fprintf(stderr, "curl_bench: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

#define CHECK_EASY(call)                                                       \
  do {                                                                         \
    CURLcode rc_ = (call);                                                     \
    if (rc_ != CURLE_OK) {                                                     \
      fprintf(stderr, "curl_bench: %s: %s\n", #call, curl_easy_strerror(rc_)); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)
#define CHECK_MULTI(call)                                                      \
  do {                                                                         \
    CURLMcode rc_ = (call);                                                    \
    if (rc_ != CURLM_OK) {                                                     \
      fprintf(stderr, "curl_bench: %s: %s\n", #call,                           \
              curl_multi_strerror(rc_));                                       \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

int main(int argc, char **argv) {
  unsigned long n = 1000, c = 1, m = 1;
  long bufsize = 0;
  double stall_s = 0;
  int insecure = 0, h2c_mode = -1; /* 1 prior knowledge, 0 upgrade */
  int http1 = 0;
  const char *cacert = NULL, *url = NULL;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "-k") || !strcmp(a, "--insecure")) {
      insecure = 1;
    } else if (!strcmp(a, "--prior-knowledge")) {
      h2c_mode = 1;
    } else if (!strcmp(a, "--upgrade")) {
      h2c_mode = 0;
    } else if (!strcmp(a, "--http1.1")) {
      http1 = 1;
    } else if (i + 1 < argc && !strcmp(a, "-n")) {
      n = parse_num(argv[++i], "-n");
    } else if (i + 1 < argc && !strcmp(a, "-c")) {
      c = parse_num(argv[++i], "-c");
    } else if (i + 1 < argc && !strcmp(a, "-m")) {
      m = parse_num(argv[++i], "-m");
    } else if (i + 1 < argc && !strcmp(a, "--buffer-size")) {
      bufsize = (long)parse_num(argv[++i], "--buffer-size");
    } else if (i + 1 < argc && !strcmp(a, "--cacert")) {
      cacert = argv[++i];
    } else if (a[0] == '-' || url) {
      usage(stderr);
      return 2;
    } else {
      url = a;
    }
  }
  if (!url) {
    usage(stderr);
    return 2;
  }
  int tls = strncmp(url, "https://", 8) == 0;
  if (h2c_mode < 0)
    h2c_mode = curl_version_info(CURLVERSION_NOW)->version_num >= 0x075900;
  long http_version = http1      ? (long)CURL_HTTP_VERSION_1_1
                      : tls      ? (long)CURL_HTTP_VERSION_2_0
                      : h2c_mode ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                                 : (long)CURL_HTTP_VERSION_2_0;
  if (http1) {
    m = 1;
    h2c_mode = 1; /* no h2c upgrade warm-up below */
  }

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "curl_bench: curl_global_init failed\n");
    return 1;
  }
  CURLM *multi = curl_multi_init();
  CHECK_MULTI(curl_multi_setopt(multi, CURLMOPT_PIPELINING,
                                http1 ? CURLPIPE_NOTHING : CURLPIPE_MULTIPLEX));
  CHECK_MULTI(curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c));
  CHECK_MULTI(
      curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)m));

  uint64_t window = (uint64_t)c * m;
  if (window > n)
    window = n;
  slot_t *slots = calloc(window, sizeof *slots);
  if (!slots)
    return 1;
  for (uint64_t i = 0; i < window; ++i) {
    CURL *e = curl_easy_init();
    if (!e) {
      fprintf(stderr, "curl_bench: curl_easy_init failed\n");
      return 1;
    }
    slots[i].easy = e;
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_URL, url));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, http_version));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_PIPEWAIT, http1 ? 0L : 1L));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
    if (bufsize && (tls || h2c_mode))
      CHECK_EASY(curl_easy_setopt(e, CURLOPT_BUFFERSIZE, bufsize));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_WRITEDATA, &slots[i]));
    CHECK_EASY(curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[i]));
    if (tls) {
      if (insecure) {
        CHECK_EASY(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L));
        CHECK_EASY(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L));
      } else if (cacert) {
        CHECK_EASY(curl_easy_setopt(e, CURLOPT_CAINFO, cacert));
      }
    }
  }

  /* h2c via Upgrade: a connection can only multiplex once its upgrade is
   * done, and libcurl 7.88 misbehaves when hundreds of transfers race the
   * upgrade (extra connections, "partial file" failures). So open the C
   * connections first, one upgraded request each, before the timed run;
   * they then stay pooled in the multi handle and carry every later
   * transfer as HTTP/2 streams. Not counted in the results. */
  uint64_t warm_conns = 0;
  if (!tls && !h2c_mode) {
    uint64_t warm = c < window ? c : window;
    for (uint64_t i = 0; i < warm; ++i) {
      CHECK_EASY(curl_easy_setopt(slots[i].easy, CURLOPT_PIPEWAIT, 0L));
      CHECK_MULTI(curl_multi_add_handle(multi, slots[i].easy));
    }
    uint64_t warm_done = 0;
    while (warm_done < warm) {
      int still;
      CHECK_MULTI(curl_multi_perform(multi, &still));
      CURLMsg *msg;
      int left;
      while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
          continue;
        if (msg->data.result != CURLE_OK) {
          fprintf(stderr, "curl_bench: warm-up request failed: %s\n",
                  curl_easy_strerror(msg->data.result));
          return 1;
        }
        ++warm_done;
        long nc = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &nc);
        warm_conns += (uint64_t)nc;
        CHECK_MULTI(curl_multi_remove_handle(multi, msg->easy_handle));
        CHECK_EASY(curl_easy_setopt(msg->easy_handle, CURLOPT_PIPEWAIT, 1L));
      }
      if (warm_done < warm)
        CHECK_MULTI(curl_multi_poll(multi, NULL, 0, 1000, NULL));
    }
    for (uint64_t i = 0; i < window; ++i) {
      slots[i].bytes = 0;
      if (bufsize) /* after the upgrade: see --buffer-size */
        CHECK_EASY(
            curl_easy_setopt(slots[i].easy, CURLOPT_BUFFERSIZE, bufsize));
    }
  }

  uint64_t started = 0, succeeded = 0, failed = 0, bytes = 0;
  uint64_t conns = warm_conns;
  uint64_t status_2xx = 0, status_other = 0;
  char first_error[256] = "";
  double u0, s0, u1, s1;
  cpu_times(&u0, &s0);
  double t0 = now_s();
  for (uint64_t i = 0; i < window; ++i, ++started)
    CHECK_MULTI(curl_multi_add_handle(multi, slots[i].easy));

  int running = 0;
  while (succeeded + failed < n) {
    CHECK_MULTI(curl_multi_perform(multi, &running));
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      CURL *e = msg->easy_handle;
      CURLcode res = msg->data.result;
      slot_t *s;
      long code = 0, nconn = 0;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
      conns += (uint64_t)nconn;
      if (res == CURLE_OK && code > 0) {
        ++succeeded;
        if (code >= 200 && code < 300)
          ++status_2xx;
        else
          ++status_other;
      } else {
        ++failed;
        if (!first_error[0])
          snprintf(first_error, sizeof first_error, "%s (HTTP %ld)",
                   curl_easy_strerror(res), code);
      }
      bytes += s->bytes;
      s->bytes = 0;
      CHECK_MULTI(curl_multi_remove_handle(multi, e));
      if (started < n) {
        ++started;
        CHECK_MULTI(curl_multi_add_handle(multi, e)); /* same options, reused */
      }
    }
    if (succeeded + failed >= n)
      break;
    if (started == succeeded + failed) {
      /* Nothing in flight but not done: cannot happen. */
      fprintf(stderr, "curl_bench: internal error: no transfers in flight\n");
      return 1;
    }
    double p0 = now_s();
    CHECK_MULTI(curl_multi_poll(multi, NULL, 0, 1000, NULL));
    double waited = now_s() - p0;
    if (waited >= 0.9) /* nothing happened for a second: a stall */
      stall_s += waited;
  }
  double t1 = now_s();
  cpu_times(&u1, &s1);

  for (uint64_t i = 0; i < window; ++i)
    curl_easy_cleanup(slots[i].easy);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  free(slots);

  double wall = t1 - t0, user = u1 - u0, sys = s1 - s0;
  double rps = wall > 0 ? (double)succeeded / wall : 0;
  printf("curl_bench %s\n", url);
  printf("  %lu requests, %lu connections x %lu streams, libcurl %s%s\n", n, c,
         m, curl_version_info(CURLVERSION_NOW)->version,
         tls        ? ""
         : h2c_mode ? ", h2c prior knowledge"
                    : ", h2c via Upgrade");
  printf("requests:     %lu total, %llu succeeded, %llu failed\n", n,
         (unsigned long long)succeeded, (unsigned long long)failed);
  printf("status codes: 2xx: %llu, other: %llu\n",
         (unsigned long long)status_2xx, (unsigned long long)status_other);
  if (first_error[0])
    printf("first error:  %s\n", first_error);
  printf("wall time:    %.3f s\n", wall);
  printf("throughput:   %.1f req/s, %.3f GB/s body\n", rps,
         wall > 0 ? (double)bytes / wall / 1e9 : 0);
  printf("cpu:          user %.3f s, sys %.3f s, %.1f us/request\n", user, sys,
         (user + sys) * 1e6 / (double)n);
  printf("connections:  %llu created\n", (unsigned long long)conns);
  if (stall_s > 0)
    printf("stalls:       %.1f s with no progress at all (a flow-control "
           "deadlock in libcurl, ended by the server's idle timeout)\n",
           stall_s);
  printf("{\"requests\":%lu,\"succeeded\":%llu,\"failed\":%llu,\"wall_s\":%.6f,"
         "\"user_s\":%.6f,\"sys_s\":%.6f,\"rps\":%.1f,\"cpu_us_per_req\":%.3f,"
         "\"body_bytes\":%llu,\"connections\":%llu,\"h2c_mode\":\"%s\","
         "\"status_2xx\":%llu,\"status_other\":%llu,\"stall_s\":%.3f}\n",
         n, (unsigned long long)succeeded, (unsigned long long)failed, wall,
         user, sys, rps, (user + sys) * 1e6 / (double)n,
         (unsigned long long)bytes, (unsigned long long)conns,
         tls        ? "tls"
         : h2c_mode ? "prior-knowledge"
                    : "upgrade",
         (unsigned long long)status_2xx, (unsigned long long)status_other,
         stall_s);
  return failed == 0 ? 0 : 1;
}
