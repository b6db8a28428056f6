/*
 * minimal.c - the smallest complete libh2pool program.
 *
 * Creates a pool, sends one GET to the URL given on the command line, prints
 * the status and the body, and destroys the pool. Exits 0 when a response
 * arrived (whatever its HTTP status), 1 on an error, 2 on bad usage.
 *
 *   cc minimal.c $(pkg-config --cflags --libs h2pool) -pthread -o minimal
 *   ./minimal http://127.0.0.1:8080/
 *
 * The completion callback runs on the pool's own thread; main() waits for it
 * on a condition variable, with a deadline.
 */
#define _POSIX_C_SOURCE 200809L

#include <h2pool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The request's timeout; main() waits a little longer than this, so the
 * callback (with H2POOL_ERR_TIMEOUT at worst) normally arrives first. */
#define REQUEST_TIMEOUT_MS 10000
#define WAIT_SECONDS 15

struct result {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;          /* HTTP status on success */
  int error;           /* H2POOL_ERR_* on failure, else 0 */
  char message[256];   /* error message, copied */
  unsigned char *body; /* copied: the response is borrowed */
  size_t body_len;
};

/* Runs on the pool's loop thread. resp and err are valid only during the
 * call, so everything kept is copied. */
static void on_response(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  struct result *r = user_data;
  pthread_mutex_lock(&r->mu);
  if (err != NULL) {
    r->error = h2pool_error_code(err);
    snprintf(r->message, sizeof r->message, "%s", h2pool_error_message(err));
  } else {
    size_t len = 0;
    const uint8_t *body = h2pool_response_body(resp, &len);
    r->status = h2pool_response_status(resp);
    r->body = malloc(len + 1);
    if (r->body != NULL) {
      memcpy(r->body, body, len);
      r->body_len = len;
    } else {
      r->error = H2POOL_ERR_NOMEM;
      snprintf(r->message, sizeof r->message, "out of memory copying body");
    }
  }
  r->done = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int main(int argc, char **argv) {
  struct result r;
  h2pool_config *cfg = NULL;
  h2pool *pool = NULL;
  struct timespec deadline;
  int rc, timed_out = 0, exit_code = 1;

  if (argc != 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }

  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);

  rc = h2pool_config_new(&cfg);
  if (rc == 0)
    rc = h2pool_config_set_request_timeout_ms(cfg, REQUEST_TIMEOUT_MS);
  if (rc == 0)
    rc = h2pool_create(cfg, &pool);
  h2pool_config_free(cfg); /* the pool keeps its own copy */
  if (rc != 0) {
    fprintf(stderr, "h2pool_create: %s\n", h2pool_strerror(rc));
    return 1;
  }

  rc = h2pool_request(pool, "GET", argv[1], NULL, 0, NULL, 0, NULL, on_response,
                      &r, NULL);
  if (rc != 0) {
    /* Refused: the callback will not run. */
    fprintf(stderr, "h2pool_request: %s\n", h2pool_strerror(rc));
    h2pool_destroy(pool);
    return 1;
  }

  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_SECONDS;
  pthread_mutex_lock(&r.mu);
  while (!r.done) {
    if (pthread_cond_timedwait(&r.cv, &r.mu, &deadline) == ETIMEDOUT) {
      timed_out = !r.done;
      break;
    }
  }
  pthread_mutex_unlock(&r.mu);

  /* Completes any request still outstanding (with H2POOL_ERR_POOL_CLOSED)
   * before returning, so r is no longer touched after this. */
  h2pool_destroy(pool);

  if (timed_out) {
    fprintf(stderr, "no response within %d s\n", WAIT_SECONDS);
  } else if (r.error != 0) {
    fprintf(stderr, "request failed: %s (%s)\n", h2pool_strerror(r.error),
            r.message);
  } else {
    printf("status: %d\n", r.status);
    fwrite(r.body, 1, r.body_len, stdout);
    exit_code = fflush(stdout) == 0 ? 0 : 1;
  }

  free(r.body);
  pthread_cond_destroy(&r.cv);
  pthread_mutex_destroy(&r.mu);
  return exit_code;
}
