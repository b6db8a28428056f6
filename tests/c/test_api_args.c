/* The public C API's synchronous contract: version, error strings, argument
 * validation, and requests refused synchronously without a callback. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- version and strerror ------------------------------------------- */

static void test_version_runtime_matches_header(void **state) {
  (void)state;
  const char *s = NULL;
  uint32_t v = h2pool_version(&s);
  assert_int_equal(v, H2POOL_VERSION_NUM);
  assert_int_equal(v >> 16, H2POOL_VERSION_MAJOR);
  assert_int_equal((v >> 8) & 0xff, H2POOL_VERSION_MINOR);
  assert_int_equal(v & 0xff, H2POOL_VERSION_PATCH);
  assert_non_null(s);
  assert_string_equal(s, H2POOL_VERSION_STRING);
  /* The string macro is MAJOR.MINOR.PATCH of the numeric macros. */
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", H2POOL_VERSION_MAJOR,
           H2POOL_VERSION_MINOR, H2POOL_VERSION_PATCH);
  assert_string_equal(H2POOL_VERSION_STRING, want);
  /* NULL out-string is allowed. */
  assert_int_equal(h2pool_version(NULL), H2POOL_VERSION_NUM);
}

static void test_strerror_every_code_distinct_and_non_empty(void **state) {
  (void)state;
  const int n = -H2POOL_ERR_PROXY_PROTOCOL + 1; /* the newest code */
  const char *msgs[64];
  assert_true(n <= (int)ARRAY_LEN(msgs));
  for (int i = 0; i < n; i++) {
    msgs[i] = h2pool_strerror(-i);
    assert_non_null(msgs[i]);
    assert_true(strlen(msgs[i]) > 0);
    for (int j = 0; j < i; j++) {
      if (strcmp(msgs[i], msgs[j]) == 0)
        fail_msg("codes %d and %d share the message \"%s\"", -i, -j, msgs[i]);
    }
    assert_string_not_equal(msgs[i], "unknown error");
  }
  /* Static strings: the same pointer content on every call. */
  assert_string_equal(h2pool_strerror(H2POOL_ERR_TIMEOUT), msgs[13]);
}

static void test_strerror_unknown_codes_not_null(void **state) {
  (void)state;
  const int unknown[] = {
      1, 42, H2POOL_ERR_PROXY_PROTOCOL - 1, -1000, -2147483647 - 1, 2147483647};
  for (size_t i = 0; i < ARRAY_LEN(unknown); i++) {
    const char *m = h2pool_strerror(unknown[i]);
    assert_non_null(m);
    assert_string_equal(m, "unknown error");
  }
}

/* ---- configuration -------------------------------------------------- */

static void test_config_new_rejects_null_out(void **state) {
  (void)state;
  assert_int_equal(h2pool_config_new(NULL), H2POOL_ERR_INVALID_ARGUMENT);
}

static void test_config_setters_reject_null_config(void **state) {
  (void)state;
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(NULL, 1), E);
  assert_int_equal(h2pool_config_set_loop_threads(NULL, 1), E);
  assert_int_equal(h2pool_config_set_max_concurrent_streams(NULL, 1), E);
  assert_int_equal(h2pool_config_set_max_pending_requests(NULL, 1), E);
  assert_int_equal(h2pool_config_set_connect_timeout_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_settings_timeout_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_request_timeout_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_idle_timeout_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_max_lifetime_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_max_response_body_bytes(NULL, 1), E);
  assert_int_equal(h2pool_config_set_flow_control_windows(NULL, 1, 65535), E);
  assert_int_equal(h2pool_config_set_log(NULL, NULL, H2POOL_LOG_NONE, NULL), E);
  assert_int_equal(h2pool_config_set_reconnect_backoff(NULL, 1, 1), E);
  assert_int_equal(h2pool_config_set_retry_backoff(NULL, 1, 1), E);
  assert_int_equal(h2pool_config_set_retry_budget(NULL, 1, 1), E);
  assert_int_equal(h2pool_config_set_resolve_timeout_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_dns_servers(NULL, "127.0.0.1"), E);
  assert_int_equal(h2pool_config_add_resolve(NULL, "a:1:127.0.0.1"), E);
  assert_int_equal(h2pool_config_add_connect_to(NULL, "a:1:b:2"), E);
  assert_int_equal(h2pool_config_set_unix_socket(NULL, "/x"), E);
  assert_int_equal(h2pool_config_set_abstract_unix_socket(NULL, "x"), E);
  assert_int_equal(h2pool_config_set_local_address(NULL, "127.0.0.1"), E);
  assert_int_equal(h2pool_config_set_local_port_range(NULL, 1, 2), E);
  assert_int_equal(h2pool_config_set_interface(NULL, "lo"), E);
  assert_int_equal(h2pool_config_set_tcp_keepalive(NULL, 1, 1, 1), E);
  assert_int_equal(h2pool_config_set_happy_eyeballs_delay_ms(NULL, 1), E);
  assert_int_equal(h2pool_config_set_stale_check(NULL, 1, 1), E);
}

/* The network options: curl's syntax, checked when set. */
static void test_network_setters_validate(void **state) {
  (void)state;
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_int_equal(
      h2pool_config_set_dns_servers(cfg, "127.0.0.1:5353,[::1]:53"), 0);
  assert_int_equal(h2pool_config_set_dns_servers(cfg, NULL), 0);
  assert_int_equal(h2pool_config_set_dns_servers(cfg, "dns.example"), E);
  assert_int_equal(h2pool_config_set_dns_servers(cfg, "127.0.0.1:99999"), E);
  assert_int_equal(h2pool_config_add_resolve(cfg, "a.test:443:127.0.0.1,::1"),
                   0);
  assert_int_equal(h2pool_config_add_resolve(cfg, "a.test:443"), E);
  assert_int_equal(h2pool_config_add_resolve(cfg, "a.test:443:host"), E);
  assert_int_equal(h2pool_config_add_resolve(cfg, NULL), 0);
  assert_int_equal(h2pool_config_add_connect_to(cfg, "::b.test:"), 0);
  assert_int_equal(h2pool_config_add_connect_to(cfg, "a.test:443:b.test"), E);
  assert_int_equal(h2pool_config_add_connect_to(cfg, "a:b:c:d"), E);
  assert_int_equal(h2pool_config_add_connect_to(cfg, NULL), 0);
  char long_path[200];
  memset(long_path, 'x', sizeof long_path - 1);
  long_path[sizeof long_path - 1] = '\0';
  assert_int_equal(h2pool_config_set_unix_socket(cfg, long_path), E);
  assert_int_equal(h2pool_config_set_abstract_unix_socket(cfg, long_path), E);
  assert_int_equal(h2pool_config_set_unix_socket(cfg, "/run/x.sock"), 0);
  assert_int_equal(h2pool_config_set_unix_socket(cfg, NULL), 0);
  assert_int_equal(h2pool_config_set_local_address(cfg, "eth0"), E);
  assert_int_equal(h2pool_config_set_local_address(cfg, "[::1]"), 0);
  assert_int_equal(h2pool_config_set_local_address(cfg, NULL), 0);
  assert_int_equal(h2pool_config_set_local_port_range(cfg, 0, 10), E);
  assert_int_equal(h2pool_config_set_local_port_range(cfg, 20, 10), E);
  assert_int_equal(h2pool_config_set_local_port_range(cfg, 1, 65536), E);
  assert_int_equal(h2pool_config_set_local_port_range(cfg, 1, 65535), 0);
  assert_int_equal(h2pool_config_set_local_port_range(cfg, 0, 0), 0);
  assert_int_equal(h2pool_config_set_interface(cfg, "0123456789abcdef"), E);
  assert_int_equal(h2pool_config_set_interface(cfg, "lo"), 0);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 32768, 1, 1), E);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 1, 32768, 1), E);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 1, 1, 128), E);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 0, 1, 0), E);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 32767, 32767, 127), 0);
  assert_int_equal(h2pool_config_set_tcp_keepalive(cfg, 0, 0, 0), 0);
  assert_int_equal(h2pool_config_set_happy_eyeballs_delay_ms(cfg, 60001), E);
  assert_int_equal(h2pool_config_set_happy_eyeballs_delay_ms(cfg, 0), 0);
  h2pool_config_free(cfg);
}

static void test_config_setters_reject_out_of_range(void **state) {
  (void)state;
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_non_null(cfg);
  /* "1 to 10000" */
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(cfg, 0), E);
  assert_int_equal(h2pool_config_set_loop_threads(cfg, 0), E);
  assert_int_equal(h2pool_config_set_loop_threads(cfg, 65), E);
  assert_int_equal(h2pool_config_set_loop_threads(cfg, UINT32_MAX), E);
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(cfg, 10001),
                   E);
  assert_int_equal(
      h2pool_config_set_max_connections_per_endpoint(cfg, UINT32_MAX), E);
  /* "at least 1" */
  assert_int_equal(h2pool_config_set_max_pending_requests(cfg, 0), E);
  assert_int_equal(h2pool_config_set_connect_timeout_ms(cfg, 0), E);
  assert_int_equal(h2pool_config_set_settings_timeout_ms(cfg, 0), E);
  assert_int_equal(h2pool_config_set_max_response_body_bytes(cfg, 0), E);
  /* Windows: stream 1 to 2^31-1, connection 65535 to 2^31-1. */
  assert_int_equal(h2pool_config_set_flow_control_windows(cfg, 0, 65535), E);
  assert_int_equal(
      h2pool_config_set_flow_control_windows(cfg, 0x80000000u, 65535), E);
  assert_int_equal(h2pool_config_set_flow_control_windows(cfg, 1, 65534), E);
  assert_int_equal(h2pool_config_set_flow_control_windows(cfg, 1, 0x80000000u),
                   E);
  /* Backoffs: initial at least 1, max at least initial. */
  assert_int_equal(h2pool_config_set_reconnect_backoff(cfg, 0, 10), E);
  assert_int_equal(h2pool_config_set_reconnect_backoff(cfg, 10, 9), E);
  assert_int_equal(h2pool_config_set_retry_backoff(cfg, 0, 10), E);
  assert_int_equal(h2pool_config_set_retry_backoff(cfg, 10, 9), E);
  /* Budget: burst at most 100000, percent at most 10000. */
  assert_int_equal(h2pool_config_set_retry_budget(cfg, 100001, 100), E);
  assert_int_equal(h2pool_config_set_retry_budget(cfg, 10, 10001), E);
  assert_int_equal(h2pool_config_set_resolve_timeout_ms(cfg, 0), E);
  /* Stale check: a deadline of at least 1 ms, also when off. */
  assert_int_equal(h2pool_config_set_stale_check(cfg, 10000, 0), E);
  assert_int_equal(h2pool_config_set_stale_check(cfg, 0, 0), E);
  /* Not an h2pool_log_level. */
  assert_int_equal(h2pool_config_set_log(cfg, NULL, -1, NULL), E);
  assert_int_equal(h2pool_config_set_log(cfg, NULL, H2POOL_LOG_DEBUG + 1, NULL),
                   E);
  h2pool_config_free(cfg);
}

static void test_config_setters_accept_boundaries(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_loop_threads(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_loop_threads(cfg, 64), 0);
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(cfg, 10000),
                   0);
  /* 0 is documented as meaningful for these. */
  assert_int_equal(h2pool_config_set_max_concurrent_streams(cfg, 0), 0);
  assert_int_equal(h2pool_config_set_request_timeout_ms(cfg, 0), 0);
  assert_int_equal(h2pool_config_set_idle_timeout_ms(cfg, 0), 0);
  assert_int_equal(h2pool_config_set_max_lifetime_ms(cfg, 0), 0);
  assert_int_equal(h2pool_config_set_max_pending_requests(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_connect_timeout_ms(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_settings_timeout_ms(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_max_response_body_bytes(cfg, 1), 0);
  assert_int_equal(
      h2pool_config_set_max_response_body_bytes(cfg, UINT64_MAX / 2), 0);
  assert_int_equal(h2pool_config_set_flow_control_windows(cfg, 1, 65535), 0);
  assert_int_equal(
      h2pool_config_set_flow_control_windows(cfg, 0x7fffffff, 0x7fffffff), 0);
  assert_int_equal(h2pool_config_set_log(cfg, NULL, H2POOL_LOG_DEBUG, NULL), 0);
  assert_int_equal(h2pool_config_set_log(cfg, NULL, H2POOL_LOG_NONE, NULL), 0);
  assert_int_equal(h2pool_config_set_reconnect_backoff(cfg, 1, 1), 0);
  assert_int_equal(h2pool_config_set_reconnect_backoff(cfg, 100, 10000), 0);
  assert_int_equal(h2pool_config_set_retry_backoff(cfg, 1, 1), 0);
  assert_int_equal(h2pool_config_set_retry_budget(cfg, 0, 0), 0);
  assert_int_equal(h2pool_config_set_retry_budget(cfg, 100000, 10000), 0);
  assert_int_equal(h2pool_config_set_resolve_timeout_ms(cfg, 1), 0);
  assert_int_equal(h2pool_config_set_stale_check(cfg, 0, 1), 0); /* off */
  assert_int_equal(h2pool_config_set_stale_check(cfg, 1, 1), 0);
  assert_int_equal(h2pool_config_set_stale_check(cfg, UINT32_MAX, UINT32_MAX),
                   0);
  /* One config, many pools; free it while they live. */
  h2pool *a = NULL, *b = NULL;
  assert_int_equal(h2pool_create(cfg, &a), H2POOL_OK);
  assert_int_equal(h2pool_create(cfg, &b), H2POOL_OK);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  h2pool_config_free(cfg);
  h2pool_destroy(a);
  h2pool_destroy(b);
}

static void test_destructors_accept_null(void **state) {
  (void)state;
  h2pool_config_free(NULL);
  h2pool_request_opts_free(NULL);
  h2pool_stats_free(NULL);
  h2pool_destroy(NULL);
}

/* ---- pool, options, cancel, stats ----------------------------------- */

static void test_create_rejects_null_out(void **state) {
  (void)state;
  assert_int_equal(h2pool_create(NULL, NULL), H2POOL_ERR_INVALID_ARGUMENT);
}

static void test_create_with_null_config_uses_defaults(void **state) {
  (void)state;
  h2pool *p = NULL;
  assert_int_equal(h2pool_create(NULL, &p), H2POOL_OK);
  assert_non_null(p);
  h2pool_destroy(p);
}

static void test_request_opts_reject_null(void **state) {
  (void)state;
  assert_int_equal(h2pool_request_opts_new(NULL), H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(NULL, 100),
                   H2POOL_ERR_INVALID_ARGUMENT);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_non_null(o);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(o, 0), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_timeout_ms(o, 100), H2POOL_OK);
  h2pool_request_opts_free(o);
}

static void test_cancel_rejects_null_pool_and_id_zero(void **state) {
  fixture *f = *state;
  assert_int_equal(h2pool_cancel(NULL, 1), H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_cancel(f->pool, 0), H2POOL_ERR_INVALID_ARGUMENT);
  /* An id that was never issued is still just "queued". */
  assert_int_equal(h2pool_cancel(f->pool, UINT64_MAX), H2POOL_OK);
}

static void test_priority_opts_reject_out_of_range(void **state) {
  (void)state;
  assert_int_equal(h2pool_request_opts_set_priority(NULL, 3, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_priority(o, -1, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_opts_set_priority(o, 8, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_opts_set_priority(o, 3, 2),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_opts_set_priority(o, 3, -1),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_opts_set_priority(o, 0, 1), H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_priority(o, 7, 0), H2POOL_OK);
  h2pool_request_opts_free(o);
}

static void test_set_priority_matches_cancel_contract(void **state) {
  fixture *f = *state;
  assert_int_equal(h2pool_request_set_priority(NULL, 1, 0, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_set_priority(f->pool, 0, 0, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_set_priority(f->pool, 1, 8, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_set_priority(f->pool, 1, -1, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_request_set_priority(f->pool, 1, 3, 2),
                   H2POOL_ERR_INVALID_ARGUMENT);
  /* As h2pool_cancel(): an id never issued (or long completed) is queued
   * and then does nothing. */
  assert_int_equal(h2pool_request_set_priority(f->pool, UINT64_MAX, 0, 1),
                   H2POOL_OK);
}

static void test_stats_reject_null_arguments(void **state) {
  fixture *f = *state;
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(NULL, &s), H2POOL_ERR_INVALID_ARGUMENT);
  assert_null(s);
  assert_int_equal(h2pool_stats_get(f->pool, NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_stats_value(NULL, H2POOL_STAT_REQUESTS_COMPLETED), 0);
  assert_int_equal(h2pool_stats_endpoint_count(NULL), 0);
  assert_null(h2pool_stats_endpoint_name(NULL, 0));
  assert_int_equal(
      h2pool_stats_endpoint_value(NULL, 0, H2POOL_STAT_REQUESTS_COMPLETED), 0);
  assert_int_equal(h2pool_stats_endpoint_state(NULL, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);

  /* A fresh pool: no endpoints, out-of-range reads are 0/NULL. */
  assert_int_equal(h2pool_stats_get(f->pool, &s), H2POOL_OK);
  assert_non_null(s);
  assert_int_equal(h2pool_stats_endpoint_count(s), 0);
  assert_null(h2pool_stats_endpoint_name(s, 0));
  assert_int_equal(h2pool_stats_endpoint_state(s, 0),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      h2pool_stats_endpoint_value(s, 0, H2POOL_STAT_CONNECTIONS_CREATED), 0);
  assert_int_equal(h2pool_stats_value(s, (h2pool_stat)999), 0);
  assert_int_equal(h2pool_stats_value(s, (h2pool_stat)-1), 0);
  for (int k = H2POOL_STAT_CONNECTIONS_OPEN;
       k <= H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION; k++)
    assert_int_equal(h2pool_stats_value(s, (h2pool_stat)k), 0);
  h2pool_stats_free(s);
}

static void test_error_and_response_accessors_accept_null(void **state) {
  (void)state;
  assert_int_equal(h2pool_error_code(NULL), H2POOL_ERR_INVALID_ARGUMENT);
  const char *m = h2pool_error_message(NULL);
  assert_non_null(m);
  assert_string_equal(m, "");
  /* Undocumented for NULL beyond "no crash". */
  (void)h2pool_error_http2_code(NULL);
  (void)h2pool_error_stream_id(NULL);
  (void)h2pool_error_goaway_last_stream_id(NULL);

  assert_int_equal(h2pool_response_status(NULL), 0);
  h2pool_header h;
  assert_int_equal(h2pool_response_header_at(NULL, 0, &h),
                   H2POOL_ERR_INVALID_ARGUMENT);
  size_t len = 12345;
  assert_null(h2pool_response_header(NULL, "content-length", &len));
  assert_null(h2pool_response_header(NULL, "content-length", NULL));
  (void)h2pool_response_header_count(NULL);
  (void)h2pool_response_body(NULL, &len);
  (void)h2pool_response_body(NULL, NULL);
  (void)h2pool_response_stream_id(NULL);
  (void)h2pool_response_connection_id(NULL);
  assert_int_equal(h2pool_response_timing_us(NULL, H2POOL_TIMING_TOTAL), -1);
  assert_int_equal(h2pool_error_timing_us(NULL, H2POOL_TIMING_QUEUED), -1);
  assert_int_equal(h2pool_response_connection_reused(NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_error_connection_reused(NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_string_equal(h2pool_response_remote_ip(NULL), "");
  assert_string_equal(h2pool_error_remote_ip(NULL), "");
  assert_int_equal(h2pool_response_remote_port(NULL), 0);
  assert_int_equal(h2pool_error_remote_port(NULL), 0);
  assert_int_equal(h2pool_response_num_connects(NULL), 0);
  assert_int_equal(h2pool_error_num_connects(NULL), 0);
  (void)h2pool_response_request_id(NULL);
  assert_int_equal(h2pool_response_protocol(NULL), H2POOL_PROTOCOL_UNKNOWN);
  assert_string_equal(h2pool_response_reason(NULL), "");
}

static void test_proxy_settings(void **state) {
  (void)state;
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_int_equal(h2pool_config_set_proxy(NULL, "http://p:1"), E);
  assert_int_equal(h2pool_config_set_proxy_credentials(NULL, "u", "p"), E);
  assert_int_equal(h2pool_config_set_noproxy(NULL, "*"), E);
  assert_int_equal(h2pool_config_use_proxy_env(NULL, 1), E);
  /* Malformed URLs and other schemes. */
  const char *bad[] = {"ftp://p:21",      "socks4://p:1080",  "http://p:0",
                       "http://p:65536",  "http://p:x",       "http://",
                       "http://p:1/path", "http://[::1:8080", "http://a b:1",
                       "http://u%zz@p:1", "http://[p]:1"};
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    if (h2pool_config_set_proxy(cfg, bad[i]) != E)
      fail_msg("h2pool_config_set_proxy accepted \"%s\"", bad[i]);
  }
  const char *good[] = {"http://proxy.example:3128",
                        "HTTPS://u:p@proxy.example",
                        "socks5://127.0.0.1:1080",
                        "socks5h://[::1]:1080/",
                        "proxy.example:8080",
                        "",
                        NULL};
  for (size_t i = 0; i < ARRAY_LEN(good); i++) {
    if (h2pool_config_set_proxy(cfg, good[i]) != H2POOL_OK)
      fail_msg("h2pool_config_set_proxy refused \"%s\"",
               good[i] ? good[i] : "(null)");
  }
  /* RFC 7617: no colon in a Basic user-id; a password needs a user. */
  assert_int_equal(h2pool_config_set_proxy_credentials(cfg, "a:b", "p"), E);
  assert_int_equal(h2pool_config_set_proxy_credentials(cfg, NULL, "p"), E);
  assert_int_equal(h2pool_config_set_proxy_credentials(cfg, "a", NULL),
                   H2POOL_OK);
  assert_int_equal(h2pool_config_set_proxy_credentials(cfg, NULL, NULL),
                   H2POOL_OK);
  assert_int_equal(h2pool_config_set_noproxy(cfg, "localhost,.example.com"),
                   H2POOL_OK);
  assert_int_equal(h2pool_config_set_noproxy(cfg, NULL), H2POOL_OK);
  assert_int_equal(h2pool_config_use_proxy_env(cfg, 1), H2POOL_OK);
  /* SOCKS5 credentials longer than 255 bytes cannot be sent (RFC 1929). */
  char long_user[300];
  memset(long_user, 'u', sizeof long_user - 1);
  long_user[sizeof long_user - 1] = '\0';
  assert_int_equal(h2pool_config_set_proxy(cfg, "socks5://127.0.0.1:1"),
                   H2POOL_OK);
  assert_int_equal(h2pool_config_set_proxy_credentials(cfg, long_user, "p"),
                   H2POOL_OK);
  h2pool *pool = NULL;
  assert_int_equal(h2pool_create(cfg, &pool), E);
  assert_null(pool);
  h2pool_config_free(cfg);
}

static void test_http_version_settings(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_int_equal(h2pool_config_set_http_version(NULL, H2POOL_HTTP_VERSION_2),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_http_version(cfg, (h2pool_http_version)3),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_http_version(cfg, (h2pool_http_version)-1),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_http_version(cfg, H2POOL_HTTP_VERSION_1_1),
                   H2POOL_OK);
  assert_int_equal(h2pool_config_set_expect_continue_timeout_ms(NULL, 5),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_expect_continue_timeout_ms(cfg, 0),
                   H2POOL_OK);
  h2pool_config_free(cfg);
  h2pool_request_opts *opts = NULL;
  assert_int_equal(h2pool_request_opts_new(&opts), H2POOL_OK);
  assert_int_equal(
      h2pool_request_opts_set_http_version(NULL, H2POOL_HTTP_VERSION_1_1),
      H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      h2pool_request_opts_set_http_version(opts, (h2pool_http_version)7),
      H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      h2pool_request_opts_set_http_version(opts, H2POOL_HTTP_VERSION_2),
      H2POOL_OK);
  h2pool_request_opts_free(opts);
  assert_string_equal(h2pool_protocol_name(H2POOL_PROTOCOL_HTTP_1_0),
                      "HTTP/1.0");
  assert_string_equal(h2pool_protocol_name(H2POOL_PROTOCOL_HTTP_1_1),
                      "HTTP/1.1");
  assert_string_equal(h2pool_protocol_name(H2POOL_PROTOCOL_HTTP_2), "HTTP/2");
  assert_string_equal(h2pool_protocol_name(12345), "unknown");
  assert_int_equal(h2pool_stats_endpoint_protocol(NULL, 0),
                   H2POOL_PROTOCOL_UNKNOWN);
}

/* ---- synchronous refusal: an error code and never a callback -------- */

/* Submits and expects `want`; the fixture's waiter counts callbacks. */
static void expect_refused(fixture *f, const char *method, const char *url,
                           const h2pool_header *hs, size_t nh,
                           const uint8_t *body, size_t body_len, int want,
                           const char *what) {
  uint64_t id = 777;
  int rc = h2pool_request(f->pool, method, url, hs, nh, body, body_len, NULL,
                          count_cb, &f->w, &id);
  if (rc != want)
    fail_msg("%s: got %d (%s), want %d (%s)", what, rc, h2pool_strerror(rc),
             want, h2pool_strerror(want));
}

/* Destroying the pool runs every outstanding callback; none may exist. */
static void expect_no_callbacks(fixture *f) {
  h2pool_destroy(f->pool);
  f->pool = NULL;
  assert_int_equal(waiter_count(&f->w), 0);
}

static void test_request_refuses_null_arguments(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  const int E = H2POOL_ERR_INVALID_ARGUMENT;
  uint64_t id = 0;
  assert_int_equal(h2pool_request(NULL, "GET", url, NULL, 0, NULL, 0, NULL,
                                  count_cb, &f->w, &id),
                   E);
  expect_refused(f, NULL, url, NULL, 0, NULL, 0, E, "NULL method");
  expect_refused(f, "GET", NULL, NULL, 0, NULL, 0, E, "NULL url");
  expect_refused(f, "GET", url, NULL, 2, NULL, 0, E, "NULL headers, n=2");
  expect_refused(f, "POST", url, NULL, 0, NULL, 5, E, "NULL body, len=5");
  assert_int_equal(h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, NULL,
                                  NULL, NULL, &id),
                   E);
  /* A header whose name pointer is NULL: argument or header error. */
  h2pool_header h = {NULL, 3, "v", 1};
  int rc = h2pool_request(f->pool, "GET", url, &h, 1, NULL, 0, NULL, count_cb,
                          &f->w, &id);
  assert_true(rc == E || rc == H2POOL_ERR_INVALID_HEADER);
  h2pool_header h2 = {"x-a", 3, NULL, 4};
  rc = h2pool_request(f->pool, "GET", url, &h2, 1, NULL, 0, NULL, count_cb,
                      &f->w, &id);
  assert_true(rc == E || rc == H2POOL_ERR_INVALID_HEADER);
  expect_no_callbacks(f);
}

static void test_request_refuses_malformed_urls(void **state) {
  fixture *f = *state;
  char port_url[128];
  snprintf(port_url, sizeof port_url, "http://127.0.0.1:%u/\x01x",
           (unsigned)h2ts_port(f->ts));
  const char *bad[] = {
      "",
      "/just/a/path",
      "127.0.0.1/no-scheme",
      "http://",
      "http:///path",
      "http://:80/",
      "http://host:99999/",
      "http://host:65536/",
      "http://host:-1/",
      "http://host:8o/",
      "http://[::1/",
      "http://[::1",
      "http://::1/",
      "http://[zz::1]/",
      "http:// space/",
      "http://exa mple/",
      "http://host/pa th",
      "http://ho\x01st/",
      "http://host/a\r\nb",
      "http://host/\x7f",
      "http://host/a\tb",
      port_url,
  };
  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    expect_refused(f, "GET", bad[i], NULL, 0, NULL, 0, H2POOL_ERR_INVALID_URL,
                   bad[i]);
  expect_no_callbacks(f);
}

static void test_request_refuses_unsupported_scheme(void **state) {
  fixture *f = *state;
  const char *bad[] = {"ftp://127.0.0.1/x", "ws://127.0.0.1/",
                       "file:///etc/passwd", "gopher://host:70/"};
  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    expect_refused(f, "GET", bad[i], NULL, 0, NULL, 0,
                   H2POOL_ERR_UNSUPPORTED_SCHEME, bad[i]);
  expect_no_callbacks(f);
}

/* https:// is accepted; against a cleartext HTTP/2 server the TLS handshake
 * fails, asynchronously, with a TLS error rather than a hang or a crash. */
static void test_https_to_cleartext_server_fails_tls_handshake(void **state) {
  fixture *f = *state;
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/", h2ts_port(f->ts));
  capture *c = &f->cap[0];
  assert_int_equal(get_capture(f->pool, url, NULL, c, NULL), H2POOL_OK);
  assert_true(waiter_wait(&f->w, 1, 10000));
  assert_int_equal(atomic_load(&c->calls), 1);
  assert_true(c->had_err);
  assert_int_equal(c->err, H2POOL_ERR_TLS_HANDSHAKE);
  assert_false(c->had_resp);
}

static void test_request_refuses_invalid_methods(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  const char *bad[] = {"",       "GE T",      "GET\r\n", "G(ET)", "GET/",
                       "G\x01T", "\xc3\xa9T", "GET:",    " GET"};
  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    expect_refused(f, bad[i], url, NULL, 0, NULL, 0, H2POOL_ERR_INVALID_METHOD,
                   bad[i]);
  expect_no_callbacks(f);
}

#define HDR(n, v)                                                              \
  { (n), sizeof(n) - 1, (v), sizeof(v) - 1 }

static void test_request_refuses_invalid_headers(void **state) {
  fixture *f = *state;
  char url[128];
  fixture_url(f, url, sizeof url, "/");
  const h2pool_header bad[] = {
      HDR("bad name", "v"),
      HDR("", "v"),
      HDR(":path", "/x"),
      HDR(":authority", "evil"),
      HDR("connection", "close"),
      HDR("Connection", "keep-alive"),
      HDR("keep-alive", "timeout=5"),
      HDR("proxy-connection", "keep-alive"),
      HDR("transfer-encoding", "chunked"),
      HDR("upgrade", "h2c"),
      HDR("te", "gzip"),
      HDR("x-crlf", "a\r\nb"),
      HDR("x-lf", "a\nb"),
      HDR("x-cr", "a\rb"),
      HDR("x-nul", "a\0b"),
      HDR("x-name\0nul", "v"),
      HDR("x-colon:", "v"),
      HDR("x-\x7f", "v"),
  };
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    char what[96];
    snprintf(what, sizeof what, "header #%zu \"%.*s\"", i, (int)bad[i].name_len,
             bad[i].name);
    expect_refused(f, "GET", url, &bad[i], 1, NULL, 0,
                   H2POOL_ERR_INVALID_HEADER, what);
    /* One bad header among good ones still refuses the request. */
    h2pool_header mixed[3] = {HDR("x-good", "1"), bad[i], HDR("x-good2", "2")};
    expect_refused(f, "GET", url, mixed, 3, NULL, 0, H2POOL_ERR_INVALID_HEADER,
                   what);
  }
  expect_no_callbacks(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_runtime_matches_header),
      cmocka_unit_test(test_strerror_every_code_distinct_and_non_empty),
      cmocka_unit_test(test_strerror_unknown_codes_not_null),
      cmocka_unit_test(test_config_new_rejects_null_out),
      cmocka_unit_test(test_config_setters_reject_null_config),
      cmocka_unit_test(test_config_setters_reject_out_of_range),
      cmocka_unit_test(test_config_setters_accept_boundaries),
      cmocka_unit_test(test_proxy_settings),
      cmocka_unit_test(test_destructors_accept_null),
      cmocka_unit_test(test_create_rejects_null_out),
      cmocka_unit_test(test_create_with_null_config_uses_defaults),
      cmocka_unit_test(test_request_opts_reject_null),
      cmocka_unit_test(test_error_and_response_accessors_accept_null),
      cmocka_unit_test(test_http_version_settings),
      cmocka_unit_test_setup_teardown(test_cancel_rejects_null_pool_and_id_zero,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test(test_priority_opts_reject_out_of_range),
      cmocka_unit_test_setup_teardown(test_set_priority_matches_cancel_contract,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_stats_reject_null_arguments,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_request_refuses_null_arguments,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test(test_network_setters_validate),
      cmocka_unit_test_setup_teardown(test_request_refuses_malformed_urls,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_request_refuses_unsupported_scheme,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(
          test_https_to_cleartext_server_fails_tls_handshake, fixture_setup,
          fixture_teardown),
      cmocka_unit_test_setup_teardown(test_request_refuses_invalid_methods,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_request_refuses_invalid_headers,
                                      fixture_setup, fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
