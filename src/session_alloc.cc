#include "session_alloc.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

// Blocks on our free lists are invisible to AddressSanitizer's own
// quarantine, so without help it could not see nghttp2 touching a block
// after freeing it, or writing past the size it asked for into the slack of
// its class. Poisoning what the caller may not touch keeps both detectable.
#if defined(__SANITIZE_ADDRESS__)
#define H2POOL_ALLOC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2POOL_ALLOC_ASAN 1
#endif
#endif
#ifdef H2POOL_ALLOC_ASAN
#include <sanitizer/asan_interface.h>
#define H2POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define H2POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define H2POOL_POISON(p, n) ((void)(p), (void)(n))
#define H2POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace h2pool_core {
namespace {

// Sits in front of every block: nghttp2's free passes no size, so the block
// has to say which list it goes back to. Aligning the header to
// max_align_t keeps the payload as aligned as malloc's own result.
struct alignas(std::max_align_t) Header {
  size_t size;   // bytes the caller asked for, for realloc's copy
  uint32_t cls;  // size class, kLarge or kMapped
  uint32_t mark; // kLive or kCached, to catch double frees in debug builds
};
static_assert(sizeof(Header) % alignof(std::max_align_t) == 0);

constexpr uint32_t kLarge = UINT32_MAX;
constexpr uint32_t kMapped = UINT32_MAX - 1; // large, and mmap'ed on its own
constexpr uint32_t kLive = 0x6832'7061;
constexpr uint32_t kCached = 0x6672'6565;

// Usable bytes of each class: 16..256 in steps of 16, then four steps per
// doubling (320, 384, 448, 512, 640, ... 3584, 4096), which wastes at most
// a quarter of a block while keeping the table small.
constexpr std::array<uint32_t, SessionAllocator::kClasses> make_class_sizes() {
  std::array<uint32_t, SessionAllocator::kClasses> sizes{};
  for (unsigned i = 0; i < 16; ++i)
    sizes[i] = 16 * (i + 1);
  for (unsigned i = 16; i < SessionAllocator::kClasses; ++i) {
    unsigned e = 8 + (i - 16) / 4; // the class lies in (2^e, 2^(e+1)]
    sizes[i] = (1u << e) + ((i - 16) % 4 + 1) * (1u << (e - 2));
  }
  return sizes;
}
constexpr auto kClassSize = make_class_sizes();
static_assert(kClassSize[15] == 256 && kClassSize[16] == 320);
static_assert(kClassSize[SessionAllocator::kClasses - 1] ==
              SessionAllocator::kMaxSmall);

// The smallest class holding `n` bytes; n <= kMaxSmall.
inline unsigned class_of(size_t n) {
  if (n <= 256)
    return n == 0 ? 0 : unsigned((n - 1) >> 4);
  unsigned e = unsigned(std::bit_width(n - 1)) - 1; // 8..11
  return 16 + (e - 8) * 4 + unsigned(((n - 1) - (size_t(1) << e)) >> (e - 2));
}

inline Header *header_of(void *payload) {
  return reinterpret_cast<Header *>(static_cast<char *>(payload) -
                                    sizeof(Header));
}
inline void *payload_of(Header *h) { return h + 1; }

// Only debug builds pay for the stores that let free assert on a double
// free or a foreign pointer; the hot path is a few instructions long.
inline void set_mark(Header *h, uint32_t mark) {
#ifndef NDEBUG
  h->mark = mark;
#else
  (void)h, (void)mark;
#endif
}

// The cost of keeping a cached block, as malloc sees it.
inline size_t cached_cost(unsigned cls) {
  return sizeof(Header) + kClassSize[cls];
}

// Lets the caller touch exactly the bytes it asked for.
inline void expose(void *payload, size_t size, unsigned cls) {
  H2POOL_UNPOISON(payload, size);
  H2POOL_POISON(static_cast<char *>(payload) + size, kClassSize[cls] - size);
}

// The whole pages a mapped block of `size` payload bytes spans, or 0 on
// overflow.
size_t mapped_length(size_t size) {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  if (size > SIZE_MAX - sizeof(Header) - page)
    return 0;
  return (sizeof(Header) + size + page - 1) / page * page;
}

Header *map_block(size_t size) {
  size_t len = mapped_length(size);
  if (len == 0)
    return nullptr;
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<Header *>(p);
}

void unmap_block(Header *h) { munmap(h, mapped_length(h->size)); }

void *mem_malloc(size_t size, void *mem_user_data) {
  auto alloc = static_cast<SessionAllocator *>(mem_user_data);
  return alloc->allocate(size);
}

void mem_free(void *ptr, void *mem_user_data) {
  auto alloc = static_cast<SessionAllocator *>(mem_user_data);
  alloc->release(ptr);
}

void *mem_calloc(size_t nmemb, size_t size, void *mem_user_data) {
  auto alloc = static_cast<SessionAllocator *>(mem_user_data);
  return alloc->allocate_zeroed(nmemb, size);
}

void *mem_realloc(void *ptr, size_t size, void *mem_user_data) {
  auto alloc = static_cast<SessionAllocator *>(mem_user_data);
  return alloc->reallocate(ptr, size);
}

} // namespace

SessionAllocator::SessionAllocator(size_t max_cached_bytes)
    : max_cached_bytes_(max_cached_bytes), mem_{this, mem_malloc, mem_free,
                                                mem_calloc, mem_realloc} {}

SessionAllocator::~SessionAllocator() {
  // A block still out belongs to a session or rcbuf that outlived us; its
  // eventual free would call into freed memory.
  assert(in_use_ == 0);
  trim();
}

SessionAllocator::Counters SessionAllocator::counters() const noexcept {
  Counters c;
  c.allocations = handed_out_;
  c.large = large_;
  c.reused = handed_out_ - fresh_ - large_;
  c.in_use = in_use_;
  uint64_t small_in_use = in_use_ - large_in_use_;
  c.cached_blocks = fresh_ - dropped_ - small_in_use;
  c.cached_bytes = cached_bytes_;
  return c;
}

size_t SessionAllocator::class_size_for(size_t size) noexcept {
  return size <= kMaxSmall ? kClassSize[class_of(size)] : size;
}

void *SessionAllocator::take(unsigned cls, size_t size) noexcept {
  Header *h;
  if (FreeBlock *b = free_[cls]) {
    H2POOL_UNPOISON(b, sizeof(FreeBlock));
    free_[cls] = b->next;
    cached_bytes_ -= cached_cost(cls);
    h = header_of(b);
    assert(h->mark == kCached && h->cls == cls);
  } else {
    h = static_cast<Header *>(std::malloc(sizeof(Header) + kClassSize[cls]));
    if (!h)
      return nullptr;
    h->cls = cls;
    ++fresh_;
  }
  h->size = size;
  set_mark(h, kLive);
  ++handed_out_;
  ++in_use_;
  void *p = payload_of(h);
  expose(p, size, cls);
  return p;
}

void *SessionAllocator::take_large(size_t size, bool zero) noexcept {
  if (size > SIZE_MAX - sizeof(Header))
    return nullptr;
  Header *h;
  uint32_t cls = kLarge;
  if (size >= kMapMin) {
    // Fresh anonymous pages are zero already.
    h = map_block(size);
    cls = kMapped;
  } else {
    // calloc, not malloc + memset, so that big zeroed blocks served by mmap
    // are not touched page by page.
    h = static_cast<Header *>(zero ? std::calloc(1, sizeof(Header) + size)
                                   : std::malloc(sizeof(Header) + size));
  }
  if (!h)
    return nullptr;
  h->size = size;
  h->cls = cls;
  set_mark(h, kLive);
  ++handed_out_;
  ++in_use_;
  ++large_;
  ++large_in_use_;
  return payload_of(h);
}

void *SessionAllocator::allocate(size_t size) noexcept {
  if (size <= kMaxSmall)
    return take(class_of(size), size);
  return take_large(size, false);
}

void *SessionAllocator::allocate_zeroed(size_t nmemb, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total))
    return nullptr;
  if (total > kMaxSmall)
    return take_large(total, true);
  // A reused block holds whatever its last owner left there.
  void *p = take(class_of(total), total);
  if (p)
    std::memset(p, 0, total);
  return p;
}

void SessionAllocator::release(void *ptr) noexcept {
  if (!ptr)
    return;
  Header *h = header_of(ptr);
  assert(h->mark == kLive); // else a double free, or not our block
  --in_use_;
  if (h->cls == kLarge) {
    --large_in_use_;
    std::free(h);
    return;
  }
  if (h->cls == kMapped) {
    --large_in_use_;
    unmap_block(h);
    return;
  }
  unsigned cls = h->cls;
  // Past the cap the block goes back to malloc, so that a burst of streams
  // does not pin its peak memory for the life of the pool.
  if (cached_bytes_ + cached_cost(cls) > max_cached_bytes_) {
    H2POOL_UNPOISON(ptr, kClassSize[cls]);
    ++dropped_;
    std::free(h);
    return;
  }
  // LIFO: the block reused next is the one most likely still in cache.
  H2POOL_UNPOISON(ptr, sizeof(FreeBlock));
  auto b = static_cast<FreeBlock *>(ptr);
  b->next = free_[cls];
  free_[cls] = b;
  set_mark(h, kCached);
  H2POOL_POISON(ptr, kClassSize[cls]);
  cached_bytes_ += cached_cost(cls);
}

void *SessionAllocator::reallocate(void *ptr, size_t size) noexcept {
  if (!ptr)
    return allocate(size);
  if (size == 0) {
    release(ptr);
    return nullptr;
  }
  Header *h = header_of(ptr);
  assert(h->mark == kLive);
  if (h->cls == kLarge && size > kMaxSmall) {
    // glibc may grow in place or remap; either way it copies for us.
    if (size > SIZE_MAX - sizeof(Header))
      return nullptr;
    auto nh = static_cast<Header *>(std::realloc(h, sizeof(Header) + size));
    if (!nh)
      return nullptr;
    nh->size = size;
    return payload_of(nh);
  }
  if (h->cls == kMapped && size >= kMapMin) {
    // The kernel moves the pages (no copy) if they cannot grow in place.
    size_t old_len = mapped_length(h->size), new_len = mapped_length(size);
    if (new_len == 0)
      return nullptr;
    void *p =
        new_len == old_len ? h : mremap(h, old_len, new_len, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
      return nullptr;
    auto nh = static_cast<Header *>(p);
    nh->size = size;
    return payload_of(nh);
  }
  if (h->cls < kMapped && size <= kMaxSmall && class_of(size) == h->cls) {
    h->size = size;
    expose(ptr, size, h->cls);
    return ptr;
  }
  void *moved = allocate(size);
  if (!moved)
    return nullptr;
  std::memcpy(moved, ptr, std::min(h->size, size));
  release(ptr);
  return moved;
}

void SessionAllocator::trim() noexcept {
  for (unsigned cls = 0; cls < kClasses; ++cls) {
    while (FreeBlock *b = free_[cls]) {
      H2POOL_UNPOISON(b, kClassSize[cls]);
      free_[cls] = b->next;
      std::free(header_of(b));
      ++dropped_;
    }
  }
  cached_bytes_ = 0;
}

} // namespace h2pool_core
