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

struct ContentDecoder::Stage {
  Format format;
  z_stream z{};
  bool initialised = false;
  bool ended = false; // Z_STREAM_END seen for the current member
  bool saw_input = false;
  std::string in; // encoded bytes not yet consumed
  size_t in_pos = 0;
  std::string out; // decoded bytes not yet taken by the next stage
  size_t out_pos = 0;

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
  Stage &first = *stages_.front();
  if (first.in_pos == first.in.size()) {
    first.in.clear();
    first.in_pos = 0;
  }
  first.in.append(reinterpret_cast<const char *>(data), len);
  total_in_ += len;
}

bool ContentDecoder::has_pending() const {
  for (const auto &s : stages_)
    if (s->in_pos < s->in.size() || s->out_pos < s->out.size())
      return true;
  return false;
}

int ContentDecoder::pump(const Sink &sink, std::string *why) {
  bool paused = false;
  // Run the stages front to back until nothing moves; each stage's output
  // is the next one's input.
  for (;;) {
    bool progress = false;
    for (size_t i = 0; i < stages_.size(); ++i) {
      size_t before_in = stages_[i]->in.size() - stages_[i]->in_pos;
      size_t before_out = stages_[i]->out.size() - stages_[i]->out_pos;
      int rc = run_stage(i, sink, &paused, why);
      if (rc != H2POOL_OK)
        return rc;
      if (paused)
        return H2POOL_OK;
      size_t after_in = stages_[i]->in.size() - stages_[i]->in_pos;
      size_t after_out = stages_[i]->out.size() - stages_[i]->out_pos;
      if (after_in != before_in || after_out != before_out)
        progress = true;
    }
    if (!progress)
      return H2POOL_OK;
  }
}

int ContentDecoder::run_stage(size_t index, const Sink &sink, bool *paused,
                              std::string *why) {
  Stage &st = *stages_[index];
  bool last = index + 1 == stages_.size();

  // Hand on what this stage already decoded.
  auto deliver = [&]() -> bool {
    while (st.out_pos < st.out.size()) {
      size_t n = st.out.size() - st.out_pos;
      const uint8_t *p =
          reinterpret_cast<const uint8_t *>(st.out.data() + st.out_pos);
      if (last) {
        st.out_pos += n;
        if (!sink(p, n)) {
          *paused = true;
          return false;
        }
      } else {
        Stage &next = *stages_[index + 1];
        if (next.in_pos == next.in.size()) {
          next.in.clear();
          next.in_pos = 0;
        }
        next.in.append(reinterpret_cast<const char *>(p), n);
        st.out_pos += n;
      }
    }
    st.out.clear();
    st.out_pos = 0;
    return true;
  };
  if (!deliver())
    return H2POOL_OK;

  while (st.in_pos < st.in.size()) {
    const uint8_t *in =
        reinterpret_cast<const uint8_t *>(st.in.data()) + st.in_pos;
    size_t avail = st.in.size() - st.in_pos;
    if (st.ended) {
      // After a complete member only another gzip member may follow.
      if (st.format == Format::gzip && in[0] == 0x1f) {
        if (avail < 2)
          return H2POOL_OK; // wait for the second magic byte
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
      int window_bits = 15 + 16; // gzip wrapper only
      if (st.format == Format::deflate_auto) {
        // "deflate" is meant to be zlib-wrapped (RFC 9110), but servers
        // also send raw DEFLATE; a valid zlib header tells them apart.
        if (avail < 2)
          return H2POOL_OK;
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
    }
    st.saw_input = true;
    char buf[kChunk];
    st.z.next_in = const_cast<Bytef *>(in);
    st.z.avail_in = uInt(std::min<size_t>(avail, UINT32_MAX));
    st.z.next_out = reinterpret_cast<Bytef *>(buf);
    st.z.avail_out = sizeof buf;
    int rc = inflate(&st.z, Z_NO_FLUSH);
    size_t used = (st.z.next_in - in);
    size_t produced = sizeof buf - st.z.avail_out;
    st.in_pos += used;
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
    if (last) {
      total_out_ += produced;
      if (total_out_ > limits_.max_bytes) {
        if (why)
          *why = "decoded body exceeds " + std::to_string(limits_.max_bytes) +
                 " bytes";
        return H2POOL_ERR_DECOMPRESSION_BOMB;
      }
      if (total_out_ > kRatioGrace &&
          total_out_ / std::max<uint64_t>(total_in_, 1) >= limits_.max_ratio) {
        if (why)
          *why = "compression ratio exceeds " +
                 std::to_string(limits_.max_ratio) + ":1";
        return H2POOL_ERR_DECOMPRESSION_BOMB;
      }
    }
    st.out.append(buf, produced);
    if (!deliver())
      return H2POOL_OK;
    if (used == 0 && produced == 0)
      break;
  }
  if (st.in_pos == st.in.size()) {
    st.in.clear();
    st.in_pos = 0;
  }
  return H2POOL_OK;
}

int ContentDecoder::finish(std::string *why) const {
  for (const auto &st : stages_) {
    if (st->saw_input && !st->ended) {
      if (why)
        *why = "compressed body is truncated";
      return H2POOL_ERR_DECODE;
    }
    if (st->in_pos < st->in.size()) {
      if (why)
        *why = "trailing bytes after the compressed body";
      return H2POOL_ERR_DECODE;
    }
  }
  return H2POOL_OK;
}

} // namespace h2pool_core
