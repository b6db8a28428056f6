/* Response decoding through the public API: automatic decompression of
 * gzip, x-gzip, deflate (zlib-wrapped and raw), br, zstd and chains of
 * them, buffered and streamed; accept-encoding; decompression bombs and
 * their limits; corrupt encodings; unknown encodings passed through;
 * trailers; and 1xx interim responses. The test server encodes with zlib,
 * brotli and zstd (ce=...) and reports the CRC32 of the bytes it sent
 * (x-body-crc32). The br and zstd tests skip in a build without them. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIB ((size_t)1 << 20)
#define BOMB_BYTES ((size_t)100 * MIB) /* zeros=104857600 */

static const size_t kSizes[] = {0, 1, 16384, MIB};

/* ---- helpers ------------------------------------------------------------ */

/* zlib's CRC32 (reflected, polynomial 0xedb88320), bitwise: the test binary
 * does not link zlib. */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

#define MAX_TRAILERS 8

/* What a completion saw beyond `capture`: the original content-encoding
 * and the trailers, copied (the response is borrowed). Also the on_headers
 * and on_data calls for the streaming variants. */
typedef struct enc_capture {
  capture cap;
  bool ce_null;
  char ce[128];
  size_t ntrailers;
  captured_header trailers[MAX_TRAILERS];
  bool trailer_at_oob_rejected; /* trailer_at(count) is refused */
  char lookup_upper[64];        /* h2pool_response_trailer("X-Status") */
  bool lookup_upper_null;
  bool lookup_missing_null; /* h2pool_response_trailer("x-missing") */
  /* on_headers */
  atomic_int headers_calls;
  int status_at_headers;
  bool link_at_headers;
  bool interim_at_headers;
  size_t nheaders_at_headers;
  /* on_data */
  atomic_int data_calls;
  uint8_t *data;
  size_t data_len;
  size_t data_cap;
  uint64_t received;
  bool nonzero; /* a byte other than 0 arrived (zeros bodies) */
  bool count_only;
  bool pause_each;   /* on_data returns H2POOL_DATA_PAUSE every time */
  atomic_int paused; /* set with each such pause (and the waiter signalled) */
} enc_capture;

/* Globals, so a failed assertion (longjmp) never leaves a pool callback
 * pointing into a dead stack frame: the teardown destroys the pool first. */
#define NCAPS 8
static enc_capture g_caps[NCAPS];
static waiter *g_w;

static char *dup_bytes(const char *p, size_t n) {
  char *out = malloc(n + 1);
  if (!out)
    abort();
  if (n)
    memcpy(out, p, n);
  out[n] = '\0';
  return out;
}

static void enc_capture_reset(enc_capture *e, waiter *w) {
  capture_free(&e->cap);
  for (size_t i = 0; i < e->ntrailers; i++) {
    free(e->trailers[i].name);
    free(e->trailers[i].value);
  }
  free(e->data);
  memset(e, 0, sizeof *e);
  capture_init(&e->cap, w);
  atomic_init(&e->headers_calls, 0);
  atomic_init(&e->data_calls, 0);
  atomic_init(&e->paused, 0);
}

static void enc_done(const h2pool_response *resp, const h2pool_error *err,
                     void *user_data) {
  enc_capture *e = user_data;
  if (resp && atomic_load(&e->cap.calls) == 0) {
    const char *ce = h2pool_response_content_encoding(resp);
    e->ce_null = ce == NULL;
    snprintf(e->ce, sizeof e->ce, "%s", ce ? ce : "");
    size_t n = h2pool_response_trailer_count(resp);
    for (size_t i = 0; i < n && i < MAX_TRAILERS; i++) {
      h2pool_header h;
      if (h2pool_response_trailer_at(resp, i, &h) != H2POOL_OK)
        break;
      e->trailers[i].name = dup_bytes(h.name, h.name_len);
      e->trailers[i].name_len = h.name_len;
      e->trailers[i].value = dup_bytes(h.value, h.value_len);
      e->trailers[i].value_len = h.value_len;
      e->ntrailers = i + 1;
    }
    if (n > MAX_TRAILERS)
      e->ntrailers = n; /* flagged by the count check */
    h2pool_header oob;
    e->trailer_at_oob_rejected = h2pool_response_trailer_at(resp, n, &oob) ==
                                 H2POOL_ERR_INVALID_ARGUMENT;
    size_t vlen = 0;
    const char *v = h2pool_response_trailer(resp, "X-Status", &vlen);
    e->lookup_upper_null = v == NULL;
    if (v)
      snprintf(e->lookup_upper, sizeof e->lookup_upper, "%.*s", (int)vlen, v);
    e->lookup_missing_null =
        h2pool_response_trailer(resp, "x-missing", NULL) == NULL;
  }
  capture_cb(resp, err, &e->cap);
}

static int enc_on_headers(const h2pool_response *resp, void *user_data) {
  enc_capture *e = user_data;
  atomic_fetch_add(&e->headers_calls, 1);
  e->status_at_headers = h2pool_response_status(resp);
  e->link_at_headers = h2pool_response_header(resp, "link", NULL) != NULL;
  e->interim_at_headers =
      h2pool_response_header(resp, "x-interim", NULL) != NULL;
  e->nheaders_at_headers = h2pool_response_header_count(resp);
  return 0;
}

static int enc_on_data(const uint8_t *data, size_t len, void *user_data) {
  enc_capture *e = user_data;
  atomic_fetch_add(&e->data_calls, 1);
  if (e->count_only) {
    for (size_t i = 0; i < len; i++)
      if (data[i] != 0) {
        e->nonzero = true;
        break;
      }
  } else {
    if (e->data_len + len > e->data_cap) {
      size_t cap = e->data_cap ? e->data_cap : 65536;
      while (cap < e->data_len + len)
        cap *= 2;
      uint8_t *p = realloc(e->data, cap);
      if (!p)
        abort();
      e->data = p;
      e->data_cap = cap;
    }
    memcpy(e->data + e->data_len, data, len);
    e->data_len += len;
  }
  e->received += len;
  if (e->pause_each) {
    atomic_store(&e->paused, 1);
    waiter_signal(e->cap.w);
    return H2POOL_DATA_PAUSE;
  }
  return 0;
}

static int enc_setup(void **state) {
  int rc = fixture_setup(state);
  fixture *f = *state;
  if (f) {
    g_w = &f->w;
    for (size_t i = 0; i < NCAPS; i++)
      enc_capture_reset(&g_caps[i], &f->w);
  }
  return rc;
}

static int enc_setup_no_pool(void **state) {
  int rc = fixture_setup_no_pool(state);
  fixture *f = *state;
  if (f) {
    g_w = &f->w;
    for (size_t i = 0; i < NCAPS; i++)
      enc_capture_reset(&g_caps[i], &f->w);
  }
  return rc;
}

static int enc_teardown(void **state) {
  int rc = fixture_teardown(state); /* destroys the pool first */
  for (size_t i = 0; i < NCAPS; i++)
    enc_capture_reset(&g_caps[i], NULL);
  g_w = NULL;
  return rc;
}

/* Submits GET base+pq with enc_done; waits for it. */
static void get_enc(fixture *f, const char *pq, const h2pool_request_opts *o,
                    const h2pool_header *hdrs, size_t nh, enc_capture *e,
                    uint32_t timeout_ms) {
  char url[512];
  fixture_url(f, url, sizeof url, pq);
  size_t before = waiter_count(&f->w);
  assert_int_equal(h2pool_request(f->pool, "GET", url, hdrs, nh, NULL, 0, o,
                                  enc_done, e, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, before + 1, timeout_ms));
  assert_int_equal(atomic_load(&e->cap.calls), 1);
}

/* Submits POST base+pq with `body` and enc_done; waits for it. */
static void post_enc(fixture *f, const char *pq, const uint8_t *body,
                     size_t len, const h2pool_request_opts *o, enc_capture *e,
                     uint32_t timeout_ms) {
  char url[512];
  fixture_url(f, url, sizeof url, pq);
  size_t before = waiter_count(&f->w);
  assert_int_equal(h2pool_request(f->pool, "POST", url, NULL, 0, body, len, o,
                                  enc_done, e, NULL),
                   H2POOL_OK);
  assert_true(waiter_wait(&f->w, before + 1, timeout_ms));
  assert_int_equal(atomic_load(&e->cap.calls), 1);
}

/* `times` copies of p[0..n), back to back; the caller frees it. */
static uint8_t *repeat_bytes(const uint8_t *p, size_t n, size_t times) {
  uint8_t *out = malloc(n * times);
  if (!out)
    abort();
  for (size_t i = 0; i < times; i++)
    memcpy(out + i * n, p, n);
  return out;
}

static h2pool_request_opts *new_opts(void) {
  h2pool_request_opts *o = NULL;
  assert_int_equal(h2pool_request_opts_new(&o), H2POOL_OK);
  assert_non_null(o);
  return o;
}

static uint64_t rss_bytes(void) {
  FILE *fp = fopen("/proc/self/statm", "r");
  assert_non_null(fp);
  unsigned long size = 0, resident = 0;
  assert_int_equal(fscanf(fp, "%lu %lu", &size, &resident), 2);
  fclose(fp);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* VmHWM (peak RSS) in bytes, or 0 if unavailable. */
static uint64_t peak_rss_bytes(void) {
  FILE *fp = fopen("/proc/self/status", "r");
  if (!fp)
    return 0;
  char line[256];
  uint64_t kb = 0;
  while (fgets(line, sizeof line, fp)) {
    unsigned long v;
    if (sscanf(line, "VmHWM: %lu kB", &v) == 1)
      kb = v;
  }
  fclose(fp);
  return kb * 1024;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0). Returns whether it did. */
static bool reset_peak_rss(void) {
  FILE *fp = fopen("/proc/self/clear_refs", "w");
  if (!fp)
    return false;
  bool ok = fputs("5", fp) >= 0;
  ok = fclose(fp) == 0 && ok;
  return ok;
}

/* Whether h2pool_supported_encodings() lists `coding` as a whole token. */
static bool decodes(const char *coding) {
  const char *list = h2pool_supported_encodings();
  size_t n = strlen(coding);
  for (const char *p = list; (p = strstr(p, coding)) != NULL; p += n) {
    bool starts = p == list || p[-1] == ' ';
    bool ends = p[n] == '\0' || p[n] == ',';
    if (starts && ends)
      return true;
  }
  return false;
}

/* Skips the calling test in a build that does not decode `coding`. */
#define REQUIRE_CODING(coding)                                                 \
  do {                                                                         \
    if (!decodes(coding)) {                                                    \
      print_message("skipped: this build does not decode " coding "\n");       \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* ---- decoding, byte-exact ----------------------------------------------- */

/* Buffered: every size decodes to exactly test_body(seed, n), the
 * content-encoding and content-length headers are gone, and
 * h2pool_response_content_encoding() has what the server announced. */
static void check_decodes(void **state, const char *ce_param,
                          const char *announced) {
  fixture *f = *state;
  for (size_t i = 0; i < ARRAY_LEN(kSizes); i++) {
    enc_capture *e = &g_caps[i % NCAPS];
    enc_capture_reset(e, &f->w);
    char pq[256];
    snprintf(pq, sizeof pq, "/d?size=%zu&seed=%zu&ce=%s", kSizes[i],
             (size_t)(500 + i), ce_param);
    get_enc(f, pq, NULL, NULL, 0, e, 30000);
    if (e->cap.had_err)
      print_error("%s size %zu: %d %s\n", ce_param, kSizes[i], e->cap.err,
                  e->cap.message);
    assert_false(e->cap.had_err);
    assert_int_equal(e->cap.status, 200);
    assert_int_equal(e->cap.body_len, kSizes[i]);
    assert_true(capture_body_is_test_body(&e->cap, 500 + i, kSizes[i]));
    assert_null(capture_header(&e->cap, "content-encoding"));
    assert_null(capture_header(&e->cap, "content-length"));
    /* The server's own headers survive. */
    assert_non_null(capture_header(&e->cap, "x-body-crc32"));
    assert_false(e->ce_null);
    assert_string_equal(e->ce, announced);
  }
}

static void test_gzip_decodes_byte_exact(void **state) {
  check_decodes(state, "gzip", "gzip");
}

static void test_x_gzip_decodes_byte_exact(void **state) {
  check_decodes(state, "x-gzip", "x-gzip");
}

static void test_deflate_zlib_wrapped_decodes_byte_exact(void **state) {
  check_decodes(state, "deflate", "deflate");
}

static void test_deflate_raw_decodes_byte_exact(void **state) {
  check_decodes(state, "deflate-raw", "deflate");
}

static void test_chained_gzip_gzip_decodes(void **state) {
  check_decodes(state, "gzip,gzip", "gzip,gzip");
}

static void test_chained_deflate_gzip_decodes(void **state) {
  check_decodes(state, "deflate,gzip", "deflate,gzip");
}

static void test_br_decodes_byte_exact(void **state) {
  REQUIRE_CODING("br");
  check_decodes(state, "br", "br");
}

static void test_zstd_decodes_byte_exact(void **state) {
  REQUIRE_CODING("zstd");
  check_decodes(state, "zstd", "zstd");
}

static void test_chained_gzip_br_zstd_decodes(void **state) {
  REQUIRE_CODING("br");
  REQUIRE_CODING("zstd");
  check_decodes(state, "gzip,br,zstd", "gzip,br,zstd");
  check_decodes(state, "zstd,deflate,br", "zstd,deflate,br");
}

/* Two content-encoding field lines, "gzip" and "gzip", over a body gzipped
 * twice: RFC 9110 5.3 makes that "gzip, gzip", so both are undone. The
 * server gzips once per request (ce=gzip) and adds the second line
 * (header=), so the first request fetches gzip(body) undecoded and the
 * second has /echo send it back gzipped again. */
static void test_two_content_encoding_lines_are_both_decoded(void **state) {
  fixture *f = *state;
  const size_t n = 300000;
  h2pool_request_opts *raw = new_opts();
  assert_int_equal(h2pool_request_opts_set_auto_decompress(raw, 0), H2POOL_OK);
  enc_capture *once = &g_caps[0];
  get_enc(f, "/g?size=300000&seed=41&ce=gzip", raw, NULL, 0, once, WAIT_MS);
  h2pool_request_opts_free(raw);
  assert_false(once->cap.had_err);
  assert_true(once->ce_null);
  assert_true(once->cap.body_len > 18);
  assert_int_equal(once->cap.body[0], 0x1f);
  assert_int_equal(once->cap.body[1], 0x8b);

  enc_capture *e = &g_caps[1];
  post_enc(f, "/echo?ce=gzip&header=content-encoding:gzip", once->cap.body,
           once->cap.body_len, NULL, e, WAIT_MS);
  if (e->cap.had_err)
    print_error("%d %s\n", e->cap.err, e->cap.message);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  assert_int_equal(e->cap.body_len, n);
  assert_true(capture_body_is_test_body(&e->cap, 41, n));
  assert_false(e->ce_null);
  assert_string_equal(e->ce, "gzip, gzip");
  assert_null(capture_header(&e->cap, "content-encoding"));
  assert_null(capture_header(&e->cap, "content-length"));
}

/* ---- accept-encoding and auto-decompress off ---------------------------- */

static void test_accept_encoding_sent_by_default(void **state) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f, "/ae?echo_header=accept-encoding", NULL, NULL, 0, e, WAIT_MS);
  assert_false(e->cap.had_err);
  const char *ae = capture_header(&e->cap, "x-echo-accept-encoding");
  assert_non_null(ae);
  assert_string_equal(ae, h2pool_supported_encodings());
}

/* What the build was configured with, in the order the default
 * accept-encoding lists it. */
static void test_supported_encodings_match_the_build(void **state) {
  (void)state;
  const char *expected = "gzip, deflate"
#if H2POOL_HAVE_BROTLI
                         ", br"
#endif
#if H2POOL_HAVE_ZSTD
                         ", zstd"
#endif
      ;
  assert_string_equal(h2pool_supported_encodings(), expected);
  assert_ptr_equal(h2pool_supported_encodings(), h2pool_supported_encodings());
  assert_true(decodes("gzip") && decodes("deflate"));
  assert_false(decodes("gzi") || decodes("zst") || decodes("b"));
}

static void test_auto_decompress_off_sends_no_accept_encoding(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_auto_decompress(o, 0), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  get_enc(f, "/ae?echo_header=accept-encoding", o, NULL, 0, e, WAIT_MS);
  h2pool_request_opts_free(o);
  assert_false(e->cap.had_err);
  assert_null(capture_header(&e->cap, "x-echo-accept-encoding"));
}

static void test_auto_decompress_off_delivers_encoded_bytes(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_auto_decompress(o, 0), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  get_enc(f, "/raw?size=100000&seed=61&ce=gzip", o, NULL, 0, e, WAIT_MS);
  h2pool_request_opts_free(o);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  /* Headers intact. */
  const char *ce = capture_header(&e->cap, "content-encoding");
  assert_non_null(ce);
  assert_string_equal(ce, "gzip");
  const char *cl = capture_header(&e->cap, "content-length");
  assert_non_null(cl);
  assert_int_equal(strtoull(cl, NULL, 10), e->cap.body_len);
  assert_true(e->ce_null); /* not decoded */
  /* The body is the gzip stream exactly as sent. */
  assert_true(e->cap.body_len > 18);
  assert_int_equal(e->cap.body[0], 0x1f);
  assert_int_equal(e->cap.body[1], 0x8b);
  const char *crc = capture_header(&e->cap, "x-body-crc32");
  assert_non_null(crc);
  char got[16];
  snprintf(got, sizeof got, "%08lx",
           (unsigned long)crc32_of(e->cap.body, e->cap.body_len));
  assert_string_equal(got, crc);
  /* gzip's ISIZE trailer: the uncompressed length, little-endian. */
  const uint8_t *t = e->cap.body + e->cap.body_len - 4;
  uint32_t isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
                   (uint32_t)t[3] << 24;
  assert_int_equal(isize, 100000);
}

static void test_caller_accept_encoding_kept_as_given(void **state) {
  fixture *f = *state;
  static const char name[] = "Accept-Encoding";
  static const char value[] = "br;q=1.0, identity;q=0.5";
  h2pool_header h = {name, sizeof name - 1, value, sizeof value - 1};
  enc_capture *e = &g_caps[0];
  get_enc(f, "/ae?echo_header=accept-encoding", NULL, &h, 1, e, WAIT_MS);
  assert_false(e->cap.had_err);
  const char *ae = capture_header(&e->cap, "x-echo-accept-encoding");
  assert_non_null(ae);
  /* Exactly the caller's value: not replaced, and no second field added
   * (the server joins repeated fields with ", "). */
  assert_string_equal(ae, value);
}

/* ---- bombs -------------------------------------------------------------- */

/* GET `pq`, a small body that decodes to 100 MiB of zeros: the request
 * fails with H2POOL_ERR_DECOMPRESSION_BOMB while RSS stays far below that.
 * `warm` is fetched first (the connection, the server's encoder) so what
 * is measured is the bomb alone. */
static void check_bomb(void **state, const char *warm, const char *pq) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f, warm, NULL, NULL, 0, e, WAIT_MS);
  assert_false(e->cap.had_err);
  enc_capture_reset(e, &f->w);

  bool hwm = reset_peak_rss();
  uint64_t before = rss_bytes();
  get_enc(f, pq, NULL, NULL, 0, e, 60000);
  uint64_t after = rss_bytes();
  uint64_t peak = hwm ? peak_rss_bytes() : 0;
  print_message(
      "bomb %s: rss before %llu KiB, after %llu KiB, peak %llu KiB "
      "(peak %s)\n",
      pq, (unsigned long long)(before >> 10), (unsigned long long)(after >> 10),
      (unsigned long long)(peak >> 10), hwm ? "measured" : "unavailable");
  if (e->cap.had_err)
    print_message("bomb error: %s\n", e->cap.message);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECOMPRESSION_BOMB);
  uint64_t limit = 64 * (uint64_t)MIB;
  assert_true(after < before + limit);
  if (hwm && peak > 0)
    assert_true(peak < before + limit);
}

static void test_gzip_bomb_fails_with_bounded_memory(void **state) {
  check_bomb(state, "/warm?size=1000&ce=gzip", "/bomb?zeros=104857600&ce=gzip");
}

static void test_br_bomb_fails_with_bounded_memory(void **state) {
  REQUIRE_CODING("br");
  check_bomb(state, "/warm?size=1000&ce=br", "/bomb?zeros=104857600&ce=br");
}

static void test_zstd_bomb_fails_with_bounded_memory(void **state) {
  REQUIRE_CODING("zstd");
  check_bomb(state, "/warm?size=1000&ce=zstd", "/bomb?zeros=104857600&ce=zstd");
}

/* br, then gzip over it: the outer gzip step is no bomb, the br step under
 * it is; and gzip under br, where both expand. */
static void test_nested_br_gzip_bombs_fail_with_bounded_memory(void **state) {
  REQUIRE_CODING("br");
  check_bomb(state, "/warm?size=1000&ce=br,gzip",
             "/bomb?zeros=104857600&ce=br,gzip");
  enc_capture_reset(&g_caps[0], g_w);
  check_bomb(state, "/warm?size=1000&ce=gzip,br",
             "/bomb?zeros=104857600&ce=gzip,br");
}

static void test_zstd_bomb_fails_in_streaming_mode(void **state) {
  REQUIRE_CODING("zstd");
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  e->count_only = true;
  get_enc(f, "/bomb?zeros=104857600&ce=zstd", o, NULL, 0, e, 60000);
  h2pool_request_opts_free(o);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECOMPRESSION_BOMB);
  assert_false(e->nonzero);
  assert_true(e->received < BOMB_BYTES);
}

static void test_gzip_bomb_fails_in_streaming_mode(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  e->count_only = true;
  get_enc(f, "/bomb?zeros=104857600&ce=gzip", o, NULL, 0, e, 60000);
  h2pool_request_opts_free(o);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECOMPRESSION_BOMB);
  assert_false(e->nonzero);
  assert_true(e->received < BOMB_BYTES);
}

static void test_raised_limits_decode_100mib_streaming(void **state) {
  fixture *f = *state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  assert_int_equal(
      h2pool_config_set_decompression_limits(cfg, 200 * (uint64_t)MIB, 2000),
      H2POOL_OK);
  assert_int_equal(h2pool_create(cfg, &f->pool), H2POOL_OK);
  h2pool_config_free(cfg);
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  e->count_only = true;
  get_enc(f, "/bomb?zeros=104857600&ce=gzip", o, NULL, 0, e, 100000);
  h2pool_request_opts_free(o);
  if (e->cap.had_err)
    print_message("error: %s\n", e->cap.message);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  assert_int_equal(e->received, BOMB_BYTES);
  assert_false(e->nonzero);
  assert_int_equal(e->cap.body_len, 0); /* streamed, not buffered */
  assert_false(e->ce_null);
  assert_string_equal(e->ce, "gzip");
}

/* content-encoding "gzip,gzip,gzip" over a few hundred bytes whose middle
 * decoding step yields 128 MiB of empty gzip members, which the last step
 * turns into nothing: only the middle step's own output shows the bomb, and
 * decoding one step whole before the next held all of it. The pieces come
 * from the server's zlib (ce=gzip, undecoded): an empty member E, then
 * Z = gzip(1 MiB of E), then W = gzip(128 copies of Z); W is echoed back
 * announced as three gzips. */
static void test_nested_encoding_bomb_fails_with_bounded_memory(void **state) {
  fixture *f = *state;
  h2pool_request_opts *raw = new_opts();
  assert_int_equal(h2pool_request_opts_set_auto_decompress(raw, 0), H2POOL_OK);
  enc_capture *empty = &g_caps[0], *z = &g_caps[1], *w = &g_caps[2];
  get_enc(f, "/e?size=0&ce=gzip", raw, NULL, 0, empty, WAIT_MS);
  assert_false(empty->cap.had_err);
  assert_true(empty->cap.body_len >= 18);
  size_t members = MIB / empty->cap.body_len;
  uint8_t *y = repeat_bytes(empty->cap.body, empty->cap.body_len, members);
  post_enc(f, "/echo?ce=gzip", y, members * empty->cap.body_len, raw, z,
           WAIT_MS);
  free(y);
  assert_false(z->cap.had_err);
  assert_true(z->cap.body_len > 0 && z->cap.body_len < 16384);
  uint8_t *zs = repeat_bytes(z->cap.body, z->cap.body_len, 128);
  post_enc(f, "/echo?ce=gzip", zs, 128 * z->cap.body_len, raw, w, WAIT_MS);
  free(zs);
  h2pool_request_opts_free(raw);
  assert_false(w->cap.had_err);
  assert_true(w->cap.body_len > 0 && w->cap.body_len < 65536);

  enc_capture *e = &g_caps[3];
  bool hwm = reset_peak_rss();
  uint64_t before = rss_bytes();
  post_enc(f, "/echo?header=content-encoding:gzip,gzip,gzip", w->cap.body,
           w->cap.body_len, NULL, e, 60000);
  uint64_t after = rss_bytes();
  uint64_t peak = hwm ? peak_rss_bytes() : 0;
  print_message("nested bomb (%zu wire bytes): rss before %llu KiB, after "
                "%llu KiB, peak %llu KiB (peak %s)\n",
                w->cap.body_len, (unsigned long long)(before >> 10),
                (unsigned long long)(after >> 10),
                (unsigned long long)(peak >> 10),
                hwm ? "measured" : "unavailable");
  if (e->cap.had_err)
    print_message("nested bomb error: %s\n", e->cap.message);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECOMPRESSION_BOMB);
  assert_non_null(strstr(e->cap.message, "decoding step 2 of 3"));
  uint64_t limit = 32 * (uint64_t)MIB;
  assert_true(after < before + limit);
  if (hwm && peak > 0)
    assert_true(peak < before + limit);
}

/* ---- corrupt encodings -------------------------------------------------- */

static void check_corrupt(void **state, const char *ce, const char *kind) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  enc_capture_reset(e, &f->w);
  char pq[256];
  snprintf(pq, sizeof pq, "/c?size=100000&seed=71&ce=%s&ce_corrupt=%s", ce,
           kind);
  get_enc(f, pq, NULL, NULL, 0, e, WAIT_MS);
  if (!e->cap.had_err)
    print_error("%s/%s: no error, status %d, %zu bytes\n", ce, kind,
                e->cap.status, e->cap.body_len);
  else if (e->cap.err != H2POOL_ERR_DECODE)
    print_error("%s/%s: %d %s\n", ce, kind, e->cap.err, e->cap.message);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECODE);
}

static void test_corrupt_gzip_header_fails_decode(void **state) {
  check_corrupt(state, "gzip", "header");
}

static void test_corrupt_gzip_crc_fails_decode(void **state) {
  check_corrupt(state, "gzip", "crc");
}

static void test_truncated_gzip_fails_decode(void **state) {
  check_corrupt(state, "gzip", "truncate");
}

static void test_gzip_with_trailing_garbage_fails_decode(void **state) {
  check_corrupt(state, "gzip", "trailing");
}

static void test_corrupt_zlib_adler_fails_decode(void **state) {
  check_corrupt(state, "deflate", "crc");
}

static void test_truncated_br_fails_decode(void **state) {
  REQUIRE_CODING("br");
  check_corrupt(state, "br", "truncate");
}

static void test_br_with_trailing_garbage_fails_decode(void **state) {
  REQUIRE_CODING("br");
  check_corrupt(state, "br", "trailing");
}

static void test_corrupt_zstd_fails_decode(void **state) {
  REQUIRE_CODING("zstd");
  check_corrupt(state, "zstd", "header");
  check_corrupt(state, "zstd", "crc");
  check_corrupt(state, "zstd", "truncate");
  check_corrupt(state, "zstd", "trailing");
}

/* RFC 9659 caps the zstd content coding's window at 8 MiB: a frame that
 * asks for 16 MiB is refused, one of 8 MiB decodes. */
static void test_zstd_window_over_8mib_fails_decode(void **state) {
  REQUIRE_CODING("zstd");
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f, "/w?size=20000000&seed=3&ce=zstd&zstd_wlog=23", NULL, NULL, 0, e,
          30000);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.body_len, 20000000);
  assert_true(capture_body_is_test_body(&e->cap, 3, 20000000));
  enc_capture_reset(e, &f->w);
  get_enc(f, "/w?size=20000000&seed=3&ce=zstd&zstd_wlog=24", NULL, NULL, 0, e,
          30000);
  assert_true(e->cap.had_err);
  assert_int_equal(e->cap.err, H2POOL_ERR_DECODE);
  assert_non_null(strstr(e->cap.message, "8 MiB"));
}

/* ---- unknown encodings -------------------------------------------------- */

static void test_unknown_encoding_passes_through(void **state) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f, "/u?size=5000&seed=81&ce_unknown=compress", NULL, NULL, 0, e,
          WAIT_MS);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  assert_true(capture_body_is_test_body(&e->cap, 81, 5000));
  const char *ce = capture_header(&e->cap, "content-encoding");
  assert_non_null(ce);
  assert_string_equal(ce, "compress");
  const char *cl = capture_header(&e->cap, "content-length");
  assert_non_null(cl);
  assert_string_equal(cl, "5000");
  assert_true(e->ce_null);
}

/* A build without br or zstd treats them as any unknown coding: the body
 * arrives as the server encoded it, headers intact. (The test server
 * encodes both whatever the library decodes.) */
static void test_codings_not_built_in_pass_through(void **state) {
  fixture *f = *state;
  const char *codings[] = {"br", "zstd"};
  int checked = 0;
  for (size_t i = 0; i < ARRAY_LEN(codings); i++) {
    if (decodes(codings[i]))
      continue;
    enc_capture *e = &g_caps[i];
    char pq[128];
    snprintf(pq, sizeof pq, "/p?size=5000&seed=82&ce=%s", codings[i]);
    get_enc(f, pq, NULL, NULL, 0, e, WAIT_MS);
    assert_false(e->cap.had_err);
    assert_int_equal(e->cap.status, 200);
    assert_true(e->ce_null);
    const char *ce = capture_header(&e->cap, "content-encoding");
    assert_non_null(ce);
    assert_string_equal(ce, codings[i]);
    const char *crc = capture_header(&e->cap, "x-body-crc32");
    assert_non_null(crc);
    char got[16];
    snprintf(got, sizeof got, "%08lx",
             (unsigned long)crc32_of(e->cap.body, e->cap.body_len));
    assert_string_equal(got, crc);
    checked++;
  }
  if (checked == 0) {
    print_message("skipped: this build decodes both br and zstd\n");
    skip();
  }
}

/* ---- streaming decompression -------------------------------------------- */

static void test_streamed_decoding_matches_buffered(void **state) {
  fixture *f = *state;
  const size_t n = MIB + 12345;
  char pq[128];
  snprintf(pq, sizeof pq, "/s?size=%zu&seed=91&ce=gzip", n);
  enc_capture *buf = &g_caps[0];
  get_enc(f, pq, NULL, NULL, 0, buf, 30000);
  assert_false(buf->cap.had_err);

  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_headers(o, enc_on_headers),
                   H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *st = &g_caps[1];
  get_enc(f, pq, o, NULL, 0, st, 30000);
  h2pool_request_opts_free(o);
  assert_false(st->cap.had_err);
  assert_int_equal(atomic_load(&st->headers_calls), 1);
  assert_int_equal(st->status_at_headers, 200);
  assert_true(atomic_load(&st->data_calls) >= 1);
  assert_int_equal(st->cap.body_len, 0);
  assert_int_equal(buf->cap.body_len, n);
  assert_int_equal(st->data_len, n);
  assert_memory_equal(st->data, buf->cap.body, n);
  assert_true(capture_body_is_test_body(&buf->cap, 91, n));
  assert_string_equal(st->ce, "gzip");
  assert_null(capture_header(&st->cap, "content-encoding"));
}

/* Three chained codings streamed to an on_data that pauses after every
 * piece, resumed from here each time: the body arrives whole and in order
 * (the decoder keeps its place between steps across each pause, and a
 * response that ends while paused waits for the rest to be read). */
static void
test_chained_decoding_paused_every_call_is_byte_exact(void **state) {
  fixture *f = *state;
  const size_t n = 3 * MIB + 777;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  e->pause_each = true;
  char pq[128];
  snprintf(pq, sizeof pq, "/p?size=%zu&seed=93&ce=gzip,deflate,gzip", n);
  char url[512];
  fixture_url(f, url, sizeof url, pq);
  uint64_t id = 0;
  size_t seen = waiter_count(&f->w);
  assert_int_equal(h2pool_request(f->pool, "GET", url, NULL, 0, NULL, 0, o,
                                  enc_done, e, &id),
                   H2POOL_OK);
  h2pool_request_opts_free(o);
  int resumes = 0;
  while (atomic_load(&e->cap.calls) == 0) {
    assert_true(waiter_wait(&f->w, seen + 1, 30000));
    seen = waiter_count(&f->w);
    if (atomic_exchange(&e->paused, 0)) {
      assert_int_equal(h2pool_request_resume_download(f->pool, id), H2POOL_OK);
      resumes++;
    }
  }
  if (e->cap.had_err)
    print_error("%d %s\n", e->cap.err, e->cap.message);
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  assert_true(resumes >= (int)(n / (64 * 1024)));
  assert_int_equal(e->data_len, n);
  uint8_t *want = malloc(n);
  assert_non_null(want);
  h2ts_test_body(93, n, want);
  assert_memory_equal(e->data, want, n);
  free(want);
  assert_string_equal(e->ce, "gzip,deflate,gzip");
}

/* ---- trailers ----------------------------------------------------------- */

static void check_trailers(const enc_capture *e) {
  assert_false(e->cap.had_err);
  assert_int_equal(e->cap.status, 200);
  assert_int_equal(e->ntrailers, 2);
  assert_string_equal(e->trailers[0].name, "x-checksum");
  assert_string_equal(e->trailers[0].value, "abc123");
  assert_string_equal(e->trailers[1].name, "x-status");
  assert_string_equal(e->trailers[1].value, "ok");
  assert_true(e->trailer_at_oob_rejected);
  assert_false(e->lookup_upper_null); /* lookup ignores ASCII case */
  assert_string_equal(e->lookup_upper, "ok");
  assert_true(e->lookup_missing_null);
  /* Trailers are not headers. */
  assert_null(capture_header(&e->cap, "x-checksum"));
  assert_null(capture_header(&e->cap, "x-status"));
}

static void test_trailers_buffered(void **state) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f,
          "/t?size=70000&seed=3&trailer=x-checksum:abc123&trailer=x-status:ok",
          NULL, NULL, 0, e, WAIT_MS);
  check_trailers(e);
  assert_true(capture_body_is_test_body(&e->cap, 3, 70000));
}

static void test_trailers_streaming(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_headers(o, enc_on_headers),
                   H2POOL_OK);
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  get_enc(f,
          "/t?size=70000&seed=4&trailer=x-checksum:abc123&trailer=x-status:ok",
          o, NULL, 0, e, WAIT_MS);
  h2pool_request_opts_free(o);
  check_trailers(e);
  assert_int_equal(atomic_load(&e->headers_calls), 1);
  assert_int_equal(e->data_len, 70000);
  uint8_t *want = malloc(70000);
  assert_non_null(want);
  h2ts_test_body(4, 70000, want);
  assert_memory_equal(e->data, want, 70000);
  free(want);
}

static void test_trailers_after_empty_body(void **state) {
  fixture *f = *state;
  enc_capture *e = &g_caps[0];
  get_enc(f, "/t?size=0&trailer=x-checksum:abc123&trailer=x-status:ok", NULL,
          NULL, 0, e, WAIT_MS);
  check_trailers(e);
  assert_int_equal(e->cap.body_len, 0);
}

static void test_trailers_with_gzip_body_streaming(void **state) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_data(o, enc_on_data), H2POOL_OK);
  enc_capture *e = &g_caps[0];
  get_enc(f,
          "/t?size=200000&seed=5&ce=gzip&trailer=x-checksum:abc123"
          "&trailer=x-status:ok",
          o, NULL, 0, e, WAIT_MS);
  h2pool_request_opts_free(o);
  check_trailers(e);
  assert_string_equal(e->ce, "gzip");
  assert_int_equal(e->data_len, 200000);
  uint8_t *want = malloc(200000);
  assert_non_null(want);
  h2ts_test_body(5, 200000, want);
  assert_memory_equal(e->data, want, 200000);
  free(want);
}

/* ---- 1xx interim responses ---------------------------------------------- */

static void check_interim(void **state, const char *pq) {
  fixture *f = *state;
  h2pool_request_opts *o = new_opts();
  assert_int_equal(h2pool_request_opts_set_on_headers(o, enc_on_headers),
                   H2POOL_OK);
  enc_capture *e = &g_caps[0];
  get_enc(f, pq, o, NULL, 0, e, WAIT_MS);
  h2pool_request_opts_free(o);
  if (e->cap.had_err)
    print_error("%s: %s\n", pq, e->cap.message);
  assert_false(e->cap.had_err);
  assert_int_equal(atomic_load(&e->headers_calls), 1);
  assert_int_equal(e->status_at_headers, 200);
  assert_false(e->link_at_headers);
  assert_false(e->interim_at_headers);
  assert_int_equal(e->cap.status, 200);
  assert_null(capture_header(&e->cap, "link"));
  assert_null(capture_header(&e->cap, "x-interim"));
  assert_non_null(capture_header(&e->cap, "x-request-count"));
  assert_int_equal(e->nheaders_at_headers, e->cap.nheaders);
  assert_true(capture_body_is_test_body(&e->cap, 12, 3000));
  assert_int_equal(e->ntrailers, 0);
}

static void test_103_then_200(void **state) {
  check_interim(state, "/i?early=103&size=3000&seed=12");
}

static void test_two_103s_then_200(void **state) {
  check_interim(state, "/i?early=103&early=103&size=3000&seed=12");
}

static void test_100_then_200(void **state) {
  check_interim(state, "/i?early=100&size=3000&seed=12");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, enc_setup, enc_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First, while the process is small and quiet. */
      T(test_gzip_bomb_fails_with_bounded_memory),
      T(test_gzip_bomb_fails_in_streaming_mode),
      T(test_br_bomb_fails_with_bounded_memory),
      T(test_zstd_bomb_fails_with_bounded_memory),
      T(test_nested_br_gzip_bombs_fail_with_bounded_memory),
      T(test_zstd_bomb_fails_in_streaming_mode),
      T(test_nested_encoding_bomb_fails_with_bounded_memory),
      cmocka_unit_test_setup_teardown(
          test_raised_limits_decode_100mib_streaming, enc_setup_no_pool,
          enc_teardown),
      T(test_gzip_decodes_byte_exact),
      T(test_x_gzip_decodes_byte_exact),
      T(test_deflate_zlib_wrapped_decodes_byte_exact),
      T(test_deflate_raw_decodes_byte_exact),
      T(test_chained_gzip_gzip_decodes),
      T(test_chained_deflate_gzip_decodes),
      T(test_br_decodes_byte_exact),
      T(test_zstd_decodes_byte_exact),
      T(test_chained_gzip_br_zstd_decodes),
      T(test_two_content_encoding_lines_are_both_decoded),
      T(test_accept_encoding_sent_by_default),
      cmocka_unit_test(test_supported_encodings_match_the_build),
      T(test_auto_decompress_off_sends_no_accept_encoding),
      T(test_auto_decompress_off_delivers_encoded_bytes),
      T(test_caller_accept_encoding_kept_as_given),
      T(test_corrupt_gzip_header_fails_decode),
      T(test_corrupt_gzip_crc_fails_decode),
      T(test_truncated_gzip_fails_decode),
      T(test_gzip_with_trailing_garbage_fails_decode),
      T(test_corrupt_zlib_adler_fails_decode),
      T(test_truncated_br_fails_decode),
      T(test_br_with_trailing_garbage_fails_decode),
      T(test_corrupt_zstd_fails_decode),
      T(test_zstd_window_over_8mib_fails_decode),
      T(test_unknown_encoding_passes_through),
      T(test_codings_not_built_in_pass_through),
      T(test_streamed_decoding_matches_buffered),
      T(test_chained_decoding_paused_every_call_is_byte_exact),
      T(test_trailers_buffered),
      T(test_trailers_streaming),
      T(test_trailers_after_empty_body),
      T(test_trailers_with_gzip_body_streaming),
      T(test_103_then_200),
      T(test_two_103s_then_200),
      T(test_100_then_200),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
