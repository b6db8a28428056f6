/* A C view of the test server (tools/server/test_server.h) for the CMocka
 * tests of the public C API. */
#ifndef H2POOL_TEST_SERVER_C_H
#define H2POOL_TEST_SERVER_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2ts h2ts;

/* Starts a server on 127.0.0.1 with an ephemeral port, announcing
 * `max_concurrent_streams` (0: not announced). Returns 0 or a negative errno
 * value. */
int h2ts_start(uint32_t max_concurrent_streams, h2ts **out);
/* Stops and frees. Accepts NULL. */
void h2ts_stop(h2ts *ts);

uint16_t h2ts_port(const h2ts *ts);
uint64_t h2ts_connections_accepted(const h2ts *ts);
uint64_t h2ts_peak_connections_open(const h2ts *ts);
uint32_t h2ts_peak_concurrent_streams(const h2ts *ts);
uint64_t h2ts_requests(const h2ts *ts);

/* Writes test_body(seed, n) into `out` (which must hold n bytes). */
void h2ts_test_body(uint64_t seed, size_t n, uint8_t *out);
/* Writes bytes [offset, offset + n) of the test body for `seed`, so a
 * streamed body can be checked chunk by chunk. */
void h2ts_fill_test_body(uint64_t seed, uint64_t offset, size_t n,
                         uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif
