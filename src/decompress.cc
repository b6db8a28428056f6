#include "decompress.h"

#include <cstring>

#include "h2pool.h"

namespace h2pool_core {
namespace {

constexpr size_t kChunk = 64u << 10;
constexpr uint64_t kRatioGrace = 1u << 20; // ratios of tiny bodies say little

enum class Format { gzip, deflate_auto, deflate_zlib, deflate_raw };

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

} // namespace

// Stages run in bounded blocks: each one decodes into its own block of
// kChunk bytes and may not decode more until the next stage has taken all
// of it, so a chain of codings holds a few blocks whatever it expands to.
struct ContentDecoder::Stage {
  Format format;
  z_stream z{};
  bool initialised = false;
  bool ended = false; // Z_STREAM_END seen for the current member
  bool saw_input = false;
  // The last inflate() filled the block, so it may owe output it can give
  // without more input: a match or stored block cut short, whose input may
  // already be consumed (raw DEFLATE has no trailer to come after it).
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

  ~Stage() {
    if (initialised)
      inflateEnd(&z);
  }
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
      // After a complete member only another gzip member may follow.
      if (st.format == Format::gzip && in[0] == 0x1f) {
        if (avail < 2) {
          st.wants_input = true; // the second magic byte
          return H2POOL_OK;
        }
        if (in[1] == 0x8b) {
          inflateReset(&st.z);
          st.ended = false;
          continue;
        }
      }
      if (why)
        *why = "trailing garbage after the compressed body";
      return H2POOL_ERR_DECODE;
    }
    if (!st.initialised) {
      if (avail == 0)
        return H2POOL_OK;
      int window_bits = 15 + 16; // gzip wrapper only
      if (st.format == Format::deflate_auto) {
        // "deflate" is meant to be zlib-wrapped (RFC 9110), but servers
        // also send raw DEFLATE; a valid zlib header tells them apart.
        if (avail < 2) {
          st.wants_input = true;
          return H2POOL_OK;
        }
        bool zlib = (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
                    ((unsigned(in[0]) << 8) | in[1]) % 31 == 0;
        st.format = zlib ? Format::deflate_zlib : Format::deflate_raw;
      }
      if (st.format == Format::deflate_zlib)
        window_bits = 15;
      else if (st.format == Format::deflate_raw)
        window_bits = -15;
      if (inflateInit2(&st.z, window_bits) != Z_OK) {
        if (why)
          *why = "cannot initialise zlib";
        return H2POOL_ERR_NOMEM;
      }
      st.initialised = true;
      st.block.reset(new uint8_t[kChunk]);
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
    st.z.next_in = const_cast<Bytef *>(in);
    st.z.avail_in = uInt(std::min<size_t>(avail, UINT32_MAX));
    st.z.next_out = st.block.get() + st.len;
    st.z.avail_out = uInt(space);
    int rc = inflate(&st.z, Z_NO_FLUSH);
    size_t used = st.z.next_in - in;
    size_t produced = space - st.z.avail_out;
    if (prev)
      prev->pos += used;
    else
      in_pos_ += used;
    st.in_total += used;
    st.out_total += produced;
    st.output_owed = rc == Z_OK && st.z.avail_out == 0;
    if (rc == Z_STREAM_END) {
      st.ended = true;
    } else if (rc == Z_BUF_ERROR && used == 0 && produced == 0) {
      return H2POOL_OK; // needs more input
    } else if (rc != Z_OK) {
      if (why)
        *why = std::string("corrupt compressed body: ") +
               (st.z.msg ? st.z.msg : "zlib error " + std::to_string(rc));
      return H2POOL_ERR_DECODE;
    }
    if (used == 0 && produced == 0 && !st.ended)
      return H2POOL_OK;
    *progress = true;
    // Before anyone sees the bytes, so no step ever hands on more than the
    // limits allow.
    int limit = check_limits(index, why);
    if (limit != H2POOL_OK)
      return limit;
    st.len += produced;
    if (next) {
      if (produced)
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
