#include "session_alloc.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace h2pool_core {
namespace {

bool max_aligned(const void *p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t) == 0;
}

bool all_zero(const void *p, size_t n) {
  auto b = static_cast<const uint8_t *>(p);
  return std::all_of(b, b + n, [](uint8_t c) { return c == 0; });
}

// While blocks are out, tests check with EXPECT rather than ASSERT: an early
// return would leave them to the allocator's destructor, which asserts (in
// debug builds) that none are, and the abort would hide the real failure.
std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = uint8_t(seed + i * 7);
  return v;
}

TEST(SessionAlloc, EveryBlockIsMaxAligned) {
  SessionAllocator alloc;
  std::vector<void *> blocks;
  for (size_t n = 0; n <= 5000; n += 3) {
    void *p = alloc.allocate(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(max_aligned(p)) << n;
    std::memset(p, 0xa5, n); // ASan checks the whole size is ours
    blocks.push_back(p);
  }
  for (void *p : blocks)
    alloc.release(p);
  // Reused blocks come back just as aligned.
  for (size_t n = 0; n <= 5000; n += 3) {
    void *p = alloc.allocate(n);
    EXPECT_TRUE(max_aligned(p)) << n;
    alloc.release(p);
  }
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, ClassSizesCoverRequestWithBoundedWaste) {
  EXPECT_EQ(SessionAllocator::class_size_for(0), 16u);
  EXPECT_EQ(SessionAllocator::class_size_for(16), 16u);
  EXPECT_EQ(SessionAllocator::class_size_for(17), 32u);
  EXPECT_EQ(SessionAllocator::class_size_for(256), 256u);
  EXPECT_EQ(SessionAllocator::class_size_for(257), 320u);
  EXPECT_EQ(SessionAllocator::class_size_for(513), 640u);
  EXPECT_EQ(SessionAllocator::class_size_for(4096), 4096u);
  EXPECT_EQ(SessionAllocator::class_size_for(4097), 4097u);
  size_t prev = 0;
  for (size_t n = 1; n <= SessionAllocator::kMaxSmall; ++n) {
    size_t c = SessionAllocator::class_size_for(n);
    ASSERT_GE(c, n);
    ASSERT_GE(c, prev);
    ASSERT_LE(c - n, std::max<size_t>(15, n / 4)) << n;
    prev = c;
  }
}

TEST(SessionAlloc, FreedBlockIsReusedForSameClass) {
  SessionAllocator alloc;
  void *p = alloc.allocate(100);
  alloc.release(p);
  EXPECT_EQ(alloc.counters().cached_blocks, 1u);
  void *q = alloc.allocate(112); // same 112-byte class
  EXPECT_EQ(q, p);
  EXPECT_EQ(alloc.counters().reused, 1u);
  EXPECT_EQ(alloc.counters().cached_blocks, 0u);
  void *r = alloc.allocate(113); // next class: fresh block
  EXPECT_NE(r, p);
  EXPECT_EQ(alloc.counters().reused, 1u);
  alloc.release(q);
  alloc.release(r);
}

TEST(SessionAlloc, CallocZeroesReusedBlock) {
  SessionAllocator alloc;
  void *p = alloc.allocate(200);
  std::memset(p, 0xab, 200);
  alloc.release(p);
  void *z = alloc.allocate_zeroed(25, 8);
  EXPECT_EQ(z, p); // the dirty block, not a fresh one from malloc
  EXPECT_TRUE(all_zero(z, 200));
  alloc.release(z);
}

TEST(SessionAlloc, CallocZeroesLargeBlock) {
  SessionAllocator alloc;
  // Dirty a block of the same size first, so that calloc gets recycled
  // memory rather than fresh pages that happen to be zero.
  void *dirty = alloc.allocate(30000);
  std::memset(dirty, 0xab, 30000);
  alloc.release(dirty);
  void *z = alloc.allocate_zeroed(3, 10000);
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(all_zero(z, 30000));
  EXPECT_EQ(alloc.counters().large, 2u);
  alloc.release(z);
}

// Whether the page holding `p` is resident.
bool resident(const void *p) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  unsigned char vec = 0;
  void *start = reinterpret_cast<void *>(uintptr_t(p) / page * page);
  EXPECT_EQ(mincore(start, page, &vec), 0);
  return vec & 1;
}

TEST(SessionAlloc, BigBlocksTakeNoMemoryUntilWritten) {
  SessionAllocator alloc;
  // The size of nghttp2's outbound frame buffer (9 + 1 + 16384).
  const size_t n = 16394;
  static_assert(n >= SessionAllocator::kMapMin);
  auto p = static_cast<unsigned char *>(alloc.allocate(n));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(max_aligned(p));
  EXPECT_FALSE(resident(p + n - 1)); // untouched: no memory behind it yet
  p[n - 1] = 7;
  EXPECT_TRUE(resident(p + n - 1));
  alloc.release(p);

  // A zeroed one needs no writes to be zero, and stays untouched.
  auto z = static_cast<unsigned char *>(alloc.allocate_zeroed(1, n));
  ASSERT_NE(z, nullptr);
  EXPECT_FALSE(resident(z + n - 1));
  EXPECT_TRUE(all_zero(z, n));
  alloc.release(z);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, MappedBlocksResizeKeepingContents) {
  SessionAllocator alloc;
  auto data = pattern(200000, 5);
  void *p = alloc.allocate(20000);
  ASSERT_NE(p, nullptr);
  std::memcpy(p, data.data(), 20000);
  // Grow (pages move or extend), shrink within the mapping, shrink to a
  // small class, grow back to a mapping.
  for (size_t n : {size_t(200000), size_t(17000), size_t(100), size_t(30000)}) {
    size_t keep = std::min(n, alloc.class_size_for(n));
    void *q = alloc.reallocate(p, n);
    ASSERT_NE(q, nullptr) << n;
    EXPECT_TRUE(max_aligned(q));
    size_t check = n == 30000 ? 100 : std::min<size_t>(keep, 20000);
    EXPECT_EQ(std::memcmp(q, data.data(), check), 0) << "resized to " << n;
    std::memcpy(q, data.data(), n);
    p = q;
  }
  alloc.release(p);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, OverflowingSizesFail) {
  SessionAllocator alloc;
  // Each product wraps to a small number a careless check would allocate.
  for (auto [nmemb, size] : {std::pair{SIZE_MAX / 2 + 1, size_t(2)},
                             {size_t(2), SIZE_MAX},
                             {SIZE_MAX / 16 + 1, size_t(32)}}) {
    void *p = alloc.allocate_zeroed(nmemb, size);
    EXPECT_EQ(p, nullptr) << nmemb << " x " << size;
    alloc.release(p);
  }
  for (size_t size : {SIZE_MAX, SIZE_MAX - 8}) {
    void *p = alloc.allocate(size);
    EXPECT_EQ(p, nullptr) << size;
    alloc.release(p);
  }
  // A failed realloc leaves the old block alone, small or large.
  for (size_t n : {size_t(40), size_t(40000)}) {
    auto data = pattern(n, 3);
    void *p = alloc.allocate(n);
    std::memcpy(p, data.data(), n);
    EXPECT_EQ(alloc.reallocate(p, SIZE_MAX - 4), nullptr);
    EXPECT_EQ(std::memcmp(p, data.data(), n), 0);
    alloc.release(p);
  }
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, ReallocGrowKeepsContents) {
  SessionAllocator alloc;
  // Across small classes, into large blocks and a large-to-large resize.
  const std::vector<size_t> sizes = {1,   15,   16,   17,   200,  256,
                                     257, 1000, 4096, 4097, 9000, 100000};
  auto data = pattern(sizes.back(), 11);
  void *p = nullptr;
  size_t have = 0;
  for (size_t n : sizes) {
    p = alloc.reallocate(p, n);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(max_aligned(p));
    EXPECT_EQ(std::memcmp(p, data.data(), have), 0) << "grown to " << n;
    std::memcpy(p, data.data(), n);
    have = n;
  }
  alloc.release(p);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, ReallocShrinkKeepsPrefix) {
  SessionAllocator alloc;
  const std::vector<size_t> sizes = {100000, 5000, 4096, 300, 250, 17, 1};
  auto data = pattern(sizes.front(), 5);
  void *p = alloc.allocate(sizes.front());
  std::memcpy(p, data.data(), sizes.front());
  for (size_t n : sizes) {
    p = alloc.reallocate(p, n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(std::memcmp(p, data.data(), n), 0) << "shrunk to " << n;
  }
  alloc.release(p);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, ReallocWithinClassStaysInPlace) {
  SessionAllocator alloc;
  void *p = alloc.allocate(33);
  for (size_t n : {48, 40, 33}) {
    void *q = alloc.reallocate(p, n);
    EXPECT_EQ(q, p) << n;
    p = q;
  }
  EXPECT_EQ(alloc.counters().allocations, 1u);
  alloc.release(p);
}

TEST(SessionAlloc, ReallocPastClassMovesBlock) {
  SessionAllocator alloc;
  void *p = alloc.allocate(48);
  void *q = alloc.reallocate(p, 49);
  EXPECT_NE(q, p);
  EXPECT_EQ(alloc.counters().allocations, 2u);
  EXPECT_EQ(alloc.counters().cached_blocks, 1u); // p, back on its list
  alloc.release(q);
}

TEST(SessionAlloc, ReallocNullAllocatesAndZeroFrees) {
  SessionAllocator alloc;
  void *p = alloc.reallocate(nullptr, 64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(alloc.counters().in_use, 1u);
  void *r = alloc.reallocate(p, 0);
  EXPECT_EQ(r, nullptr);
  alloc.release(r);
  EXPECT_EQ(alloc.counters().in_use, 0u);
  EXPECT_EQ(alloc.counters().cached_blocks, 1u);
}

TEST(SessionAlloc, ZeroSizeBlocksAreDistinct) {
  SessionAllocator alloc;
  void *a = alloc.allocate(0);
  void *b = alloc.allocate(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  alloc.release(a);
  alloc.release(b);
  alloc.release(nullptr); // free(NULL) is a no-op
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, LargeBlocksAreNeverCached) {
  SessionAllocator alloc;
  void *p = alloc.allocate(SessionAllocator::kMaxSmall + 1);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, SessionAllocator::kMaxSmall + 1);
  EXPECT_EQ(alloc.counters().large, 1u);
  alloc.release(p);
  EXPECT_EQ(alloc.counters().cached_blocks, 0u);
  EXPECT_EQ(alloc.counters().cached_bytes, 0u);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

TEST(SessionAlloc, CacheStaysWithinCap) {
  // Room for exactly ten 256-byte blocks and their headers, not eleven.
  const size_t block = 256 + alignof(std::max_align_t);
  SessionAllocator alloc(10 * block + block / 2);
  std::vector<void *> blocks;
  for (int i = 0; i < 100; ++i)
    blocks.push_back(alloc.allocate(256));
  for (void *p : blocks)
    alloc.release(p);
  EXPECT_EQ(alloc.counters().cached_blocks, 10u);
  EXPECT_EQ(alloc.counters().cached_bytes, 10 * block);
  // The half block of slack still holds four 16-byte blocks (32 bytes with
  // their headers), not a fifth.
  std::vector<void *> small;
  for (int i = 0; i < 5; ++i)
    small.push_back(alloc.allocate(16));
  for (void *p : small)
    alloc.release(p);
  EXPECT_EQ(alloc.counters().cached_blocks, 14u);
  EXPECT_LE(alloc.counters().cached_bytes, alloc.max_cached_bytes());
  alloc.trim();
  EXPECT_EQ(alloc.counters().cached_blocks, 0u);
  EXPECT_EQ(alloc.counters().cached_bytes, 0u);
}

TEST(SessionAlloc, ZeroCapCachesNothing) {
  SessionAllocator alloc(0);
  void *p = alloc.allocate(64);
  alloc.release(p);
  EXPECT_EQ(alloc.counters().cached_blocks, 0u);
  void *q = alloc.allocate(64);
  EXPECT_EQ(alloc.counters().reused, 0u);
  alloc.release(q);
}

TEST(SessionAlloc, MemRoutesToThisAllocator) {
  SessionAllocator alloc;
  nghttp2_mem *mem = alloc.mem();
  ASSERT_EQ(mem->mem_user_data, &alloc);
  void *a = mem->malloc(10, mem->mem_user_data);
  void *b = mem->calloc(4, 4, mem->mem_user_data);
  a = mem->realloc(a, 5000, mem->mem_user_data);
  EXPECT_EQ(alloc.counters().in_use, 2u);
  EXPECT_EQ(alloc.counters().large, 1u);
  mem->free(a, mem->mem_user_data);
  mem->free(b, mem->mem_user_data);
  EXPECT_EQ(alloc.counters().in_use, 0u);
}

// A client session on one allocator talks to a server session on another,
// bytes pumped between them in memory.
struct Exchange {
  struct Response {
    std::string status;
    std::string stream_header;
    std::string body;
    uint32_t close_code = ~0u;
  };

  SessionAllocator client_alloc;
  SessionAllocator server_alloc;
  nghttp2_session *client = nullptr;
  nghttp2_session *server = nullptr;
  std::map<int32_t, Response> responses;
  std::map<int32_t, size_t> cookie_bytes; // as the server saw them
  std::map<int32_t, size_t> sent;         // response body offset per stream
  std::string body = std::string(1500, 'x');
  std::string big_cookie = std::string(6000, 'c'); // a header list > 4 KiB
  nghttp2_rcbuf *kept = nullptr; // retained past the session's end

  explicit Exchange(size_t cache_bytes)
      : client_alloc(cache_bytes), server_alloc(cache_bytes) {
    for (int i = 0; i < int(body.size()); ++i)
      body[i] = char('a' + i % 26);

    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback2(cb, client_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
                                                              client_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, client_on_close);
    EXPECT_EQ(nghttp2_session_client_new3(&client, cb, this, nullptr,
                                          client_alloc.mem()),
              0);
    nghttp2_session_callbacks_del(cb);

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, server_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, server_on_frame);
    EXPECT_EQ(nghttp2_session_server_new3(&server, cb, this, nullptr,
                                          server_alloc.mem()),
              0);
    nghttp2_session_callbacks_del(cb);

    // A stream limit makes the client queue requests, as a pool does.
    nghttp2_settings_entry server_iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    EXPECT_EQ(nghttp2_submit_settings(server, NGHTTP2_FLAG_NONE, server_iv, 1),
              0);
    nghttp2_settings_entry client_iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    EXPECT_EQ(nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, client_iv, 1),
              0);
  }

  ~Exchange() {
    nghttp2_session_del(client);
    nghttp2_session_del(server);
    if (kept)
      nghttp2_rcbuf_decref(kept);
  }

  int32_t submit(int i) {
    std::string path = "/item/" + std::to_string(i);
    std::vector<nghttp2_nv> nva = {nv(":method", "GET"), nv(":scheme", "http"),
                                   nv(":authority", "example.test"),
                                   nv(":path", path)};
    if (i % 10 == 0)
      nva.push_back(nv("cookie", big_cookie));
    return nghttp2_submit_request(client, nullptr, nva.data(), nva.size(),
                                  nullptr, nullptr);
  }

  // Moves bytes both ways until neither side has anything to say.
  bool pump() {
    bool moved;
    do {
      moved = false;
      for (auto [from, to] : {std::pair{client, server}, {server, client}}) {
        for (;;) {
          const uint8_t *data;
          ssize_t n = nghttp2_session_mem_send(from, &data);
          if (n < 0)
            return false;
          if (n == 0)
            break;
          if (nghttp2_session_mem_recv(to, data, size_t(n)) != n)
            return false;
          moved = true;
        }
      }
    } while (moved);
    return true;
  }

  // Views, not strings: the pair must point at storage that outlives the
  // submit call (literals, or strings the caller holds).
  static nghttp2_nv nv(std::string_view name, std::string_view value) {
    return {reinterpret_cast<uint8_t *>(const_cast<char *>(name.data())),
            reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
            name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
  }

  static int client_on_header(nghttp2_session *, const nghttp2_frame *frame,
                              nghttp2_rcbuf *name, nghttp2_rcbuf *value,
                              uint8_t, void *user_data) {
    auto ex = static_cast<Exchange *>(user_data);
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
    std::string key(reinterpret_cast<char *>(n.base), n.len);
    std::string val(reinterpret_cast<char *>(v.base), v.len);
    Response &r = ex->responses[frame->hd.stream_id];
    if (key == ":status")
      r.status = val;
    else if (key == "x-stream") {
      r.stream_header = val;
      if (!ex->kept) {
        nghttp2_rcbuf_incref(value);
        ex->kept = value;
      }
    }
    return 0;
  }

  static int client_on_data(nghttp2_session *, uint8_t, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data) {
    auto ex = static_cast<Exchange *>(user_data);
    ex->responses[stream_id].body.append(reinterpret_cast<const char *>(data),
                                         len);
    return 0;
  }

  static int client_on_close(nghttp2_session *, int32_t stream_id,
                             uint32_t error_code, void *user_data) {
    auto ex = static_cast<Exchange *>(user_data);
    ex->responses[stream_id].close_code = error_code;
    return 0;
  }

  static int server_on_header(nghttp2_session *, const nghttp2_frame *frame,
                              const uint8_t *name, size_t namelen,
                              const uint8_t *, size_t valuelen, uint8_t,
                              void *user_data) {
    auto ex = static_cast<Exchange *>(user_data);
    if (std::string_view(reinterpret_cast<const char *>(name), namelen) ==
        "cookie")
      ex->cookie_bytes[frame->hd.stream_id] += valuelen;
    return 0;
  }

  static int server_on_frame(nghttp2_session *session,
                             const nghttp2_frame *frame, void *user_data) {
    auto ex = static_cast<Exchange *>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return 0;
    int32_t id = frame->hd.stream_id;
    // A value unique per stream is a literal the client must copy into a
    // fresh rcbuf, not one it finds in its HPACK table.
    std::string sid = std::to_string(id);
    nghttp2_nv nva[] = {nv(":status", "200"), nv("x-stream", sid)};
    nghttp2_data_provider prd;
    prd.source.ptr = ex;
    prd.read_callback = server_read;
    return nghttp2_submit_response(session, id, nva, 2, &prd);
  }

  static ssize_t server_read(nghttp2_session *, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *flags,
                             nghttp2_data_source *source, void *) {
    auto ex = static_cast<Exchange *>(source->ptr);
    size_t &off = ex->sent[stream_id];
    size_t n = std::min(length, ex->body.size() - off);
    std::memcpy(buf, ex->body.data() + off, n);
    off += n;
    if (off == ex->body.size())
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return ssize_t(n);
  }
};

void run_requests(Exchange &ex, int count) {
  std::map<int32_t, int> ids;
  for (int i = 0; i < count; ++i) {
    int32_t id = ex.submit(i);
    ASSERT_GT(id, 0);
    ids[id] = i;
  }
  ASSERT_TRUE(ex.pump());
  ASSERT_EQ(ex.responses.size(), size_t(count));
  for (auto [id, i] : ids) {
    const Exchange::Response &r = ex.responses[id];
    EXPECT_EQ(r.close_code, uint32_t(NGHTTP2_NO_ERROR)) << id;
    EXPECT_EQ(r.status, "200") << id;
    EXPECT_EQ(r.stream_header, std::to_string(id));
    EXPECT_EQ(r.body, ex.body) << id;
    EXPECT_EQ(ex.cookie_bytes[id], i % 10 == 0 ? ex.big_cookie.size() : 0u);
  }
}

TEST(SessionAlloc, NghttpSessionsExchangeRequests) {
  auto ex = std::make_unique<Exchange>(SessionAllocator::kDefaultCacheBytes);
  const int kRequests = 300;
  run_requests(*ex, kRequests);
  const SessionAllocator::Counters &c = ex->client_alloc.counters();
  // A stream, its HEADERS item and its header list at least, per request.
  EXPECT_GE(c.allocations, uint64_t(3 * kRequests));
  // Streams beyond the server's limit of 100 reuse closed streams' blocks.
  EXPECT_GE(c.reused, uint64_t(kRequests));
  EXPECT_GE(c.large, uint64_t(kRequests / 10)); // the big header lists
  EXPECT_GT(ex->server_alloc.counters().reused, 0u);
  SessionAllocator &client_alloc = ex->client_alloc;
  nghttp2_session_del(ex->client);
  nghttp2_session_del(ex->server);
  ex->client = ex->server = nullptr;
  // The retained header value is all the client allocator still has out.
  EXPECT_EQ(client_alloc.counters().in_use, 1u);
  EXPECT_EQ(ex->server_alloc.counters().in_use, 0u);
  ASSERT_NE(ex->kept, nullptr);
  nghttp2_vec v = nghttp2_rcbuf_get_buf(ex->kept);
  EXPECT_EQ(std::string(reinterpret_cast<char *>(v.base), v.len), "1");
  nghttp2_rcbuf_decref(ex->kept);
  ex->kept = nullptr;
  EXPECT_EQ(client_alloc.counters().in_use, 0u);
  EXPECT_LE(client_alloc.counters().cached_bytes,
            SessionAllocator::kDefaultCacheBytes);
}

TEST(SessionAlloc, NghttpSessionsWorkWithCachingDisabled) {
  Exchange ex(0);
  run_requests(ex, 150);
  EXPECT_EQ(ex.client_alloc.counters().reused, 0u);
  EXPECT_EQ(ex.client_alloc.counters().cached_blocks, 0u);
}

TEST(SessionAlloc, NghttpSessionsWorkWithTinyCache) {
  // Blocks keep spilling to malloc and coming back from it mid-exchange.
  Exchange ex(2048);
  run_requests(ex, 150);
  EXPECT_GT(ex.client_alloc.counters().reused, 0u);
  EXPECT_LE(ex.client_alloc.counters().cached_bytes, 2048u);
}

} // namespace
} // namespace h2pool_core
