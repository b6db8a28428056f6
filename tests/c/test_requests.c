/* Requests against the loopback test server: responses, bodies, headers,
 * host forms, failures to connect or resolve, statistics, and requests
 * submitted from callbacks. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

#define DEFAULT_BODY "hello from h2pool test server\n"

#define HDR(n, v)                                                              \
  { (n), sizeof(n) - 1, (v), sizeof(v) - 1 }

static void assert_success(const capture *c, int status) {
  assert_int_equal(atomic_load(&c->calls), 1);
  if (c->had_err)
    fail_msg("request failed: %d (%s): %s", c->err, h2pool_strerror(c->err),
             c->message);
  assert_true(c->had_resp);
  assert_int_equal(c->status, status);
  assert_false(c->body_ptr_null);
}

static void assert_failed_with(const capture *c, int code) {
  assert_int_equal(atomic_load(&c->calls), 1);
  assert_true(c->had_err);
  if (c->err != code)
    fail_msg("got error %d (%s: %s), want %d (%s)", c->err,
             h2pool_strerror(c->err), c->message, code, h2pool_strerror(code));
}

/* ---- a simple GET, inspected inside the callback -------------------- */

/* Lookups that must happen while the response is borrowed. */
typedef struct get_checks {
  capture cap;
  const char *lookup_upper; /* h2pool_response_header("X-Test-Header") */
  size_t lookup_upper_len;
  bool lookup_nul_terminated;
  char lookup_value[64];
  const char *lookup_mixed; /* "x-REQUEST-Count" */
  char content_length[32];  /* "Content-Length" */
  size_t content_length_len;
  char count_value[32];
  bool missing_is_null; /* absent header */
  bool len_optional_ok; /* NULL value_len accepted */
  int at_out_of_range;  /* header_at(resp, count, &h) */
  int at_null_out;      /* header_at(resp, 0, NULL) */
  bool names_lower_case;
  bool header_at_matches_lookup;
} get_checks;

static void get_checks_cb(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data) {
  get_checks *g = user_data;
  if (resp && atomic_load(&g->cap.calls) == 0) {
    g->lookup_upper =
        h2pool_response_header(resp, "X-Test-Header", &g->lookup_upper_len);
    if (g->lookup_upper) {
      snprintf(g->lookup_value, sizeof g->lookup_value, "%.*s",
               (int)g->lookup_upper_len, g->lookup_upper);
      g->lookup_nul_terminated = g->lookup_upper[g->lookup_upper_len] == '\0';
    }
    g->lookup_mixed = h2pool_response_header(resp, "x-REQUEST-Count", NULL);
    if (g->lookup_mixed)
      snprintf(g->count_value, sizeof g->count_value, "%s", g->lookup_mixed);
    const char *cl =
        h2pool_response_header(resp, "Content-Length", &g->content_length_len);
    if (cl)
      snprintf(g->content_length, sizeof g->content_length, "%.*s",
               (int)g->content_length_len, cl);
    size_t dummy = 99;
    g->missing_is_null =
        h2pool_response_header(resp, "x-no-such-header", &dummy) == NULL;
    g->len_optional_ok =
        h2pool_response_header(resp, "x-test-header", NULL) != NULL;
    size_t n = h2pool_response_header_count(resp);
    h2pool_header h;
    g->at_out_of_range = h2pool_response_header_at(resp, n, &h);
    g->at_null_out = h2pool_response_header_at(resp, 0, NULL);
    g->names_lower_case = true;
    g->header_at_matches_lookup = false;
    for (size_t i = 0; i < n; i++) {
      if (h2pool_response_header_at(resp, i, &h) != 0) {
        g->names_lower_case = false;
        break;
      }
      for (size_t k = 0; k < h.name_len; k++)
        if (h.name[k] >= 'A' && h.name[k] <= 'Z')
          g->names_lower_case = false;
      if (h.name_len == 13 && memcmp(h.name, "x-test-header", 13) == 0 &&
          g->lookup_upper && h.value_len == g->lookup_upper_len &&
          memcmp(h.value, g->lookup_upper, h.value_len) == 0)
        g->header_at_matches_lookup = true;
    }
  }
  capture_cb(resp, err, &g->cap);
}

static void test_get_returns_status_body_and_headers(void **state) {
  fixture *f = *state;
  char url[256];
  fixture_url(f, url, sizeof url,
              "/simple?size=1234&seed=77&header=x-test-header:Hello-Value");
  get_checks *g = calloc(1, sizeof *g);
  assert_non_null(g);
  capture_init(&g->cap, &f->w);
  uint64_t id = 0;
  int rc = h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, NULL,
                          get_checks_cb, g, &id);
  bool done = rc == 0 && waiter_wait(&f->w, 1, WAIT_MS);
  /* g is heap memory the pool may still reference: finish the pool first. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  assert_int_equal(rc, H2POOL_OK);
  assert_true(done);

  assert_success(&g->cap, 200);
  assert_true(capture_body_is_test_body(&g->cap, 77, 1234));
  assert_int_not_equal(id, 0);
  assert_int_equal(g->cap.req_id, id);
  assert_true(g->cap.stream_id > 0);
  assert_int_equal(g->cap.stream_id % 2, 1); /* client-initiated */
  assert_int_not_equal(g->cap.conn_id, 0);

  assert_non_null(g->lookup_upper);
  assert_string_equal(g->lookup_value, "Hello-Value");
  assert_int_equal(g->lookup_upper_len, strlen("Hello-Value"));
  assert_true(g->lookup_nul_terminated);
  assert_non_null(g->lookup_mixed);
  assert_string_equal(g->count_value, "1");
  assert_string_equal(g->content_length, "1234");
  assert_int_equal(g->content_length_len, 4);
  assert_true(g->missing_is_null);
  assert_true(g->len_optional_ok);
  assert_int_equal(g->at_out_of_range, H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(g->at_null_out, H2POOL_ERR_INVALID_ARGUMENT);
  assert_true(g->names_lower_case);
  assert_true(g->header_at_matches_lookup);
  /* header_at iteration saw the scripted header and no pseudo-headers. */
  assert_string_equal(capture_header(&g->cap, "x-test-header"), "Hello-Value");
  assert_string_equal(capture_header(&g->cap, "x-request-count"), "1");
  for (size_t i = 0; i < g->cap.nheaders; i++)
    assert_int_not_equal(g->cap.headers[i].name[0], ':');
  capture_free(&g->cap);
  free(g);
}

static void test_get_default_body(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/anything");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->body_len, strlen(DEFAULT_BODY));
  assert_memory_equal(c->body, DEFAULT_BODY, c->body_len);
}

static void test_get_empty_body_has_non_null_pointer(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/empty?size=0");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->body_len, 0);
}

static void test_get_large_body_beyond_flow_control_window(void **state) {
  fixture *f = *state;
  char url[128];
  /* Well past the 65,535-byte initial window: needs WINDOW_UPDATEs. */
  fixture_url(f, url, sizeof url, "/big?size=3000001&seed=9");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_true(capture_body_is_test_body(c, 9, 3000001));
}

static void test_error_statuses_are_successes(void **state) {
  fixture *f = *state;
  const int statuses[] = {204, 404, 500, 503};
  for (size_t i = 0; i < 4; i++) {
    char url[128], pq[64];
    snprintf(pq, sizeof pq, "/s?status=%d&size=%d&seed=%zu", statuses[i],
             statuses[i] == 204 ? 0 : 100, i);
    fixture_url(f, url, sizeof url, pq);
    assert_int_equal(get_capture(f->pool, url, NULL, &f->cap[i], NULL), 0);
  }
  assert_true(waiter_wait(&f->w, 4, WAIT_MS));
  for (size_t i = 0; i < 4; i++) {
    assert_success(&f->cap[i], statuses[i]);
    assert_true(
        capture_body_is_test_body(&f->cap[i], i, statuses[i] == 204 ? 0 : 100));
  }
}

static void test_url_fragment_is_dropped(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/frag?size=10&seed=3#size=99&seed=4");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_true(capture_body_is_test_body(c, 3, 10));
}

static void test_request_copies_url(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/copied?size=40&seed=40");
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  /* The caller's buffer is the caller's again once the call returns. */
  fixture_url(f, url, sizeof url, "/scribbled?size=50&seed=50");
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_true(capture_body_is_test_body(c, 40, 40));
}

static void test_url_without_path(void **state) {
  fixture *f = *state;
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, f->base, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->body_len, strlen(DEFAULT_BODY));
}

/* ---- POST ----------------------------------------------------------- */

static void test_post_body_is_echoed_byte_exact(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/echo");
  /* Bigger than the initial flow-control window, every byte value. */
  const size_t n = 200003;
  uint8_t *body = malloc(n);
  assert_non_null(body);
  h2ts_test_body(12345, n, body);
  const h2pool_header hs[] = {HDR("X-Custom-Header", "Some Value"),
                              HDR("content-type", "application/octet-stream")};
  capture *c = &f->cap[0];
  uint64_t id = 0;
  int rc = h2pool_request(f->pool, "POST", url, hs, 2, body, n, NULL,
                          capture_cb, c, &id);
  /* The body is copied: scribbling over ours must not change what is sent. */
  memset(body, 0xAA, n);
  free(body);
  assert_int_equal(rc, H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->req_id, id);
  assert_true(capture_body_is_test_body(c, 12345, n));
  const char *len = capture_header(c, "x-request-body-length");
  assert_non_null(len);
  assert_string_equal(len, "200003");
}

static void test_post_small_body_with_every_byte_value(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/echo");
  uint8_t body[512];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (uint8_t)(255 - i % 256);
  capture *c = &f->cap[0];
  assert_int_equal(h2pool_request(f->pool, "PUT", url, NULL, 0, body,
                                  sizeof body, NULL, capture_cb, c, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->body_len, sizeof body);
  assert_memory_equal(c->body, body, sizeof body);
  assert_string_equal(capture_header(c, "x-request-body-length"), "512");
}

static void test_allowed_headers_are_accepted(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/ok?size=5&seed=5");
  /* Upper case names are lower-cased, not refused; "te: trailers" is the
   * one te value HTTP/2 allows; empty values are valid. */
  const h2pool_header hs[] = {HDR("X-UPPER-Case", "v"), HDR("te", "trailers"),
                              HDR("x-empty", ""),
                              HDR("accept", "*/*; q=0.5, text/plain")};
  capture *c = &f->cap[0];
  assert_int_equal(h2pool_request(f->pool, "GET", url, hs, 4, NULL, 0, NULL,
                                  capture_cb, c, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_true(capture_body_is_test_body(c, 5, 5));
}

/* RFC 9110 compares the te value without regard to case (and HTTP/2 allows
 * only "trailers", RFC 9113 section 8.2.2): any spelling is accepted and the
 * server receives it lower-cased. */
static void test_te_trailers_in_any_case_is_sent_lower_case(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/te?echo_header=te");
  const h2pool_header hs[] = {HDR("te", "Trailers"), HDR("TE", "TRAILERS"),
                              HDR("Te", " trailers\t"), HDR("te", "trailers")};
  enum { N = sizeof hs / sizeof hs[0] };
  for (size_t i = 0; i < N; i++)
    assert_int_equal(h2pool_request(f->pool, "GET", url, &hs[i], 1, NULL, 0,
                                    NULL, capture_cb, &f->cap[i], NULL),
                     H2POOL_OK);
  assert_true(waiter_wait(&f->w, N, WAIT_MS));
  for (size_t i = 0; i < N; i++) {
    assert_success(&f->cap[i], 200);
    const char *echoed = capture_header(&f->cap[i], "x-echo-te");
    if (echoed == NULL || strcmp(echoed, "trailers") != 0)
      fail_msg("te #%zu \"%.*s\": server saw te %s%s%s", i,
               (int)hs[i].value_len, hs[i].value, echoed ? "\"" : "",
               echoed ? echoed : "(none)", echoed ? "\"" : "");
  }
}

static void test_extension_method_is_accepted(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/echo");
  const uint8_t body[] = "patch me";
  capture *c = &f->cap[0];
  assert_int_equal(h2pool_request(f->pool, "PATCH", url, NULL, 0, body, 8, NULL,
                                  capture_cb, c, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(c, 200);
  assert_int_equal(c->body_len, 8);
  assert_memory_equal(c->body, "patch me", 8);
}

/* ---- host forms ----------------------------------------------------- */

static void test_host_forms_localhost_and_ipv4(void **state) {
  fixture *f = *state;
  char a[128], b[128];
  snprintf(a, sizeof a, "http://localhost:%u/l?size=21&seed=1",
           (unsigned)h2ts_port(f->ts));
  snprintf(b, sizeof b, "http://127.0.0.1:%u/i?size=22&seed=2",
           (unsigned)h2ts_port(f->ts));
  assert_int_equal(get_capture(f->pool, a, NULL, &f->cap[0], NULL), 0);
  assert_int_equal(get_capture(f->pool, b, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_success(&f->cap[0], 200);
  assert_success(&f->cap[1], 200);
  assert_true(capture_body_is_test_body(&f->cap[0], 1, 21));
  assert_true(capture_body_is_test_body(&f->cap[1], 2, 22));
}

static void test_different_host_names_use_separate_endpoints(void **state) {
  fixture *f = *state;
  char a[128], b[128];
  snprintf(a, sizeof a, "http://localhost:%u/", (unsigned)h2ts_port(f->ts));
  snprintf(b, sizeof b, "http://127.0.0.1:%u/", (unsigned)h2ts_port(f->ts));
  assert_int_equal(get_capture(f->pool, a, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_int_equal(get_capture(f->pool, b, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_success(&f->cap[0], 200);
  assert_success(&f->cap[1], 200);
  assert_int_not_equal(f->cap[0].conn_id, f->cap[1].conn_id);
  assert_int_equal(h2ts_connections_accepted(f->ts), 2);
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(f->pool, &s), H2POOL_OK);
  assert_int_equal(h2pool_stats_endpoint_count(s), 2);
  h2pool_stats_free(s);
}

/* ---- connect and resolve failures ----------------------------------- */

/* A loopback port that refuses connections: bound but not listening, and
 * left bound until the process exits, so that no server started by a test
 * running in parallel can take it. */
static unsigned closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  return ntohs(sa.sin_port);
}

static void test_connect_refused_fails_with_connect(void **state) {
  fixture *f = *state;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_failed_with(c, H2POOL_ERR_CONNECT);
  assert_false(c->had_resp);
  assert_int_equal(c->err_stream_id, 0);
  assert_int_equal(c->http2_code, -1);
  assert_true(strlen(c->message) > 0);
}

static void test_unresolvable_host_fails_with_resolve(void **state) {
  fixture *f = *state;
  capture *c = &f->cap[0];
  /* RFC 6761: .invalid never resolves, so this sends no traffic. */
  assert_int_equal(
      get_capture(f->pool, "http://no-such-host.invalid/", NULL, c, NULL),
      H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 30000));
  assert_failed_with(c, H2POOL_ERR_RESOLVE);
  assert_false(c->had_resp);
  assert_int_equal(c->err_stream_id, 0);
}

static void test_pool_serves_after_connect_failure(void **state) {
  fixture *f = *state;
  char bad[128], good[128];
  snprintf(bad, sizeof bad, "http://127.0.0.1:%u/", closed_port());
  fixture_url(f, good, sizeof good, "/after?size=33&seed=33");
  assert_int_equal(get_capture(f->pool, bad, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_int_equal(get_capture(f->pool, good, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_failed_with(&f->cap[0], H2POOL_ERR_CONNECT);
  assert_success(&f->cap[1], 200);
  assert_true(capture_body_is_test_body(&f->cap[1], 33, 33));
}

/* ---- statistics ----------------------------------------------------- */

static void test_stats_after_sequential_requests(void **state) {
  fixture *f = *state;
  enum { N = 6 };
  for (size_t i = 0; i < N; i++) {
    char url[128], pq[64];
    snprintf(pq, sizeof pq, "/seq?size=%zu&seed=%zu", 100 + i, i);
    fixture_url(f, url, sizeof url, pq);
    assert_int_equal(get_capture(f->pool, url, NULL, &f->cap[i], NULL), 0);
    assert_true(waiter_wait(&f->w, i + 1, WAIT_MS));
    assert_success(&f->cap[i], 200);
    assert_true(capture_body_is_test_body(&f->cap[i], i, 100 + i));
    /* Sequential requests ride one pooled connection. */
    assert_int_equal(f->cap[i].conn_id, f->cap[0].conn_id);
  }
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(f->pool, &s), H2POOL_OK);
  assert_non_null(s);
  assert_int_equal(h2pool_stats_endpoint_count(s), 1);
  char want[64];
  snprintf(want, sizeof want, "http://127.0.0.1:%u",
           (unsigned)h2ts_port(f->ts));
  assert_non_null(h2pool_stats_endpoint_name(s, 0));
  assert_string_equal(h2pool_stats_endpoint_name(s, 0), want);
  assert_null(h2pool_stats_endpoint_name(s, 1));

  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_REQUESTS_COMPLETED), N);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_REQUESTS_FAILED), 0);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_CREATED), 1);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_REUSED),
                   N - 1);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_OPEN), 1);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_CLOSED), 0);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_STREAMS_ACTIVE), 0);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_REQUESTS_QUEUED), 0);
  assert_int_equal(
      h2pool_stats_value(s, H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION), 1);

  /* The one endpoint carries the same figures. */
  assert_int_equal(
      h2pool_stats_endpoint_value(s, 0, H2POOL_STAT_REQUESTS_COMPLETED), N);
  assert_int_equal(
      h2pool_stats_endpoint_value(s, 0, H2POOL_STAT_CONNECTIONS_CREATED), 1);
  assert_int_equal(
      h2pool_stats_endpoint_value(s, 0, H2POOL_STAT_CONNECTIONS_REUSED), N - 1);
  assert_int_equal(
      h2pool_stats_endpoint_value(s, 1, H2POOL_STAT_REQUESTS_COMPLETED), 0);
  h2pool_stats_free(s);
  assert_int_equal(h2ts_connections_accepted(f->ts), 1);
  assert_int_equal(h2ts_requests(f->ts), N);
}

static void test_stats_count_failed_requests(void **state) {
  fixture *f = *state;
  char bad[128], good[128];
  snprintf(bad, sizeof bad, "http://127.0.0.1:%u/", closed_port());
  fixture_url(f, good, sizeof good, "/");
  assert_int_equal(get_capture(f->pool, bad, NULL, &f->cap[0], NULL), 0);
  assert_int_equal(get_capture(f->pool, good, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_failed_with(&f->cap[0], H2POOL_ERR_CONNECT);
  assert_success(&f->cap[1], 200);
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(f->pool, &s), H2POOL_OK);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_REQUESTS_COMPLETED), 1);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_REQUESTS_FAILED), 1);
  assert_int_equal(h2pool_stats_endpoint_count(s), 2);
  h2pool_stats_free(s);
}

/* ---- configured limits --------------------------------------------- */

static h2pool *pool_with(h2pool_config *cfg) {
  h2pool *p = NULL;
  int rc = h2pool_create(cfg, &p);
  h2pool_config_free(cfg);
  assert_int_equal(rc, H2POOL_OK);
  assert_non_null(p);
  return p;
}

static void test_response_body_limit(void **state) {
  fixture *f = *state;
  h2pool_config *cfg = make_config(0, 0);
  assert_int_equal(h2pool_config_set_max_response_body_bytes(cfg, 1000), 0);
  f->pool = pool_with(cfg);
  char at[128], over[128];
  fixture_url(f, at, sizeof at, "/at?size=1000&seed=10");
  fixture_url(f, over, sizeof over, "/over?size=1001&seed=11");
  assert_int_equal(get_capture(f->pool, at, NULL, &f->cap[0], NULL), 0);
  assert_int_equal(get_capture(f->pool, over, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_success(&f->cap[0], 200);
  assert_true(capture_body_is_test_body(&f->cap[0], 10, 1000));
  assert_failed_with(&f->cap[1], H2POOL_ERR_RESPONSE_TOO_LARGE);
}

static void test_local_stream_cap_is_respected(void **state) {
  fixture *f = *state;
  enum { N = 10, CAP = 2 };
  h2pool_config *cfg = make_config(1, 0);
  assert_int_equal(h2pool_config_set_max_concurrent_streams(cfg, CAP), 0);
  f->pool = pool_with(cfg);
  for (size_t i = 0; i < N; i++) {
    char url[128], pq[64];
    snprintf(pq, sizeof pq, "/cap?delay_ms=100&size=%zu&seed=%zu", i + 1, i);
    fixture_url(f, url, sizeof url, pq);
    assert_int_equal(get_capture(f->pool, url, NULL, &f->cap[i], NULL), 0);
  }
  assert_true(waiter_wait(&f->w, N, WAIT_MS));
  for (size_t i = 0; i < N; i++) {
    assert_success(&f->cap[i], 200);
    assert_true(capture_body_is_test_body(&f->cap[i], i, i + 1));
  }
  /* The server allows 100; the pool's own cap of 2 is what limits. */
  assert_int_equal(h2ts_connections_accepted(f->ts), 1);
  assert_int_equal(h2ts_peak_concurrent_streams(f->ts), CAP);
}

struct open_conns_arg {
  h2pool *pool;
  uint64_t want_open;
};

static bool open_connections_are(void *arg) {
  struct open_conns_arg *a = arg;
  h2pool_stats *s = NULL;
  if (h2pool_stats_get(a->pool, &s) != 0)
    return false;
  bool ok = h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_OPEN) == a->want_open;
  h2pool_stats_free(s);
  return ok;
}

static void test_idle_connection_is_closed(void **state) {
  fixture *f = *state;
  h2pool_config *cfg = make_config(0, 0);
  assert_int_equal(h2pool_config_set_idle_timeout_ms(cfg, 100), 0);
  f->pool = pool_with(cfg);
  char url[128];
  fixture_url(f, url, sizeof url, "/idle?size=8&seed=8");
  assert_int_equal(get_capture(f->pool, url, NULL, &f->cap[0], NULL), 0);
  assert_true(waiter_wait(&f->w, 1, WAIT_MS));
  assert_success(&f->cap[0], 200);
  /* The stats show the state that proves the idle close happened. */
  struct open_conns_arg a = {f->pool, 0};
  assert_true(poll_until(open_connections_are, &a, 5000));
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(f->pool, &s), 0);
  assert_int_equal(h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_CLOSED), 1);
  h2pool_stats_free(s);
  /* The next request opens a new connection and succeeds. */
  assert_int_equal(get_capture(f->pool, url, NULL, &f->cap[1], NULL), 0);
  assert_true(waiter_wait(&f->w, 2, WAIT_MS));
  assert_success(&f->cap[1], 200);
  assert_true(capture_body_is_test_body(&f->cap[1], 8, 8));
  assert_int_not_equal(f->cap[1].conn_id, f->cap[0].conn_id);
  assert_int_equal(h2ts_connections_accepted(f->ts), 2);
}

/* ---- logging -------------------------------------------------------- */

typedef struct log_record {
  pthread_mutex_t mu;
  size_t messages;
  int min_level, max_level;
  bool bad_text; /* NULL, or ends in a newline */
} log_record;

static void log_cb(int level, const char *msg, void *user_data) {
  log_record *r = user_data;
  pthread_mutex_lock(&r->mu);
  r->messages++;
  if (level < r->min_level)
    r->min_level = level;
  if (level > r->max_level)
    r->max_level = level;
  size_t n = msg ? strlen(msg) : 0;
  if (!msg || (n && msg[n - 1] == '\n'))
    r->bad_text = true;
  pthread_mutex_unlock(&r->mu);
}

/* Runs a success and a connect failure with logging at `level`, using
 * captures k and k+1. */
static void run_logged(fixture *f, log_record *r, int level, size_t k) {
  pthread_mutex_init(&r->mu, NULL);
  r->min_level = 100;
  r->max_level = -100;
  h2pool_config *cfg = make_config(0, 0);
  assert_int_equal(h2pool_config_set_log(cfg, log_cb, level, r), 0);
  f->pool = pool_with(cfg);
  char good[128], bad[128];
  fixture_url(f, good, sizeof good, "/logged");
  snprintf(bad, sizeof bad, "http://127.0.0.1:%u/", closed_port());
  int rc1 = get_capture(f->pool, good, NULL, &f->cap[k], NULL);
  int rc2 = get_capture(f->pool, bad, NULL, &f->cap[k + 1], NULL);
  bool done = rc1 == 0 && rc2 == 0 && waiter_wait(&f->w, k + 2, WAIT_MS);
  /* r is the caller's: no log call may come after this returns. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  pthread_mutex_destroy(&r->mu);
  assert_int_equal(rc1, 0);
  assert_int_equal(rc2, 0);
  assert_true(done);
  assert_success(&f->cap[k], 200);
  assert_failed_with(&f->cap[k + 1], H2POOL_ERR_CONNECT);
}

static void test_log_callback_receives_messages(void **state) {
  fixture *f = *state;
  log_record r = {0};
  run_logged(f, &r, H2POOL_LOG_DEBUG, 0);
  assert_true(r.messages > 0);
  assert_true(r.min_level >= H2POOL_LOG_ERROR);
  assert_true(r.max_level <= H2POOL_LOG_DEBUG);
  assert_false(r.bad_text);
}

static void test_log_level_filters_messages(void **state) {
  fixture *f = *state;
  /* The same traffic logs something more verbose than WARN at DEBUG... */
  log_record all = {0};
  run_logged(f, &all, H2POOL_LOG_DEBUG, 0);
  assert_true(all.max_level > H2POOL_LOG_WARN);
  /* ...and nothing more verbose than WARN at WARN. */
  log_record warn = {0};
  run_logged(f, &warn, H2POOL_LOG_WARN, 2);
  assert_true(warn.messages < all.messages);
  if (warn.messages)
    assert_true(warn.max_level <= H2POOL_LOG_WARN);
  /* ...and nothing at all at NONE. */
  log_record none = {0};
  run_logged(f, &none, H2POOL_LOG_NONE, 4);
  assert_int_equal(none.messages, 0);
}

/* ---- refusals are logged on the loop thread ------------------------- */

/* Every message mentioning a refusal, and whether any came on the thread
 * that submitted the refused request. */
typedef struct refusal_log {
  pthread_t submitter;
  atomic_int refusal_messages;
  atomic_int on_submitter;
  waiter w;
  char first[256];
} refusal_log;

static void refusal_log_cb(int level, const char *msg, void *user_data) {
  (void)level;
  refusal_log *r = user_data;
  if (strstr(msg, "refused") == NULL)
    return;
  if (pthread_equal(pthread_self(), r->submitter))
    atomic_fetch_add(&r->on_submitter, 1);
  if (atomic_fetch_add(&r->refusal_messages, 1) == 0)
    snprintf(r->first, sizeof r->first, "%s", msg);
  waiter_signal(&r->w);
}

static void test_refusal_is_logged_on_the_loop_thread(void **state) {
  fixture *f = *state;
  refusal_log r;
  memset(&r, 0, sizeof r);
  r.submitter = pthread_self();
  atomic_init(&r.refusal_messages, 0);
  atomic_init(&r.on_submitter, 0);
  waiter_init(&r.w);
  h2pool_config *cfg = make_config(0, 0);
  assert_int_equal(
      h2pool_config_set_log(cfg, refusal_log_cb, H2POOL_LOG_DEBUG, &r), 0);
  f->pool = pool_with(cfg);
  char url[128];
  fixture_url(f, url, sizeof url, "/refused");
  const h2pool_header bad = HDR("connection", "close");
  int rc_header = h2pool_request(f->pool, "GET", url, &bad, 1, NULL, 0, NULL,
                                 capture_cb, &f->cap[0], NULL);
  int rc_method = h2pool_request(f->pool, "GET /", url, NULL, 0, NULL, 0, NULL,
                                 capture_cb, &f->cap[1], NULL);
  int rc_url = h2pool_request(f->pool, "GET", "http://", NULL, 0, NULL, 0, NULL,
                              capture_cb, &f->cap[2], NULL);
  /* The reason still reaches the log, from the loop thread. */
  bool logged = waiter_wait(&r.w, 1, WAIT_MS);
  /* r is on this stack: no log call may come after this returns. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  waiter_destroy(&r.w);
  assert_int_equal(rc_header, H2POOL_ERR_INVALID_HEADER);
  assert_int_equal(rc_method, H2POOL_ERR_INVALID_METHOD);
  assert_int_equal(rc_url, H2POOL_ERR_INVALID_URL);
  assert_true(logged);
  assert_non_null(strstr(r.first, "connection"));
  assert_int_equal(atomic_load(&r.on_submitter), 0);
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(atomic_load(&f->cap[i].calls), 0);
}

/* ---- requests submitted from callbacks ------------------------------ */

enum { CHAIN_LEN = 10 };

typedef struct chain chain;

/* What each link's callback gets: the chain and its own position. */
typedef struct chain_link {
  chain *ch;
  int index;
} chain_link;

struct chain {
  h2pool *pool;
  char base[64];
  waiter w;
  int submit_rc[CHAIN_LEN];
  chain_link links[CHAIN_LEN];
  capture caps[CHAIN_LEN];
};

static int chain_submit(chain *ch, int i);

static void chain_link_cb(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data) {
  chain_link *l = user_data;
  chain *ch = l->ch;
  /* Submit the next link from the loop thread, before signalling. */
  int next = l->index + 1;
  if (next < CHAIN_LEN) {
    ch->submit_rc[next] = chain_submit(ch, next);
    if (ch->submit_rc[next] != 0) {
      /* Refused: no callback will come, so unblock the waiter for them. */
      for (int k = next; k < CHAIN_LEN; k++)
        waiter_signal(&ch->w);
    }
  }
  capture_cb(resp, err, &ch->caps[l->index]);
}

static int chain_submit(chain *ch, int i) {
  char url[160];
  snprintf(url, sizeof url, "%s/chain?size=%d&seed=%d", ch->base, 50 + i,
           1000 + i);
  ch->links[i].ch = ch;
  ch->links[i].index = i;
  return h2pool_request(ch->pool, "GET", url, NULL, 0, NULL, 0, NULL,
                        chain_link_cb, &ch->links[i], NULL);
}

static void test_callback_may_submit_requests(void **state) {
  fixture *f = *state;
  chain *ch = calloc(1, sizeof *ch);
  assert_non_null(ch);
  ch->pool = f->pool;
  snprintf(ch->base, sizeof ch->base, "%s", f->base);
  waiter_init(&ch->w);
  for (int i = 0; i < CHAIN_LEN; i++)
    capture_init(&ch->caps[i], &ch->w);
  ch->submit_rc[0] = chain_submit(ch, 0);
  bool done = ch->submit_rc[0] == 0 && waiter_wait(&ch->w, CHAIN_LEN, 30000);
  /* The chain lives on the heap; stop the pool before judging. */
  h2pool_destroy(f->pool);
  f->pool = NULL;
  assert_true(done);
  for (int i = 0; i < CHAIN_LEN; i++) {
    assert_int_equal(ch->submit_rc[i], H2POOL_OK);
    assert_success(&ch->caps[i], 200);
    assert_true(capture_body_is_test_body(&ch->caps[i], 1000 + i, 50 + i));
  }
  assert_int_equal(h2ts_requests(f->ts), CHAIN_LEN);
  for (int i = 0; i < CHAIN_LEN; i++)
    capture_free(&ch->caps[i]);
  waiter_destroy(&ch->w);
  free(ch);
}

int main(void) {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define TN(fn)                                                                 \
  cmocka_unit_test_setup_teardown(fn, fixture_setup_no_pool, fixture_teardown)
  const struct CMUnitTest tests[] = {
      T(test_get_returns_status_body_and_headers),
      T(test_get_default_body),
      T(test_get_empty_body_has_non_null_pointer),
      T(test_get_large_body_beyond_flow_control_window),
      T(test_error_statuses_are_successes),
      T(test_url_fragment_is_dropped),
      T(test_url_without_path),
      T(test_request_copies_url),
      T(test_post_body_is_echoed_byte_exact),
      T(test_post_small_body_with_every_byte_value),
      T(test_allowed_headers_are_accepted),
      T(test_te_trailers_in_any_case_is_sent_lower_case),
      T(test_extension_method_is_accepted),
      T(test_host_forms_localhost_and_ipv4),
      T(test_different_host_names_use_separate_endpoints),
      T(test_connect_refused_fails_with_connect),
      T(test_unresolvable_host_fails_with_resolve),
      T(test_pool_serves_after_connect_failure),
      T(test_stats_after_sequential_requests),
      T(test_stats_count_failed_requests),
      TN(test_response_body_limit),
      TN(test_local_stream_cap_is_respected),
      TN(test_idle_connection_is_closed),
      TN(test_log_callback_receives_messages),
      TN(test_log_level_filters_messages),
      TN(test_refusal_is_logged_on_the_loop_thread),
      T(test_callback_may_submit_requests),
  };
#undef T
#undef TN
  return cmocka_run_group_tests(tests, NULL, NULL);
}
