#include "decompress.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#if H2POOL_HAVE_BROTLI
#include <brotli/decode.h>
#endif
#if H2POOL_HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "h2pool.h"

namespace h2pool_core {

// The order is Chrome's. Without q-values every listed coding is equally
// acceptable (RFC 9110 12.5.3) and the server picks; the older codings stay
// first for servers that take the first one they know.
const char *const kAcceptEncoding = "gzip, deflate"
#if H2POOL_HAVE_BROTLI
                                    ", br"
#endif
#if H2POOL_HAVE_ZSTD
                                    ", zstd"
#endif
    ;

namespace {

constexpr size_t kChunk = 64u << 10;
constexpr uint64_t kRatioGrace = 1u << 20; // ratios of tiny bodies say little

enum class Format { gzip, deflate_auto, deflate_zlib, deflate_raw, br, zstd };

std::string trim_lower(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t'))
    ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
    --e;
  std::string out(s.substr(b, e - b));
  for (char &c : out)
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  return out;
}

// One call into a decoding library: what it took and gave, and why it
// stopped.
struct Step {
  enum class Status { more, end, error };
  Status status = Status::more;
  size_t used = 0;
  size_t produced = 0;
  // The output block filled up, so the decoder may owe output it can give
  // without more input.
  bool owed = false;
  int error = H2POOL_ERR_DECODE;
};

// A decoding library behind one interface, owning its state.
class Codec {
public:
  virtual ~Codec() = default;
  // Decodes from `in` into `out`; `*why` is set on Status::error.
  virtual Step decode(const uint8_t *in, size_t avail, uint8_t *out,
                      size_t space, std::string *why) = 0;
  // Starts over for another gzip member.
  virtual void reset() {}
};

class ZlibCodec final : public Codec {
public:
  ~ZlibCodec() override {
    if (initialised_)
      inflateEnd(&z_);
  }
  // window_bits as for inflateInit2(): 15+16 gzip, 15 zlib, -15 raw.
  bool init(int window_bits) {
    initialised_ = inflateInit2(&z_, window_bits) == Z_OK;
    return initialised_;
  }
  void reset() override { inflateReset(&z_); }
  Step decode(const uint8_t *in, size_t avail, uint8_t *out, size_t space,
              std::string *why) override {
    z_.next_in = const_cast<Bytef *>(in);
    z_.avail_in = uInt(std::min<size_t>(avail, UINT32_MAX));
    z_.next_out = out;
    z_.avail_out = uInt(space);
    int rc = inflate(&z_, Z_NO_FLUSH);
    Step s;
    s.used = z_.next_in - in;
    s.produced = space - z_.avail_out;
    // A match or stored block cut short may be owed with its input already
    // consumed (raw DEFLATE has no trailer to come after it).
    s.owed = rc == Z_OK && z_.avail_out == 0;
    if (rc == Z_STREAM_END) {
      s.status = Step::Status::end;
    } else if (rc == Z_BUF_ERROR && s.used == 0 && s.produced == 0) {
      // needs more input
    } else if (rc != Z_OK) {
      s.status = Step::Status::error;
      if (why)
        *why = std::string("corrupt compressed body: ") +
               (z_.msg ? z_.msg : "zlib error " + std::to_string(rc));
    }
    return s;
  }

private:
  z_stream z_{};
  bool initialised_ = false;
};

#if H2POOL_HAVE_BROTLI
class BrotliCodec final : public Codec {
public:
  BrotliCodec()
      : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliCodec() override {
    if (state_)
      BrotliDecoderDestroyInstance(state_);
  }
  bool ok() const { return state_ != nullptr; }
  Step decode(const uint8_t *in, size_t avail, uint8_t *out, size_t space,
              std::string *why) override {
    size_t avail_in = avail, avail_out = space;
    const uint8_t *next_in = in;
    uint8_t *next_out = out;
    BrotliDecoderResult rc = BrotliDecoderDecompressStream(
        state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    Step s;
    s.used = avail - avail_in;
    s.produced = space - avail_out;
    if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
      s.status = Step::Status::end;
    } else if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
      s.owed = true;
    } else if (rc == BROTLI_DECODER_RESULT_ERROR) {
      BrotliDecoderErrorCode code = BrotliDecoderGetErrorCode(state_);
      s.status = Step::Status::error;
      // The ring buffer (up to the stream's 16 MiB window) is allocated as
      // the stream asks for it.
      if (code <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
          code >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES)
        s.error = H2POOL_ERR_NOMEM;
      if (why)
        *why =
            std::string("corrupt br body: ") + BrotliDecoderErrorString(code);
    }
    return s;
  }

private:
  BrotliDecoderState *state_;
};
#endif

#if H2POOL_HAVE_ZSTD
class ZstdCodec final : public Codec {
public:
  ZstdCodec() : dctx_(ZSTD_createDCtx()) {}
  ~ZstdCodec() override { ZSTD_freeDCtx(dctx_); }
  bool init() {
    static_assert(kZstdMaxWindow == 1u << 23, "windowLogMax below");
    return dctx_ != nullptr && !ZSTD_isError(ZSTD_DCtx_setParameter(
                                   dctx_, ZSTD_d_windowLogMax, 23));
  }
  // Frames follow one another, skippable ones included: after a frame's end
  // the same context decodes the next (RFC 8878 3).
  Step decode(const uint8_t *in, size_t avail, uint8_t *out, size_t space,
              std::string *why) override {
    ZSTD_inBuffer ib{in, avail, 0};
    ZSTD_outBuffer ob{out, space, 0};
    size_t rc = ZSTD_decompressStream(dctx_, &ob, &ib);
    Step s;
    s.used = ib.pos;
    s.produced = ob.pos;
    if (ZSTD_isError(rc)) {
      s.status = Step::Status::error;
      ZSTD_ErrorCode code = ZSTD_getErrorCode(rc);
      if (code == ZSTD_error_memory_allocation)
        s.error = H2POOL_ERR_NOMEM;
      if (why)
        *why = code == ZSTD_error_frameParameter_windowTooLarge
                   ? "zstd frame needs a window over 8 MiB, more than the "
                     "zstd content coding allows (RFC 9659)"
                   : std::string("corrupt zstd body: ") + ZSTD_getErrorName(rc);
    } else if (rc == 0) {
      s.status = Step::Status::end; // a frame is complete and flushed
    } else {
      s.owed = ob.pos == ob.size;
    }
    return s;
  }

private:
  ZSTD_DCtx *dctx_;
};
#endif

} // namespace

// Stages run in bounded blocks: each one decodes into its own block of
// kChunk bytes and may not decode more until the next stage has taken all
// of it, so a chain of codings holds a few blocks whatever it expands to.
struct ContentDecoder::Stage {
  Format format;
  std::unique_ptr<Codec> codec; // created with the first input
  bool ended = false;           // end of the current member or frame
  bool saw_input = false;
  // The last decode filled the block, so it may owe output it can give
  // without more input.
  bool output_owed = false;
  // Stopped holding fewer input bytes than it must see together (a gzip
  // magic, a zlib header): the stage before may then add to a block this
  // one has not emptied, or neither could move again.
  bool wants_input = false;
  // Decoded bytes; [pos, len) is what the next stage has not taken yet.
  // The last stage hands each piece to the sink at once.
  std::unique_ptr<uint8_t[]> block;
  size_t pos = 0;
  size_t len = 0;
  uint64_t in_total = 0; // consumed
  uint64_t out_total = 0;
};

int ContentDecoder::create(std::string_view content_encoding,
                           const DecodeLimits &limits,
                           std::unique_ptr<ContentDecoder> *out,
                           std::string *why) {
  out->reset();
  std::vector<Format> codings; // in the order they were applied
  size_t start = 0;
  while (start <= content_encoding.size()) {
    size_t comma = content_encoding.find(',', start);
    if (comma == std::string_view::npos)
      comma = content_encoding.size();
    std::string token =
        trim_lower(content_encoding.substr(start, comma - start));
    start = comma + 1;
    if (token.empty() || token == "identity")
      continue;
    if (token == "gzip" || token == "x-gzip")
      codings.push_back(Format::gzip);
    else if (token == "deflate")
      codings.push_back(Format::deflate_auto);
#if H2POOL_HAVE_BROTLI
    else if (token == "br")
      codings.push_back(Format::br);
#endif
#if H2POOL_HAVE_ZSTD
    else if (token == "zstd")
      codings.push_back(Format::zstd);
#endif
    else
      return H2POOL_OK; // unknown coding: pass the body through untouched
  }
  if (codings.empty())
    return H2POOL_OK;
  if (codings.size() > limits.max_encodings) {
    if (why)
      *why = "response has " + std::to_string(codings.size()) +
             " chained content-encodings (at most " +
             std::to_string(limits.max_encodings) + " are decoded)";
    return H2POOL_ERR_DECOMPRESSION_BOMB;
  }
  std::unique_ptr<ContentDecoder> dec(new ContentDecoder(limits));
  // The last coding applied is the first to undo.
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    auto stage = std::make_unique<Stage>();
    stage->format = *it;
    dec->stages_.push_back(std::move(stage));
  }
  *out = std::move(dec);
  return H2POOL_OK;
}

ContentDecoder::ContentDecoder(const DecodeLimits &limits) : limits_(limits) {}

ContentDecoder::~ContentDecoder() = default;

void ContentDecoder::append(const uint8_t *data, size_t len) {
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ >= kChunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  in_.append(reinterpret_cast<const char *>(data), len);
  total_in_ += len;
}

bool ContentDecoder::has_pending() const {
  if (in_pos_ < in_.size())
    return true;
  for (const auto &s : stages_)
    if (s->pos < s->len || s->output_owed)
      return true;
  return false;
}

size_t ContentDecoder::buffered_bytes() const {
  size_t n = in_.capacity();
  for (const auto &s : stages_)
    if (s->block)
      n += kChunk;
  return n;
}

int ContentDecoder::pump(const Sink &sink, std::string *why) {
  // Rounds front to back until nothing moves; in each, a stage decodes at
  // most one block for the next (the last, as much as the sink takes).
  for (;;) {
    bool progress = false;
    for (size_t i = 0; i < stages_.size(); ++i) {
      bool paused = false;
      int rc = run_stage(i, sink, &paused, &progress, why);
      if (rc != H2POOL_OK)
        return rc;
      if (paused)
        return H2POOL_OK;
    }
    if (!progress)
      return H2POOL_OK;
  }
}

int ContentDecoder::check_limits(size_t index, std::string *why) const {
  const Stage &st = *stages_[index];
  bool last = index + 1 == stages_.size();
  std::string step;
  if (stages_.size() > 1)
    step = "decoding step " + std::to_string(index + 1) + " of " +
           std::to_string(stages_.size());
  if (st.out_total > limits_.max_bytes) {
    if (why)
      *why = (last ? std::string("decoded body") : step) + " exceeds " +
             std::to_string(limits_.max_bytes) + " bytes";
    return H2POOL_ERR_DECOMPRESSION_BOMB;
  }
  if (st.out_total <= kRatioGrace)
    return H2POOL_OK;
  // Against the step's own input and against the wire: each step's ratio
  // may pass while their product does not.
  uint64_t bound = uint64_t(limits_.max_ratio);
  if (st.out_total / std::max<uint64_t>(st.in_total, 1) >= bound ||
      st.out_total / std::max<uint64_t>(total_in_, 1) >= bound) {
    if (why)
      *why = "compression ratio exceeds " + std::to_string(limits_.max_ratio) +
             ":1" + (step.empty() ? "" : " in " + step);
    return H2POOL_ERR_DECOMPRESSION_BOMB;
  }
  return H2POOL_OK;
}

int ContentDecoder::init_stage(Stage &st, const uint8_t *in, size_t avail,
                               std::string *why) {
  if (st.format == Format::deflate_auto) {
    // "deflate" is meant to be zlib-wrapped (RFC 9110), but servers also
    // send raw DEFLATE; a valid zlib header tells them apart.
    if (avail < 2) {
      st.wants_input = true;
      return H2POOL_OK;
    }
    bool zlib = (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
                ((unsigned(in[0]) << 8) | in[1]) % 31 == 0;
    st.format = zlib ? Format::deflate_zlib : Format::deflate_raw;
  }
  bool ok = false;
  const char *library = "zlib";
  switch (st.format) {
  case Format::gzip:
  case Format::deflate_zlib:
  case Format::deflate_raw:
  case Format::deflate_auto: {
    auto z = std::make_unique<ZlibCodec>();
    ok = z->init(st.format == Format::gzip           ? 15 + 16
                 : st.format == Format::deflate_zlib ? 15
                                                     : -15);
    st.codec = std::move(z);
    break;
  }
  case Format::br: {
#if H2POOL_HAVE_BROTLI
    library = "brotli";
    auto b = std::make_unique<BrotliCodec>();
    ok = b->ok();
    st.codec = std::move(b);
#endif
    break;
  }
  case Format::zstd: {
#if H2POOL_HAVE_ZSTD
    library = "zstd";
    auto z = std::make_unique<ZstdCodec>();
    ok = z->init();
    st.codec = std::move(z);
#endif
    break;
  }
  }
  if (!ok) {
    st.codec.reset();
    if (why)
      *why = std::string("cannot initialise ") + library;
    return H2POOL_ERR_NOMEM;
  }
  st.block.reset(new uint8_t[kChunk]);
  return H2POOL_OK;
}

int ContentDecoder::run_stage(size_t index, const Sink &sink, bool *paused,
                              bool *progress, std::string *why) {
  Stage &st = *stages_[index];
  Stage *prev = index > 0 ? stages_[index - 1].get() : nullptr;
  Stage *next = index + 1 < stages_.size() ? stages_[index + 1].get() : nullptr;

  for (;;) {
    st.wants_input = false;
    const uint8_t *in;
    size_t avail;
    if (prev) {
      in = prev->block.get() + prev->pos;
      avail = prev->len - prev->pos;
    } else {
      in = reinterpret_cast<const uint8_t *>(in_.data()) + in_pos_;
      avail = in_.size() - in_pos_;
    }

    if (st.ended) {
      if (avail == 0)
        return H2POOL_OK;
      // After a complete member only another gzip member may follow, and
      // after a zstd frame another frame (zstd itself checks its magic).
      if (st.format == Format::zstd) {
        st.ended = false;
        continue;
      }
      if (st.format == Format::gzip && in[0] == 0x1f) {
        if (avail < 2) {
          st.wants_input = true; // the second magic byte
          return H2POOL_OK;
        }
        if (in[1] == 0x8b) {
          st.codec->reset();
          st.ended = false;
          continue;
        }
      }
      if (why)
        *why = "trailing garbage after the compressed body";
      return H2POOL_ERR_DECODE;
    }
    if (!st.codec) {
      if (avail == 0)
        return H2POOL_OK;
      int rc = init_stage(st, in, avail, why);
      if (rc != H2POOL_OK || !st.codec)
        return rc;
    }
    if (avail == 0 && !st.output_owed)
      return H2POOL_OK;

    if (st.pos == st.len) {
      st.pos = st.len = 0;
    } else if (next && next->wants_input) {
      // Only a byte or so is left: top the block up behind it.
      std::memmove(st.block.get(), st.block.get() + st.pos, st.len - st.pos);
      st.len -= st.pos;
      st.pos = 0;
    } else {
      return H2POOL_OK; // the next stage has not taken the last block
    }

    st.saw_input = true;
    size_t space = kChunk - st.len;
    Step step =
        st.codec->decode(in, avail, st.block.get() + st.len, space, why);
    if (prev)
      prev->pos += step.used;
    else
      in_pos_ += step.used;
    st.in_total += step.used;
    st.out_total += step.produced;
    st.output_owed = step.owed;
    if (step.status == Step::Status::error)
      return step.error;
    if (step.status == Step::Status::end)
      st.ended = true;
    if (step.used == 0 && step.produced == 0 && !st.ended)
      return H2POOL_OK; // needs more input
    *progress = true;
    // Before anyone sees the bytes, so no step ever hands on more than the
    // limits allow.
    int limit = check_limits(index, why);
    if (limit != H2POOL_OK)
      return limit;
    st.len += step.produced;
    if (next) {
      if (step.produced)
        next->wants_input = false;
    } else if (st.len > 0) {
      const uint8_t *p = st.block.get();
      size_t n = st.len;
      st.pos = st.len = 0;
      if (!sink(p, n)) {
        *paused = true;
        return H2POOL_OK;
      }
    }
  }
}

int ContentDecoder::finish(std::string *why) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    const Stage &st = *stages_[i];
    if (st.saw_input && !st.ended) {
      if (why)
        *why = "compressed body is truncated";
      return H2POOL_ERR_DECODE;
    }
    bool unread = i == 0 ? in_pos_ < in_.size()
                         : stages_[i - 1]->pos < stages_[i - 1]->len;
    if (unread) {
      if (why)
        *why = "trailing bytes after the compressed body";
      return H2POOL_ERR_DECODE;
    }
  }
  return H2POOL_OK;
}

} // namespace h2pool_core
