// A size-class free-list allocator for nghttp2 sessions (nghttp2_mem).
//
// nghttp2 allocates a handful of small blocks per request (the stream, 224
// bytes in 1.52; its outbound HEADERS item, 152; the copy of the request's
// header list, ~300 and up with cookies; an rcbuf per literal response
// header value, ~40 plus the value) and frees them when the stream closes.
// With hundreds of streams in flight the same sizes are live hundreds at a
// time, far beyond glibc's tcache (7 blocks per size), so frees spill into
// the arena bins and mallocs take _int_malloc's slow path. Keeping our own
// LIFO free list per size class, with no per-class count limit, turns those
// into a pointer pop and push. (`h2pool bench`, 4 connections x 100
// streams: malloc and free fell from ~18% to ~11% of client CPU, the rest
// being h2pool's own allocations.) Individually malloc'ed blocks, rather
// than blocks carved from slabs, measured within noise of slabs once warm.
//
// Threading: none. One allocator belongs to one thread (a pool's event-loop
// thread, where all of that pool's sessions live); nothing here locks.
//
// Lifetime: the allocator must outlive every nghttp2 session created with
// its mem(), and every nghttp2_rcbuf taken from such a session with
// nghttp2_rcbuf_incref (an rcbuf carries the free function and this
// allocator's address, and frees through them after the session is gone).
// Destroy the sessions first, then the allocator. The destructor returns
// the cached blocks to malloc; a block still handed out at that point is a
// bug (asserted in debug builds), and freeing it later is undefined.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>

namespace h2pool_core {

class SessionAllocator {
public:
  // Size classes cover requests up to kMaxSmall bytes: 16-byte steps up to
  // 256 (streams, outbound items, rcbufs, small header lists), then four
  // steps per doubling up to 4 KiB (header lists with cookies or tokens, the
  // per-session HPACK and framing buffers). Larger requests go straight to
  // malloc.
  static constexpr size_t kMaxSmall = 4096;
  // Blocks of at least kMapMin bytes are mapped on their own pages rather
  // than taken from malloc's heap. Every session has one: nghttp2's 16 KiB
  // outbound frame buffer, of which a client that uploads no large bodies
  // only ever writes the first page. Fresh pages are not resident until
  // written, whereas a heap block usually reuses memory that already is
  // (freed TLS handshake buffers, for one); mapping it keeps an idle
  // connection about 12 KiB smaller. Unmapping on release also gives
  // the memory straight back.
  static constexpr size_t kMapMin = 16 * 1024;
  static constexpr size_t kClasses = 32;
  // Default bound on the bytes kept in free lists (headers included): about
  // three times what 400 concurrent small-header requests keep live, so a
  // steady load never spills while memory after a burst stays bounded.
  static constexpr size_t kDefaultCacheBytes = 1u << 20;

  // What the allocator has done, for tests and debugging.
  struct Counters {
    // Blocks handed out by allocate, allocate_zeroed, and reallocate when
    // it moves a block to another class (not when it stays or when glibc
    // resizes a large block).
    uint64_t allocations = 0;
    uint64_t reused = 0; // of those, taken from a free list
    uint64_t large = 0;  // of those, over kMaxSmall (malloc, or mmap)
    uint64_t in_use = 0; // blocks handed out and not yet freed
    uint64_t cached_blocks = 0;
    uint64_t cached_bytes = 0; // counted as malloc'ed, header included
  };

  explicit SessionAllocator(size_t max_cached_bytes = kDefaultCacheBytes);
  ~SessionAllocator();
  // mem() points into the object, so it must stay where it is.
  SessionAllocator(const SessionAllocator &) = delete;
  SessionAllocator &operator=(const SessionAllocator &) = delete;

  // For nghttp2_session_client_new3 and friends. Valid as long as the
  // allocator; its functions follow malloc/free/calloc/realloc (see below).
  nghttp2_mem *mem() { return &mem_; }

  // The C allocation functions, with their contracts: every block is
  // aligned for std::max_align_t (nghttp2 stores any type in them); failure
  // returns nullptr and never throws. allocate(0) returns a unique block,
  // like glibc. reallocate(nullptr, n) is allocate(n); reallocate(p, 0)
  // frees p and returns nullptr, as glibc's realloc does, since that is
  // what nghttp2 gets from its default allocator. On failure reallocate
  // leaves p untouched. Sizes and counts that overflow fail.
  void *allocate(size_t size) noexcept;
  void *allocate_zeroed(size_t nmemb, size_t size) noexcept;
  void *reallocate(void *ptr, size_t size) noexcept;
  void release(void *ptr) noexcept;

  // Returns every cached block to malloc.
  void trim() noexcept;

  // Derived on demand from a few running totals, so that keeping them costs
  // the hot path as little as possible.
  Counters counters() const noexcept;
  size_t max_cached_bytes() const { return max_cached_bytes_; }

  // The usable size of the class that serves `size` bytes (size itself when
  // it is over kMaxSmall). For tests.
  static size_t class_size_for(size_t size) noexcept;

private:
  struct FreeBlock {
    FreeBlock *next;
  };

  void *take(unsigned cls, size_t size) noexcept;
  void *take_large(size_t size, bool zero) noexcept;

  FreeBlock *free_[kClasses] = {};
  size_t max_cached_bytes_;
  size_t cached_bytes_ = 0; // header included, as malloc sees it
  uint64_t handed_out_ = 0;
  uint64_t in_use_ = 0;
  // Touched only on paths that call malloc or free anyway.
  uint64_t fresh_ = 0;   // small blocks obtained from malloc
  uint64_t dropped_ = 0; // small blocks given back to malloc
  uint64_t large_ = 0;
  uint64_t large_in_use_ = 0;
  nghttp2_mem mem_;
};

} // namespace h2pool_core
