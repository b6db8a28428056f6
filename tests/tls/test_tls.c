/* https:// through the public C API against real TLS servers on loopback:
 * nghttpd (HTTP/2 over TLS) and `openssl s_server` (for servers that do not
 * speak h2), with certificates made by gen_certs.sh.
 *
 *   test_tls [CERT_DIR]
 *
 * CERT_DIR (or $H2POOL_TLS_CERT_DIR) holds gen_certs.sh's output; without
 * one the certificates are generated into a temporary directory. Exits 77
 * (CTest's SKIP_RETURN_CODE) when nghttpd or openssl is not installed.
 *
 * Each test starts its own server process (fork/exec, killed in teardown and
 * by PR_SET_PDEATHSIG if this process dies), on a port picked by binding
 * 127.0.0.1:0. Servers are waited for by connecting to the port, with a
 * deadline; nothing sleeps in place of an event. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "h2pool.h"
#include "waiter.h"

/* Bound for one request (a 1 MiB body over TLS included). */
#define TLS_WAIT_MS 30000u
/* Requests fail with H2POOL_ERR_TIMEOUT before the waits above give up, so a
 * hang is reported as an error code rather than a missing callback. */
#define REQUEST_TIMEOUT_MS 20000u
#define SERVER_START_MS 10000
#define SERVER_STOP_MS 5000
/* "Promptly": a failure that needs no timer must arrive well within this. */
#define PROMPT_MS 3000

#define BIG_SIZE (1024u * 1024u)
#define SMALL_BODY "hello\n"
#define INDEX_BODY "h2pool tls index\n"

/* ---- process-wide state: certificates, docroot, server binaries ------ */

/* Directories are kept well under PATH_MAX so that paths built from them
 * always fit. */
#define DIR_MAX 1024
static char g_certs[DIR_MAX];
static char g_work[DIR_MAX]; /* temp dir: docroot, server logs */
static char g_docroot[DIR_MAX];
static char g_nghttpd[PATH_MAX];
static char g_openssl[PATH_MAX];
static uint8_t *g_big; /* contents of docroot/big.bin */

static bool find_in_path(const char *name, char *out, size_t n) {
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t len = colon ? (size_t)(colon - path) : strlen(path);
    if (len > 0) {
      snprintf(out, n, "%.*s/%s", (int)len, path, name);
      if (access(out, X_OK) == 0)
        return true;
    }
    if (!colon)
      break;
    path = colon + 1;
  }
  return false;
}

static void cert_path(char *out, size_t n, const char *file) {
  snprintf(out, n, "%s/%s", g_certs, file);
}

static bool write_file(const char *dir, const char *name, const void *data,
                       size_t len) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *fp = fopen(p, "wb");
  if (!fp)
    return false;
  bool ok = fwrite(data, 1, len, fp) == len;
  return fclose(fp) == 0 && ok;
}

static bool contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return true;
  }
  return false;
}

/* ---- servers --------------------------------------------------------- */

typedef enum server_kind {
  NGHTTPD,        /* nghttpd over TLS serving the docroot */
  NGHTTPD_PLAIN,  /* nghttpd --no-tls: not a TLS server at all */
  S_SERVER,       /* openssl s_server -www */
  SILENT_LISTENER /* a listening socket that never reads or answers */
} server_kind;

typedef struct server_spec {
  server_kind kind;
  const char *cert;   /* base name in the cert dir: "localhost" */
  bool verify_client; /* nghttpd --verify-client */
  const char *alpn;   /* s_server -alpn, NULL: no ALPN callback at all */
  bool tls12_only;    /* s_server -tls1_2 */
} server_spec;

typedef struct server {
  pid_t pid;
  int listen_fd; /* SILENT_LISTENER only */
  unsigned port;
  char log[PATH_MAX];
} server;

static unsigned pick_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  unsigned port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static bool port_accepts(unsigned port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* fork/exec with stdout+stderr to `log`; the child dies with this process. */
static pid_t spawn(const char *bin, char *const argv[], const char *log) {
  int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0)
    return -1;
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls until exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    setpgid(0, 0);
    if (in >= 0)
      dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execv(bin, argv);
    _exit(127);
  }
  close(out);
  if (in >= 0)
    close(in);
  return pid;
}

static void stop_server(server *s) {
  if (s->listen_fd >= 0) {
    close(s->listen_fd);
    s->listen_fd = -1;
  }
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGTERM);
  int64_t deadline = now_ms() + SERVER_STOP_MS;
  for (;;) {
    pid_t r = waitpid(s->pid, NULL, WNOHANG);
    if (r == s->pid || (r < 0 && errno != EINTR))
      break;
    if (now_ms() > deadline) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, NULL, 0);
      break;
    }
    sleep_ms(5); /* throttles the poll for the child's exit */
  }
  s->pid = 0;
}

static int start_silent_listener(server *s) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  /* The kernel completes TCP handshakes from the backlog; nobody ever
   * accepts, so the ClientHello is never answered. */
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  s->listen_fd = fd;
  s->port = ntohs(a.sin_port);
  return 0;
}

static int start_server(server *s, const server_spec *spec, const char *tag) {
  s->pid = 0;
  s->listen_fd = -1;
  if (spec->kind == SILENT_LISTENER)
    return start_silent_listener(s);
  snprintf(s->log, sizeof s->log, "%s/%s.log", g_work, tag);
  char key[PATH_MAX], cert[PATH_MAX], port[16], accept_arg[48];
  snprintf(key, sizeof key, "%s/%s.key", g_certs,
           spec->cert ? spec->cert : "localhost");
  snprintf(cert, sizeof cert, "%s/%s.pem", g_certs,
           spec->cert ? spec->cert : "localhost");
  for (int attempt = 1; attempt <= 5; attempt++) {
    s->port = pick_port();
    if (s->port == 0)
      return -1;
    snprintf(port, sizeof port, "%u", s->port);
    snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%u", s->port);
    char *argv[24];
    int n = 0;
    const char *bin;
    if (spec->kind == NGHTTPD || spec->kind == NGHTTPD_PLAIN) {
      bin = g_nghttpd;
      argv[n++] = "nghttpd";
      argv[n++] = "--verbose"; /* logs every request's :path */
      argv[n++] = "--address=127.0.0.1";
      argv[n++] = "--htdocs";
      argv[n++] = g_docroot;
      argv[n++] = "--echo-upload";
      if (spec->verify_client)
        argv[n++] = "--verify-client";
      if (spec->kind == NGHTTPD_PLAIN)
        argv[n++] = "--no-tls";
      argv[n++] = port;
      if (spec->kind == NGHTTPD) {
        argv[n++] = key;
        argv[n++] = cert;
      }
    } else {
      bin = g_openssl;
      argv[n++] = "openssl";
      argv[n++] = "s_server";
      argv[n++] = "-accept";
      argv[n++] = accept_arg;
      argv[n++] = "-cert";
      argv[n++] = cert;
      argv[n++] = "-key";
      argv[n++] = key;
      argv[n++] = "-www";
      if (spec->alpn) {
        argv[n++] = "-alpn";
        argv[n++] = (char *)spec->alpn;
      }
      if (spec->tls12_only)
        argv[n++] = "-tls1_2";
    }
    argv[n] = NULL;
    s->pid = spawn(bin, argv, s->log);
    if (s->pid < 0)
      return -1;
    int64_t deadline = now_ms() + SERVER_START_MS;
    for (;;) {
      if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
        print_error("%s exited during startup (attempt %d, port %u); log %s\n",
                    argv[0], attempt, s->port, s->log);
        s->pid = 0;
        break; /* port taken meanwhile? try another */
      }
      if (port_accepts(s->port))
        return 0;
      if (now_ms() > deadline) {
        print_error("%s did not listen on %u within %d ms\n", argv[0], s->port,
                    SERVER_START_MS);
        stop_server(s);
        return -1;
      }
      sleep_ms(2); /* throttles the poll for the listening socket */
    }
  }
  return -1;
}

/* Whether the server's log has a line "... :path: <path>" (nghttpd -v). */
static bool log_has_path(const server *s, const char *path) {
  FILE *fp = fopen(s->log, "r");
  if (!fp)
    return false;
  char want[512];
  snprintf(want, sizeof want, ":path: %s", path);
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\r\n")] = '\0';
    size_t ll = strlen(line), wl = strlen(want);
    found = ll >= wl && strcmp(line + ll - wl, want) == 0;
  }
  fclose(fp);
  return found;
}

/* ---- fixture --------------------------------------------------------- */

#define MAX_POOLS 4
#define MAX_CAPS 4

typedef struct tls_fixture {
  const server_spec *spec;
  server srv;
  h2pool *pools[MAX_POOLS];
  waiter ws[MAX_CAPS];
  capture cap[MAX_CAPS];
} tls_fixture;

static int fixture_up(void **state) {
  const server_spec *spec = *state;
  tls_fixture *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  f->spec = spec;
  f->srv.listen_fd = -1;
  for (int i = 0; i < MAX_CAPS; i++) {
    waiter_init(&f->ws[i]);
    capture_init(&f->cap[i], &f->ws[i]);
  }
  *state = f;
  static unsigned seq;
  char tag[32];
  snprintf(tag, sizeof tag, "server-%u", ++seq);
  if (start_server(&f->srv, spec, tag) != 0) {
    print_error("could not start the test server\n");
    return -1;
  }
  return 0;
}

static int fixture_down(void **state) {
  tls_fixture *f = *state;
  if (!f)
    return 0;
  /* Pools first: they run every outstanding callback into the captures. */
  for (int i = 0; i < MAX_POOLS; i++)
    h2pool_destroy(f->pools[i]);
  stop_server(&f->srv);
  for (int i = 0; i < MAX_CAPS; i++) {
    capture_free(&f->cap[i]);
    waiter_destroy(&f->ws[i]);
  }
  free(f);
  *state = NULL;
  return 0;
}

/* A config trusting `ca` (a base name in the cert dir, or NULL for the
 * system store). */
static h2pool_config *tls_config(const char *ca) {
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  if (ca) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s.pem", g_certs, ca);
    assert_int_equal(h2pool_config_set_tls_ca_file(cfg, p), H2POOL_OK);
  }
  assert_int_equal(
      h2pool_config_set_request_timeout_ms(cfg, REQUEST_TIMEOUT_MS), H2POOL_OK);
  return cfg;
}

/* Creates a pool owned by the fixture and frees `cfg`. */
static h2pool *fx_pool(tls_fixture *f, h2pool_config *cfg) {
  int slot = 0;
  while (slot < MAX_POOLS && f->pools[slot])
    slot++;
  assert_true(slot < MAX_POOLS);
  int rc = h2pool_create(cfg, &f->pools[slot]);
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK)
    fail_msg("h2pool_create: %d (%s)", rc, h2pool_strerror(rc));
  assert_non_null(f->pools[slot]);
  return f->pools[slot];
}

static void fx_url(const tls_fixture *f, char *buf, size_t n, const char *host,
                   const char *path) {
  snprintf(buf, n, "https://%s:%u%s", host, f->srv.port, path);
}

/* Runs one request to completion in capture `slot` and returns it. */
static capture *fx_request(tls_fixture *f, h2pool *pool, int slot,
                           const char *method, const char *url,
                           const uint8_t *body, size_t body_len) {
  capture *c = &f->cap[slot];
  capture_free(c);
  pthread_mutex_lock(&f->ws[slot].mu);
  f->ws[slot].count = 0;
  pthread_mutex_unlock(&f->ws[slot].mu);
  capture_init(c, &f->ws[slot]);
  int rc = h2pool_request(pool, method, url, NULL, 0, body, body_len, NULL,
                          capture_cb, c, NULL);
  if (rc != H2POOL_OK)
    fail_msg("h2pool_request(%s): %d (%s)", url, rc, h2pool_strerror(rc));
  if (!waiter_wait(&f->ws[slot], 1, TLS_WAIT_MS))
    fail_msg("no completion for %s within %u ms", url, TLS_WAIT_MS);
  assert_int_equal(atomic_load(&c->calls), 1);
  return c;
}

static capture *fx_get(tls_fixture *f, h2pool *pool, int slot,
                       const char *url) {
  return fx_request(f, pool, slot, "GET", url, NULL, 0);
}

static void assert_ok_body(const capture *c, const void *want, size_t len) {
  if (c->had_err)
    fail_msg("request failed: %d (%s): %s", c->err, h2pool_strerror(c->err),
             c->message);
  assert_true(c->had_resp);
  assert_int_equal(c->status, 200);
  assert_int_equal(c->body_len, len);
  assert_memory_equal(c->body, want, len);
}

static void assert_failed_with(const capture *c, int code) {
  assert_true(c->had_err);
  if (c->err != code)
    fail_msg("got error %d (%s: %s), want %d (%s)", c->err,
             h2pool_strerror(c->err), c->message, code, h2pool_strerror(code));
  assert_false(c->had_resp);
}

static uint64_t stat_of(h2pool *pool, h2pool_stat which) {
  h2pool_stats *s = NULL;
  assert_int_equal(h2pool_stats_get(pool, &s), H2POOL_OK);
  uint64_t v = h2pool_stats_value(s, which);
  h2pool_stats_free(s);
  return v;
}

/* After a handshake failure: proves no HTTP request reached nghttpd. A probe
 * request from a second, non-verifying pool must show up in the server's log
 * first (nghttpd logs in order and flushes), then the failed request's path
 * must be absent. */
static void assert_request_never_reached_server(tls_fixture *f,
                                                const char *failed_path) {
  h2pool_config *cfg = tls_config(NULL);
  assert_int_equal(h2pool_config_set_tls_insecure_skip_verify(cfg, 1),
                   H2POOL_OK);
  h2pool *probe = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "127.0.0.1", "/probe-after-failure");
  capture *c = fx_get(f, probe, MAX_CAPS - 1, url);
  if (c->had_err)
    fail_msg("probe request failed: %d (%s): %s", c->err,
             h2pool_strerror(c->err), c->message);
  assert_int_equal(c->status, 404);
  int64_t deadline = now_ms() + 10000;
  while (!log_has_path(&f->srv, "/probe-after-failure")) {
    if (now_ms() > deadline)
      fail_msg("probe never logged in %s", f->srv.log);
    sleep_ms(2); /* polls the log for the line that proves the flush */
  }
  if (log_has_path(&f->srv, failed_path))
    fail_msg("the rejected request %s reached the server (see %s)", failed_path,
             f->srv.log);
}

/* ---- server specs ---------------------------------------------------- */

static const server_spec spec_localhost = {NGHTTPD, "localhost", false, NULL,
                                           false};
static const server_spec spec_expired = {NGHTTPD, "expired", false, NULL,
                                         false};
static const server_spec spec_wronghost = {NGHTTPD, "wronghost", false, NULL,
                                           false};
static const server_spec spec_selfsigned = {NGHTTPD, "selfsigned", false, NULL,
                                            false};
static const server_spec spec_untrusted = {NGHTTPD, "untrusted", false, NULL,
                                           false};
static const server_spec spec_iponly = {NGHTTPD, "iponly", false, NULL, false};
static const server_spec spec_mtls = {NGHTTPD, "localhost", true, NULL, false};
static const server_spec spec_plain = {NGHTTPD_PLAIN, NULL, false, NULL, false};
static const server_spec spec_http11_alpn = {S_SERVER, "localhost", false,
                                             "http/1.1", false};
static const server_spec spec_no_alpn = {S_SERVER, "localhost", false, NULL,
                                         false};
static const server_spec spec_tls12_h2 = {S_SERVER, "localhost", false, "h2",
                                          true};
static const server_spec spec_silent = {SILENT_LISTENER, NULL, false, NULL,
                                        false};

/* ---- tests: verification succeeds ------------------------------------ */

static void test_valid_chain_with_ca_file_serves_bytes_exactly(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  assert_ok_body(fx_get(f, pool, 0, url), SMALL_BODY, strlen(SMALL_BODY));
  fx_url(f, url, sizeof url, "localhost", "/big.bin");
  assert_ok_body(fx_get(f, pool, 1, url), g_big, BIG_SIZE);
  assert_int_equal(stat_of(pool, H2POOL_STAT_TLS_HANDSHAKES), 1);
  assert_int_equal(stat_of(pool, H2POOL_STAT_CONNECTIONS_CREATED), 1);
}

static void test_valid_chain_with_ip_url_verifies_ip_san(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "127.0.0.1", "/");
  assert_ok_body(fx_get(f, pool, 0, url), INDEX_BODY, strlen(INDEX_BODY));
}

static void test_ip_only_san_matches_ip_url_not_host_name(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "127.0.0.1", "/small.txt");
  assert_ok_body(fx_get(f, pool, 0, url), SMALL_BODY, strlen(SMALL_BODY));
  /* "localhost" resolves to the same server, but the certificate names
   * only the address. */
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  capture *c = fx_get(f, pool, 1, url);
  assert_failed_with(c, H2POOL_ERR_TLS_VERIFY);
  if (!contains_ci(c->message, "hostname mismatch"))
    fail_msg("message lacks OpenSSL's reason 'hostname mismatch': %s",
             c->message);
}

static void test_insecure_skip_verify_accepts_self_signed(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config(NULL);
  assert_int_equal(h2pool_config_set_tls_insecure_skip_verify(cfg, 1),
                   H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/big.bin");
  assert_ok_body(fx_get(f, pool, 0, url), g_big, BIG_SIZE);
}

/* ---- tests: verification fails --------------------------------------- */

/* GETs a path that must never reach the server and checks the failure. */
static void expect_verify_failure(tls_fixture *f, const char *ca,
                                  const char *reason, const char *reason2) {
  h2pool *pool = fx_pool(f, tls_config(ca));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/must-not-arrive");
  capture *c = fx_get(f, pool, 0, url);
  assert_failed_with(c, H2POOL_ERR_TLS_VERIFY);
  if (!contains_ci(c->message, reason) &&
      !(reason2 && contains_ci(c->message, reason2)))
    fail_msg("message lacks OpenSSL's reason '%s': %s", reason, c->message);
  assert_int_equal(stat_of(pool, H2POOL_STAT_TLS_HANDSHAKES), 0);
  assert_int_equal(stat_of(pool, H2POOL_STAT_REQUESTS_FAILED), 1);
  assert_request_never_reached_server(f, "/must-not-arrive");
}

static void test_expired_certificate_fails_verify(void **state) {
  expect_verify_failure(*state, "ca", "expired", NULL);
}

static void test_wrong_host_name_fails_verify(void **state) {
  expect_verify_failure(*state, "ca", "hostname mismatch", NULL);
}

static void test_self_signed_certificate_fails_verify(void **state) {
  /* OpenSSL 3 says "self-signed", older ones "self signed". */
  expect_verify_failure(*state, "ca", "self-signed", "self signed");
}

static void test_untrusted_ca_fails_verify(void **state) {
  expect_verify_failure(*state, "ca", "unable to get local issuer", NULL);
}

static void test_default_trust_store_rejects_test_ca(void **state) {
  /* No CA file: the system store, which does not know the test CA. */
  expect_verify_failure(*state, NULL, "unable to get local issuer", NULL);
}

/* ---- tests: mutual TLS ----------------------------------------------- */

static void test_mutual_tls_with_client_certificate_succeeds(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config("ca");
  char cert[PATH_MAX], key[PATH_MAX];
  cert_path(cert, sizeof cert, "client.pem");
  cert_path(key, sizeof key, "client.key");
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, cert, key),
                   H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  assert_ok_body(fx_get(f, pool, 0, url), SMALL_BODY, strlen(SMALL_BODY));
}

static void test_mutual_tls_without_client_certificate_fails(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/must-not-arrive");
  capture *c = fx_get(f, pool, 0, url);
  /* With TLS 1.3 the server rejects the missing certificate after the
   * client's Finished (alert "certificate required"); that is still the
   * handshake failing, not a lost connection. */
  assert_failed_with(c, H2POOL_ERR_TLS_HANDSHAKE);
  if (!contains_ci(c->message, "certificate"))
    fail_msg("message lacks OpenSSL's reason: %s", c->message);
  assert_int_equal(stat_of(pool, H2POOL_STAT_REQUESTS_FAILED), 1);
  if (log_has_path(&f->srv, "/must-not-arrive"))
    fail_msg("the request reached the server without a client certificate");
}

/* ---- tests: configuration errors ------------------------------------- */

static void expect_create_fails(h2pool_config *cfg, int want) {
  h2pool *pool = NULL;
  int rc = h2pool_create(cfg, &pool);
  h2pool_config_free(cfg);
  if (rc != want) {
    h2pool_destroy(pool);
    fail_msg("h2pool_create: %d (%s), want %d (%s)", rc, h2pool_strerror(rc),
             want, h2pool_strerror(want));
  }
  assert_null(pool);
}

static void test_missing_ca_file_fails_create_with_tls_config(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/no-such-ca.pem", g_work);
  assert_int_equal(h2pool_config_set_tls_ca_file(cfg, p), H2POOL_OK);
  expect_create_fails(cfg, H2POOL_ERR_TLS_CONFIG);
}

static void test_ca_file_without_certificates_fails_create(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/small.txt", g_docroot); /* exists, not PEM */
  assert_int_equal(h2pool_config_set_tls_ca_file(cfg, p), H2POOL_OK);
  expect_create_fails(cfg, H2POOL_ERR_TLS_CONFIG);
}

static void test_missing_ca_dir_fails_create_with_tls_config(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/no-such-dir", g_work);
  assert_int_equal(h2pool_config_set_tls_ca_dir(cfg, p), H2POOL_OK);
  expect_create_fails(cfg, H2POOL_ERR_TLS_CONFIG);
}

static void test_client_key_not_matching_cert_fails_create(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char cert[PATH_MAX], key[PATH_MAX];
  cert_path(cert, sizeof cert, "client.pem");
  cert_path(key, sizeof key, "client-mismatch.key");
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, cert, key),
                   H2POOL_OK);
  expect_create_fails(cfg, H2POOL_ERR_TLS_CONFIG);
}

static void test_missing_client_cert_file_fails_create(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char cert[PATH_MAX], key[PATH_MAX];
  snprintf(cert, sizeof cert, "%s/no-such-client.pem", g_work);
  cert_path(key, sizeof key, "client.key");
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, cert, key),
                   H2POOL_OK);
  expect_create_fails(cfg, H2POOL_ERR_TLS_CONFIG);
}

static void test_client_cert_needs_both_files(void **state) {
  (void)state;
  h2pool_config *cfg = NULL;
  assert_int_equal(h2pool_config_new(&cfg), H2POOL_OK);
  char cert[PATH_MAX];
  cert_path(cert, sizeof cert, "client.pem");
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, cert, NULL),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, NULL, cert),
                   H2POOL_ERR_INVALID_ARGUMENT);
  assert_int_equal(h2pool_config_set_tls_client_cert(cfg, NULL, NULL),
                   H2POOL_OK);
  h2pool_config_free(cfg);
}

/* ---- tests: connection reuse and session resumption ------------------ */

static void test_sequential_requests_reuse_one_tls_connection(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  for (int i = 0; i < 200; i++) {
    capture *c = fx_get(f, pool, 0, url);
    if (c->had_err || c->status != 200 || c->body_len != strlen(SMALL_BODY) ||
        memcmp(c->body, SMALL_BODY, c->body_len) != 0)
      fail_msg("request %d: err %d (%s) status %d len %zu", i, c->err,
               c->message, c->status, c->body_len);
  }
  uint64_t created = stat_of(pool, H2POOL_STAT_CONNECTIONS_CREATED);
  uint64_t handshakes = stat_of(pool, H2POOL_STAT_TLS_HANDSHAKES);
  uint64_t reused = stat_of(pool, H2POOL_STAT_CONNECTIONS_REUSED);
  print_message("created %llu, handshakes %llu, reused %llu\n",
                (unsigned long long)created, (unsigned long long)handshakes,
                (unsigned long long)reused);
  assert_int_equal(created, 1);
  assert_int_equal(handshakes, created);
  assert_true(reused >= 199);
  assert_int_equal(stat_of(pool, H2POOL_STAT_TLS_RESUMED), 0);
  assert_int_equal(stat_of(pool, H2POOL_STAT_REQUESTS_COMPLETED), 200);
}

static bool one_connection_closed(void *arg) {
  h2pool_stats *s = NULL;
  if (h2pool_stats_get(arg, &s) != H2POOL_OK)
    return false;
  bool closed = h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_CLOSED) >= 1;
  h2pool_stats_free(s);
  return closed;
}

/* nghttpd (OpenSSL server defaults) issues TLS 1.3 session tickets and keeps
 * a TLS 1.2 session cache; `openssl s_client -sess_in` resumes against it. */
static void test_reconnect_after_idle_close_resumes_session(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_idle_timeout_ms(cfg, 50), H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  assert_ok_body(fx_get(f, pool, 0, url), SMALL_BODY, strlen(SMALL_BODY));
  assert_true(poll_until(one_connection_closed, pool, 10000));
  assert_int_equal(stat_of(pool, H2POOL_STAT_CONNECTIONS_CLOSED), 1);
  assert_ok_body(fx_get(f, pool, 1, url), SMALL_BODY, strlen(SMALL_BODY));
  assert_int_equal(stat_of(pool, H2POOL_STAT_CONNECTIONS_CREATED), 2);
  assert_int_equal(stat_of(pool, H2POOL_STAT_TLS_HANDSHAKES), 2);
  uint64_t resumed = stat_of(pool, H2POOL_STAT_TLS_RESUMED);
  if (resumed < 1)
    fail_msg("second handshake did not resume the session (TLS_RESUMED %llu)",
             (unsigned long long)resumed);
}

/* A connection retired after max_requests_per_connection is an orderly
 * close too: it must end with close_notify, or OpenSSL marks the session
 * as not resumable when the connection is freed. */
static void test_reconnect_after_drained_close_resumes_session(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_max_requests_per_connection(cfg, 1),
                   H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/small.txt");
  assert_ok_body(fx_get(f, pool, 0, url), SMALL_BODY, strlen(SMALL_BODY));
  assert_true(poll_until(one_connection_closed, pool, 10000));
  assert_ok_body(fx_get(f, pool, 1, url), SMALL_BODY, strlen(SMALL_BODY));
  assert_int_equal(stat_of(pool, H2POOL_STAT_CONNECTIONS_CREATED), 2);
  uint64_t resumed = stat_of(pool, H2POOL_STAT_TLS_RESUMED);
  if (resumed < 1)
    fail_msg("second handshake did not resume the session (TLS_RESUMED %llu)",
             (unsigned long long)resumed);
}

/* ---- tests: bodies both ways, multiplexed ---------------------------- */

static void test_post_1mib_body_is_echoed_exactly(void **state) {
  tls_fixture *f = *state;
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/echo");
  capture *c = fx_request(f, pool, 0, "POST", url, g_big, BIG_SIZE);
  assert_ok_body(c, g_big, BIG_SIZE); /* nghttpd --echo-upload */
}

typedef struct many {
  waiter w;
  capture cap[32];
} many;

static void test_concurrent_large_responses_on_one_connection(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_max_connections_per_endpoint(cfg, 1),
                   H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  many *m = calloc(1, sizeof *m);
  assert_non_null(m);
  waiter_init(&m->w);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/big.bin");
  int accepted = 0;
  for (int i = 0; i < 32; i++) {
    capture_init(&m->cap[i], &m->w);
    if (get_capture(pool, url, NULL, &m->cap[i], NULL) == H2POOL_OK)
      accepted++;
  }
  bool done = waiter_wait(&m->w, (size_t)accepted, 60000);
  /* m is referenced by the pool until every callback has run. */
  h2pool_stats *st = NULL;
  assert_int_equal(h2pool_stats_get(pool, &st), H2POOL_OK);
  for (int i = 0; i < MAX_POOLS; i++)
    if (f->pools[i] == pool)
      f->pools[i] = NULL;
  h2pool_destroy(pool);
  int bad = -1;
  for (int i = 0; i < 32 && bad < 0; i++) {
    const capture *c = &m->cap[i];
    if (c->had_err || c->status != 200 || c->body_len != BIG_SIZE ||
        memcmp(c->body, g_big, BIG_SIZE) != 0)
      bad = i;
  }
  char why[300] = "";
  if (bad >= 0)
    snprintf(why, sizeof why, "response %d: err %d (%s) status %d len %zu", bad,
             m->cap[bad].err, m->cap[bad].message, m->cap[bad].status,
             m->cap[bad].body_len);
  uint64_t created = h2pool_stats_value(st, H2POOL_STAT_CONNECTIONS_CREATED);
  h2pool_stats_free(st);
  for (int i = 0; i < 32; i++)
    capture_free(&m->cap[i]);
  waiter_destroy(&m->w);
  free(m);
  assert_int_equal(accepted, 32);
  assert_true(done);
  if (bad >= 0)
    fail_msg("%s", why);
  assert_int_equal(created, 1);
}

/* ---- tests: servers that are not HTTP/2 over TLS --------------------- */

static void expect_prompt_failure(tls_fixture *f, h2pool_config *cfg,
                                  int want) {
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/");
  int64_t t0 = now_ms();
  capture *c = fx_get(f, pool, 0, url);
  int64_t took = c->done_ms - t0;
  assert_failed_with(c, want);
  if (took > PROMPT_MS)
    fail_msg("failure took %lld ms, want under %d", (long long)took, PROMPT_MS);
}

static h2pool_config *h2_only_config(void) {
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_http_version(cfg, H2POOL_HTTP_VERSION_2),
                   H2POOL_OK);
  return cfg;
}

static void test_server_refusing_h2_in_alpn_fails_with_alpn(void **state) {
  /* s_server -alpn http/1.1 answers an "h2"-only offer with the fatal
   * no_application_protocol alert. */
  expect_prompt_failure(*state, h2_only_config(), H2POOL_ERR_TLS_ALPN);
}

static void test_server_ignoring_alpn_fails_with_alpn(void **state) {
  /* s_server without -alpn completes the handshake selecting nothing,
   * which is not HTTP/2. */
  expect_prompt_failure(*state, h2_only_config(), H2POOL_ERR_TLS_ALPN);
}

/* s_server -www answers in HTTP/1.0 and closes: the pool spoke HTTP/1.1 to
 * it, and the endpoint says so. */
static void expect_http1_answer(tls_fixture *f) {
  h2pool *pool = fx_pool(f, tls_config("ca"));
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/");
  capture *c = fx_get(f, pool, 0, url);
  if (c->had_err)
    fail_msg("request failed: %d (%s): %s", c->err, h2pool_strerror(c->err),
             c->message);
  assert_int_equal(c->status, 200);
  assert_int_equal(c->protocol, H2POOL_PROTOCOL_HTTP_1_0);
  assert_true(c->body_len > 0);
  h2pool_stats *st = NULL;
  assert_int_equal(h2pool_stats_get(pool, &st), H2POOL_OK);
  assert_int_equal(h2pool_stats_endpoint_count(st), 1);
  assert_int_equal(h2pool_stats_endpoint_protocol(st, 0),
                   H2POOL_PROTOCOL_HTTP_1_1);
  h2pool_stats_free(st);
}

static void test_server_selecting_http11_in_alpn_gets_http11(void **state) {
  expect_http1_answer(*state);
}

static void test_server_ignoring_alpn_gets_http11(void **state) {
  expect_http1_answer(*state);
}

static void test_plaintext_server_fails_handshake(void **state) {
  /* An h2c server answers the ClientHello with cleartext bytes. */
  expect_prompt_failure(*state, tls_config("ca"), H2POOL_ERR_TLS_HANDSHAKE);
}

static void test_min_version_1_3_refuses_tls12_server(void **state) {
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(
      h2pool_config_set_tls_min_version(cfg, H2POOL_TLS_VERSION_1_3),
      H2POOL_OK);
  expect_prompt_failure(*state, cfg, H2POOL_ERR_TLS_HANDSHAKE);
}

/* s_server -tls1_2 -alpn h2 -www completes a TLS 1.2 handshake selecting
 * "h2" but never sends HTTP/2 SETTINGS. */
static capture *get_from_tls12_h2_server(tls_fixture *f, h2pool **pool_out) {
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_settings_timeout_ms(cfg, 500), H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/");
  *pool_out = pool;
  return fx_get(f, pool, 0, url);
}

static void test_tls12_server_selecting_h2_passes_handshake(void **state) {
  h2pool *pool = NULL;
  capture *c = get_from_tls12_h2_server(*state, &pool);
  /* Past TLS and ALPN, the failure is HTTP/2's: no SETTINGS arrived. */
  assert_failed_with(c, H2POOL_ERR_SETTINGS_TIMEOUT);
}

static void test_tls_handshake_counted_even_without_settings(void **state) {
  h2pool *pool = NULL;
  capture *c = get_from_tls12_h2_server(*state, &pool);
  assert_true(c->had_err);
  /* H2POOL_STAT_TLS_HANDSHAKES: "TLS handshakes completed". */
  assert_int_equal(stat_of(pool, H2POOL_STAT_TLS_HANDSHAKES), 1);
}

static void test_silent_server_hits_handshake_timeout(void **state) {
  tls_fixture *f = *state;
  h2pool_config *cfg = tls_config("ca");
  assert_int_equal(h2pool_config_set_tls_handshake_timeout_ms(cfg, 300),
                   H2POOL_OK);
  h2pool *pool = fx_pool(f, cfg);
  char url[256];
  fx_url(f, url, sizeof url, "localhost", "/");
  int64_t t0 = now_ms();
  capture *c = fx_get(f, pool, 0, url);
  int64_t took = c->done_ms - t0;
  assert_failed_with(c, H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT);
  if (took < 250 || took > PROMPT_MS)
    fail_msg("handshake timeout after %lld ms, want about 300",
             (long long)took);
}

/* ---- main ------------------------------------------------------------ */

static int run(const char *cmd) {
  int rc = system(cmd);
  return rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

static void remove_work(void) {
  if (!g_work[0])
    return;
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_work);
  run(cmd);
}

static int prepare(int argc, char **argv) {
  if (!find_in_path("nghttpd", g_nghttpd, sizeof g_nghttpd) ||
      !find_in_path("openssl", g_openssl, sizeof g_openssl)) {
    fprintf(stderr, "SKIP: nghttpd or openssl not installed\n");
    return 77;
  }
  const char *tmp = getenv("TMPDIR");
  if (!tmp || strlen(tmp) >= DIR_MAX - 64)
    tmp = "/tmp";
  snprintf(g_work, sizeof g_work, "%s/h2pool-tls.XXXXXX", tmp);
  if (!mkdtemp(g_work)) {
    perror("mkdtemp");
    return 1;
  }
  atexit(remove_work);
  const char *certs = argc > 1 ? argv[1] : getenv("H2POOL_TLS_CERT_DIR");
  if (certs && strlen(certs) >= DIR_MAX - 64) {
    fprintf(stderr, "certificate directory path too long\n");
    return 1;
  }
  if (certs && *certs) {
    snprintf(g_certs, sizeof g_certs, "%s", certs);
  } else {
    snprintf(g_certs, sizeof g_certs, "%.900s/certs", g_work);
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null", GEN_CERTS_SCRIPT,
             g_certs);
    if (run(cmd) != 0) {
      fprintf(stderr, "gen_certs.sh failed\n");
      return 1;
    }
  }
  char probe[PATH_MAX];
  cert_path(probe, sizeof probe, "ca.pem");
  if (access(probe, R_OK) != 0) {
    fprintf(stderr, "no certificates in %s (run gen_certs.sh)\n", g_certs);
    return 1;
  }
  snprintf(g_docroot, sizeof g_docroot, "%.900s/docroot", g_work);
  if (mkdir(g_docroot, 0755) != 0)
    return 1;
  g_big = malloc(BIG_SIZE);
  if (!g_big)
    return 1;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < BIG_SIZE; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g_big[i] = (uint8_t)(x >> 24);
  }
  if (!write_file(g_docroot, "small.txt", SMALL_BODY, strlen(SMALL_BODY)) ||
      !write_file(g_docroot, "index.html", INDEX_BODY, strlen(INDEX_BODY)) ||
      !write_file(g_docroot, "big.bin", g_big, BIG_SIZE))
    return 1;
  /* libh2pool does not suppress SIGPIPE (OpenSSL's socket BIO write()s to a
   * socket the server may have closed, e.g. after rejecting a handshake);
   * ignore it so such a test fails on its assertions instead of dying. The
   * tool has no such guard: tls_interop sees it as exit status 141. */
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

#define T(fn, spec)                                                            \
  cmocka_unit_test_prestate_setup_teardown(fn, fixture_up, fixture_down,       \
                                           (void *)&(spec))

int main(int argc, char **argv) {
  int rc = prepare(argc, argv);
  if (rc != 0)
    return rc;
  const struct CMUnitTest tests[] = {
      T(test_valid_chain_with_ca_file_serves_bytes_exactly, spec_localhost),
      T(test_valid_chain_with_ip_url_verifies_ip_san, spec_localhost),
      T(test_ip_only_san_matches_ip_url_not_host_name, spec_iponly),
      T(test_insecure_skip_verify_accepts_self_signed, spec_selfsigned),
      T(test_expired_certificate_fails_verify, spec_expired),
      T(test_wrong_host_name_fails_verify, spec_wronghost),
      T(test_self_signed_certificate_fails_verify, spec_selfsigned),
      T(test_untrusted_ca_fails_verify, spec_untrusted),
      T(test_default_trust_store_rejects_test_ca, spec_localhost),
      T(test_mutual_tls_with_client_certificate_succeeds, spec_mtls),
      T(test_mutual_tls_without_client_certificate_fails, spec_mtls),
      cmocka_unit_test(test_missing_ca_file_fails_create_with_tls_config),
      cmocka_unit_test(test_ca_file_without_certificates_fails_create),
      cmocka_unit_test(test_missing_ca_dir_fails_create_with_tls_config),
      cmocka_unit_test(test_client_key_not_matching_cert_fails_create),
      cmocka_unit_test(test_missing_client_cert_file_fails_create),
      cmocka_unit_test(test_client_cert_needs_both_files),
      T(test_sequential_requests_reuse_one_tls_connection, spec_localhost),
      T(test_reconnect_after_idle_close_resumes_session, spec_localhost),
      T(test_reconnect_after_drained_close_resumes_session, spec_localhost),
      T(test_post_1mib_body_is_echoed_exactly, spec_localhost),
      T(test_concurrent_large_responses_on_one_connection, spec_localhost),
      T(test_server_refusing_h2_in_alpn_fails_with_alpn, spec_http11_alpn),
      T(test_server_ignoring_alpn_fails_with_alpn, spec_no_alpn),
      T(test_server_selecting_http11_in_alpn_gets_http11, spec_http11_alpn),
      T(test_server_ignoring_alpn_gets_http11, spec_no_alpn),
      T(test_plaintext_server_fails_handshake, spec_plain),
      T(test_min_version_1_3_refuses_tls12_server, spec_tls12_h2),
      T(test_tls12_server_selecting_h2_passes_handshake, spec_tls12_h2),
      T(test_tls_handshake_counted_even_without_settings, spec_tls12_h2),
      T(test_silent_server_hits_handshake_timeout, spec_silent),
  };
  return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
