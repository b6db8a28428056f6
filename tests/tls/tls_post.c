/* POSTs a file's bytes over https:// and reports the response, for the TLS
 * interop script (the h2pool tool's --data takes its body as one argument,
 * which Linux caps at 128 KiB).
 *
 *   tls_post CA_FILE URL BODY_FILE
 *
 * Writes "status N" to stderr and the response body to stdout. Exits 0 when
 * a response arrived (any status), 1 when the request failed, 2 on usage or
 * local errors. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2pool.h"

typedef struct result {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;
  int err;
  char message[512];
  unsigned char *body;
  size_t body_len;
} result;

static void on_done(const h2pool_response *resp, const h2pool_error *err,
                    void *user_data) {
  result *r = user_data;
  pthread_mutex_lock(&r->mu);
  if (err) {
    r->err = h2pool_error_code(err);
    snprintf(r->message, sizeof r->message, "%s", h2pool_error_message(err));
  } else {
    r->status = h2pool_response_status(resp);
    size_t len = 0;
    const uint8_t *b = h2pool_response_body(resp, &len);
    r->body = malloc(len ? len : 1);
    if (r->body) {
      memcpy(r->body, b, len);
      r->body_len = len;
    }
  }
  r->done = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NULL;
  size_t cap = 1 << 20, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, fp);
    if (n < cap)
      break;
    unsigned char *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tls_post CA_FILE URL BODY_FILE\n");
    return 2;
  }
  size_t len = 0;
  unsigned char *body = read_all(argv[3], &len);
  if (!body) {
    perror(argv[3]);
    return 2;
  }
  h2pool_config *cfg = NULL;
  h2pool *pool = NULL;
  int rc = h2pool_config_new(&cfg);
  if (rc == H2POOL_OK)
    rc = h2pool_config_set_tls_ca_file(cfg, argv[1]);
  if (rc == H2POOL_OK)
    rc = h2pool_config_set_request_timeout_ms(cfg, 30000);
  if (rc == H2POOL_OK)
    rc = h2pool_create(cfg, &pool);
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "tls_post: pool: %s\n", h2pool_strerror(rc));
    free(body);
    return 2;
  }
  result r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  static const h2pool_header ctype = {"content-type", 12,
                                      "application/octet-stream", 24};
  rc = h2pool_request(pool, "POST", argv[2], &ctype, 1, body, len, NULL,
                      on_done, &r, NULL);
  if (rc == H2POOL_OK) {
    pthread_mutex_lock(&r.mu);
    while (!r.done)
      pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
  }
  h2pool_destroy(pool);
  free(body);
  if (rc != H2POOL_OK) {
    fprintf(stderr, "tls_post: request refused: %s\n", h2pool_strerror(rc));
    return 2;
  }
  if (r.err) {
    fprintf(stderr, "tls_post: %s: %s: %s\n", argv[2], h2pool_strerror(r.err),
            r.message);
    return 1;
  }
  fprintf(stderr, "status %d\n", r.status);
  fwrite(r.body, 1, r.body_len, stdout);
  free(r.body);
  return fflush(stdout) == 0 ? 0 : 2;
}
