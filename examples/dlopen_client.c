/*
 * dlopen_client.c - use libh2pool without linking to it.
 *
 * Loads the library at run time, resolves only the functions it calls,
 * checks that the library's major version is the one this program was
 * compiled for, and sends one GET. h2pool.h is included for its types and
 * macros only; no h2pool_* function is called directly, so the program
 * builds without -lh2pool:
 *
 *   cc -I/usr/local/include dlopen_client.c -ldl -pthread -o dlopen_client
 *   ./dlopen_client /usr/local/lib/libh2pool.so.0 http://127.0.0.1:8080/
 *
 * Usage: dlopen_client [LIBRARY] URL. LIBRARY defaults to "libh2pool.so.0",
 * found on the loader's search path.
 * Exits 0 when a response arrived, 1 on an error, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <h2pool.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REQUEST_TIMEOUT_MS 10000
#define WAIT_SECONDS 15

/* Function pointer types, one per function used, matching h2pool.h. */
typedef uint32_t (*version_fn)(const char **str);
typedef const char *(*strerror_fn)(int code);
typedef int (*config_new_fn)(h2pool_config **out);
typedef void (*config_free_fn)(h2pool_config *cfg);
typedef int (*config_set_request_timeout_ms_fn)(h2pool_config *cfg,
                                                uint32_t ms);
typedef int (*create_fn)(const h2pool_config *cfg, h2pool **out);
typedef void (*destroy_fn)(h2pool *pool);
typedef int (*request_fn)(h2pool *pool, const char *method, const char *url,
                          const h2pool_header *headers, size_t nheaders,
                          const uint8_t *body, size_t body_len,
                          const h2pool_request_opts *opts,
                          h2pool_response_cb cb, void *user_data,
                          uint64_t *out_id);
typedef int (*error_code_fn)(const h2pool_error *err);
typedef const char *(*error_message_fn)(const h2pool_error *err);
typedef int (*response_status_fn)(const h2pool_response *resp);
typedef const uint8_t *(*response_body_fn)(const h2pool_response *resp,
                                           size_t *len);

static struct {
  version_fn version;
  strerror_fn strerror;
  config_new_fn config_new;
  config_free_fn config_free;
  config_set_request_timeout_ms_fn config_set_request_timeout_ms;
  create_fn create;
  destroy_fn destroy;
  request_fn request;
  error_code_fn error_code;
  error_message_fn error_message;
  response_status_fn response_status;
  response_body_fn response_body;
} api;

/* Looks `name` up and stores it in *fn (a function pointer of any type).
 * dlsym returns an object pointer; copying its bytes is the conversion
 * POSIX guarantees, and unlike a cast it is valid ISO C. */
static int resolve(void *lib, const char *name, void *fn, size_t fn_size) {
  void *sym;
  dlerror();
  sym = dlsym(lib, name);
  if (sym == NULL) {
    const char *e = dlerror();
    fprintf(stderr, "dlsym(%s): %s\n", name, e != NULL ? e : "NULL symbol");
    return -1;
  }
  if (fn_size != sizeof sym)
    return -1;
  memcpy(fn, &sym, sizeof sym);
  return 0;
}

#define RESOLVE(lib, field, name)                                              \
  resolve((lib), (name), &api.field, sizeof api.field)

/* Compile-time check that a typedef matches the header's declaration: the
 * compiler diagnoses comparing distinct pointer types, and sizeof does not
 * evaluate its operand, so no reference to the function is emitted. */
#define CHECK_TYPE(fn_type, fn) ((void)sizeof((fn_type)0 == &(fn)))

static int load_api(void *lib) {
  CHECK_TYPE(version_fn, h2pool_version);
  CHECK_TYPE(strerror_fn, h2pool_strerror);
  CHECK_TYPE(config_new_fn, h2pool_config_new);
  CHECK_TYPE(config_free_fn, h2pool_config_free);
  CHECK_TYPE(config_set_request_timeout_ms_fn,
             h2pool_config_set_request_timeout_ms);
  CHECK_TYPE(create_fn, h2pool_create);
  CHECK_TYPE(destroy_fn, h2pool_destroy);
  CHECK_TYPE(request_fn, h2pool_request);
  CHECK_TYPE(error_code_fn, h2pool_error_code);
  CHECK_TYPE(error_message_fn, h2pool_error_message);
  CHECK_TYPE(response_status_fn, h2pool_response_status);
  CHECK_TYPE(response_body_fn, h2pool_response_body);
  return RESOLVE(lib, version, "h2pool_version") |
         RESOLVE(lib, strerror, "h2pool_strerror") |
         RESOLVE(lib, config_new, "h2pool_config_new") |
         RESOLVE(lib, config_free, "h2pool_config_free") |
         RESOLVE(lib, config_set_request_timeout_ms,
                 "h2pool_config_set_request_timeout_ms") |
         RESOLVE(lib, create, "h2pool_create") |
         RESOLVE(lib, destroy, "h2pool_destroy") |
         RESOLVE(lib, request, "h2pool_request") |
         RESOLVE(lib, error_code, "h2pool_error_code") |
         RESOLVE(lib, error_message, "h2pool_error_message") |
         RESOLVE(lib, response_status, "h2pool_response_status") |
         RESOLVE(lib, response_body, "h2pool_response_body");
}

struct result {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;
  size_t body_len;
  int error;
  char message[256];
};

/* Runs on the pool's loop thread; resp and err are borrowed. */
static void on_response(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  struct result *r = user_data;
  pthread_mutex_lock(&r->mu);
  if (err != NULL) {
    r->error = api.error_code(err);
    snprintf(r->message, sizeof r->message, "%s", api.error_message(err));
  } else {
    r->status = api.response_status(resp);
    api.response_body(resp, &r->body_len);
  }
  r->done = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int main(int argc, char **argv) {
  const char *path = argc == 3 ? argv[1] : "libh2pool.so.0";
  const char *url = argv[argc - 1];
  const char *vstr = NULL;
  void *lib;
  uint32_t v;
  struct result r;
  h2pool_config *cfg = NULL;
  h2pool *pool = NULL;
  struct timespec deadline;
  int rc, timed_out = 0, exit_code = 1;

  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s [LIBRARY] URL\n", argv[0]);
    return 2;
  }

  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  if (load_api(lib) != 0) {
    dlclose(lib);
    return 1;
  }

  /* Refuse a library of another major version before calling anything
   * else: its functions may not match the declarations above. */
  v = api.version(&vstr);
  if ((v >> 16) != H2POOL_VERSION_MAJOR) {
    fprintf(stderr, "%s is version %s; this program needs %d.x\n", path,
            vstr != NULL ? vstr : "?", H2POOL_VERSION_MAJOR);
    dlclose(lib);
    return 1;
  }
  printf("library: %s\n", vstr != NULL ? vstr : "?");

  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);

  rc = api.config_new(&cfg);
  if (rc == 0)
    rc = api.config_set_request_timeout_ms(cfg, REQUEST_TIMEOUT_MS);
  if (rc == 0)
    rc = api.create(cfg, &pool);
  api.config_free(cfg);
  if (rc == 0) {
    rc = api.request(pool, "GET", url, NULL, 0, NULL, 0, NULL, on_response, &r,
                     NULL);
  }
  if (rc != 0) {
    fprintf(stderr, "h2pool: %s\n", api.strerror(rc));
  } else {
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
  }
  /* Joins the loop thread: no callback runs after this, so unloading the
   * library below is safe. */
  api.destroy(pool);

  if (rc != 0) {
    /* already reported */
  } else if (timed_out) {
    fprintf(stderr, "no response within %d s\n", WAIT_SECONDS);
  } else if (r.error != 0) {
    fprintf(stderr, "request failed: %s (%s)\n", api.strerror(r.error),
            r.message);
  } else {
    printf("status: %d\nbody bytes: %zu\n", r.status, r.body_len);
    exit_code = 0;
  }

  pthread_cond_destroy(&r.cv);
  pthread_mutex_destroy(&r.mu);
  dlclose(lib);
  return exit_code;
}
