#include "url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "h2pool.h"

namespace h2pool_core {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Host names as DNS and the registered-name rule of RFC 3986 allow in
// practice; percent-encoded and non-ASCII (IDNA) names are out of scope.
bool is_host_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

// The characters that end the authority (RFC 3986 section 3.2).
bool ends_authority(char c) { return c == '/' || c == '?' || c == '#'; }

// `lower_word` is lower-case.
bool iequals(std::string_view s, std::string_view lower_word) {
  if (s.size() != lower_word.size())
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lower_word[i])
      return false;
  }
  return true;
}

int fail(std::string *why, int code, const char *reason) {
  if (why)
    *why = reason;
  return code;
}

constexpr size_t kBadByte = std::string_view::npos;

// Spaces, controls and raw non-ASCII bytes must be percent-encoded; a URL
// carrying them is a caller bug we report rather than send. Returns kBadByte
// for such a URL, else the offset of the first '#' (s.size() if none), so
// the caller need not search for the fragment again.
size_t check_bytes(std::string_view s) {
  // This runs over every path on every request, so it first skips eight
  // bytes at a time while a word holds only bytes in 0x21..0x7e and no '#'
  // (tests from "Bit Twiddling Hacks", exact about whether a word has such a
  // byte if not about which), then goes byte by byte from the first that may.
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHighBits = 0x8080808080808080;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    uint64_t below = (w - kOnes * 0x21) & ~w; // a byte < 0x21
    uint64_t above = (w + kOnes) | w;         // a byte > 0x7e
    uint64_t h = w ^ (kOnes * '#');           // '#' becomes a zero byte
    uint64_t zero = (h - kOnes) & ~h;
    if (((below | above | zero) & kHighBits) != 0)
      break;
  }
  size_t hash = s.size();
  for (; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c <= 0x20 || c >= 0x7f)
      return kBadByte;
    if (c == '#' && hash == s.size())
      hash = i;
  }
  return hash;
}

int bad_byte(std::string *why) {
  return fail(why, H2POOL_ERR_INVALID_URL,
              "URL contains a space, control or non-ASCII character");
}

// A name longer than DNS allows (253, plus the root's trailing dot) is
// refused before its characters are looked at, which bounds the copy.
constexpr size_t kMaxHostName = 253 + 1;
static_assert(kMaxHostName >= INET6_ADDRSTRLEN);

// A parsed "scheme://authority"; the strings live in an OriginBuffers or in
// the per-thread cache.
struct Origin {
  Scheme scheme = Scheme::http;
  bool host_is_ipv6 = false;
  uint16_t port = 0;
  std::string_view host;
  std::string_view authority;
};

// Stack storage for a full parse, so a failed parse allocates nothing and
// leaves *out alone.
struct OriginBuffers {
  char host[kMaxHostName];
  char authority[kMaxHostName + 8]; // '[' host ']' ":65535"
};

// Parses the "scheme://authority" that `text` (already through
// check_bytes) starts with. On success sets *origin and *origin_len, the
// length of that prefix of `text`.
int parse_origin(std::string_view text, Origin *origin, OriginBuffers *buf,
                 size_t *origin_len, std::string *why) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0)
    return fail(why, H2POOL_ERR_INVALID_URL,
                "URL is not absolute (expected scheme://host/...)");
  std::string_view scheme = text.substr(0, sep);
  for (size_t i = 0; i < scheme.size(); ++i) {
    char c = scheme[i];
    bool ok = is_alpha(c) ||
              (i > 0 && (is_digit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok)
      return fail(why, H2POOL_ERR_INVALID_URL, "URL scheme is malformed");
  }
  Origin o;
  if (iequals(scheme, "http")) {
    o.scheme = Scheme::http;
    o.port = 80;
  } else if (iequals(scheme, "https")) {
    o.scheme = Scheme::https;
    o.port = 443;
  } else {
    return fail(why, H2POOL_ERR_UNSUPPORTED_SCHEME,
                "only http:// and https:// URLs are supported");
  }
  const uint16_t default_port = o.port;

  size_t auth_begin = sep + 3;
  size_t auth_end = auth_begin;
  bool has_at = false;
  // One plain loop: find_first_of is slow for this.
  while (auth_end < text.size() && !ends_authority(text[auth_end])) {
    has_at |= text[auth_end] == '@';
    ++auth_end;
  }
  std::string_view auth = text.substr(auth_begin, auth_end - auth_begin);
  if (has_at)
    return fail(why, H2POOL_ERR_INVALID_URL,
                "credentials in the URL are not supported");
  if (auth.empty())
    return fail(why, H2POOL_ERR_INVALID_URL, "URL has no host");

  std::string_view port_text;
  bool has_port = false;
  if (auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos)
      return fail(why, H2POOL_ERR_INVALID_URL, "unterminated IPv6 literal");
    std::string_view literal = auth.substr(1, close - 1);
    // inet_pton wants a C string. No textual IPv6 address is longer than 45
    // characters (8 groups of at most 4 hex digits, or 6 and a dotted quad),
    // so anything that does not fit is invalid anyway.
    char text6[64];
    in6_addr a6;
    if (literal.empty() || literal.size() >= sizeof text6)
      return fail(why, H2POOL_ERR_INVALID_URL, "invalid IPv6 literal");
    std::memcpy(text6, literal.data(), literal.size());
    text6[literal.size()] = '\0';
    if (inet_pton(AF_INET6, text6, &a6) != 1)
      return fail(why, H2POOL_ERR_INVALID_URL, "invalid IPv6 literal");
    inet_ntop(AF_INET6, &a6, buf->host, sizeof buf->host);
    o.host = buf->host;
    o.host_is_ipv6 = true;
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return fail(why, H2POOL_ERR_INVALID_URL,
                    "unexpected characters after IPv6 literal");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    std::string_view host = auth.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = auth.substr(colon + 1);
    }
    if (host.empty())
      return fail(why, H2POOL_ERR_INVALID_URL, "URL has no host");
    if (host.size() > kMaxHostName)
      return fail(why, H2POOL_ERR_INVALID_URL, "host name too long");
    for (size_t i = 0; i < host.size(); ++i) {
      if (!is_host_char(host[i]))
        return fail(why, H2POOL_ERR_INVALID_URL,
                    "host contains an invalid character");
      buf->host[i] = lower(host[i]);
    }
    o.host = std::string_view(buf->host, host.size());
    if (o.host == "." || o.host.find("..") != std::string_view::npos)
      return fail(why, H2POOL_ERR_INVALID_URL, "host has an empty label");
  }
  if (has_port && !port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(
        port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() ||
        value == 0 || value > 65535 || !is_digit(port_text.front()))
      return fail(why, H2POOL_ERR_INVALID_URL,
                  "port must be a number from 1 to 65535");
    o.port = uint16_t(value);
  }

  char *a = buf->authority;
  if (o.host_is_ipv6)
    *a++ = '[';
  a = std::copy(o.host.begin(), o.host.end(), a);
  if (o.host_is_ipv6)
    *a++ = ']';
  if (o.port != default_port) {
    *a++ = ':';
    a = std::to_chars(a, buf->authority + sizeof buf->authority, o.port).ptr;
  }
  o.authority = std::string_view(buf->authority, size_t(a - buf->authority));

  *origin = o;
  *origin_len = auth_end;
  return H2POOL_OK;
}

// The origin of the last URL this thread parsed, keyed by its
// "scheme://authority" text exactly as given: callers mostly send many
// requests to one origin, and comparing a prefix is far cheaper than parsing
// it. Only for prefixes that fit, so it is a fixed-size POD: a thread_local
// with a destructor (a std::string member, say) would register a TLS
// destructor per thread, and glibc then keeps a dlopen'ed library from
// unloading at dlclose while any such thread lives.
constexpr size_t kCachedPrefixMax = 128;

struct OriginCache {
  // 0 while empty. No origin prefix is shorter than "x://y".
  uint8_t prefix_len;
  uint8_t host_len;
  uint8_t authority_len;
  bool host_is_ipv6;
  Scheme scheme;
  uint16_t port;
  char prefix[kCachedPrefixMax];
  char host[kCachedPrefixMax];
  char authority[kCachedPrefixMax];
};

constinit thread_local OriginCache t_last_origin{};

// In a shared library each access to a thread_local may be a call to
// __tls_get_addr, and GCC repeats that call after every other call rather
// than keep the address; taking it once out of line avoids the repeats.
[[gnu::noinline]] OriginCache *last_origin() { return &t_last_origin; }

void remember(std::string_view prefix, const Origin &o, OriginCache *cache) {
  // The host and authority are never longer than the prefix they come from,
  // except a canonicalised IPv6 literal, which is at most 45 characters.
  if (prefix.size() > kCachedPrefixMax || o.host.size() > kCachedPrefixMax ||
      o.authority.size() > kCachedPrefixMax)
    return;
  cache->prefix_len = uint8_t(prefix.size());
  std::memcpy(cache->prefix, prefix.data(), prefix.size());
  cache->host_len = uint8_t(o.host.size());
  std::memcpy(cache->host, o.host.data(), o.host.size());
  cache->authority_len = uint8_t(o.authority.size());
  std::memcpy(cache->authority, o.authority.data(), o.authority.size());
  cache->host_is_ipv6 = o.host_is_ipv6;
  cache->scheme = o.scheme;
  cache->port = o.port;
}

// Writes the result. `tail` is what follows the authority, up to the fragment
// (empty, or starting with '/' or '?'). Assigning into the caller's strings
// rather than moving a whole Url in reuses their buffers.
void store(const Origin &o, std::string_view tail, Url *out) {
  out->scheme = o.scheme;
  out->host_len = uint16_t(o.host.size());
  out->host_is_ipv6 = o.host_is_ipv6;
  out->port = o.port;
  out->authority.assign(o.authority);
  if (tail.empty()) {
    out->path.assign(1, '/');
  } else if (tail.front() == '?') {
    out->path.assign(tail.size() + 1, '/');
    std::memcpy(out->path.data() + 1, tail.data(), tail.size());
  } else {
    out->path.assign(tail);
  }
}

} // namespace

std::string Url::endpoint_name() const {
  std::string s = scheme == Scheme::https ? "https://" : "http://";
  if (host_is_ipv6)
    s += '[';
  s += host();
  if (host_is_ipv6)
    s += ']';
  s += ':';
  s += std::to_string(port);
  return s;
}

int parse_url(std::string_view text, Url *out, std::string *why) {
  OriginCache &cache = *last_origin();
  size_t n = cache.prefix_len;
  // The cached prefix was accepted whole, so it holds no byte check_bytes
  // refuses and none that ends an authority: if `text` continues it with a
  // delimiter, a full parse would find the same scheme and authority.
  if (n != 0 && text.size() >= n &&
      (text.size() == n || ends_authority(text[n])) &&
      std::memcmp(text.data(), cache.prefix, n) == 0) {
    std::string_view rest = text.substr(n);
    size_t hash = check_bytes(rest);
    if (hash == kBadByte)
      return bad_byte(why);
    Origin o;
    o.scheme = cache.scheme;
    o.host_is_ipv6 = cache.host_is_ipv6;
    o.port = cache.port;
    o.host = std::string_view(cache.host, cache.host_len);
    o.authority = std::string_view(cache.authority, cache.authority_len);
    store(o, rest.substr(0, hash), out);
    return H2POOL_OK;
  }

  size_t hash = check_bytes(text);
  if (hash == kBadByte)
    return bad_byte(why);
  OriginBuffers buf;
  Origin o;
  size_t origin_len = 0;
  int rc = parse_origin(text, &o, &buf, &origin_len, why);
  if (rc != H2POOL_OK)
    return rc;
  remember(text.substr(0, origin_len), o, &cache);
  // A '#' before the end of the authority would have failed the parse (it
  // would sit in the scheme), so the fragment starts at or after origin_len.
  store(o, text.substr(origin_len, hash - origin_len), out);
  return H2POOL_OK;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    c = lower(c);
  return out;
}

bool parse_port(std::string_view text, uint16_t *port) {
  if (text.empty() || text.size() > 5)
    return false;
  uint32_t v = 0;
  for (char c : text) {
    if (!is_digit(c))
      return false;
    v = v * 10 + uint32_t(c - '0');
  }
  if (v < 1 || v > 65535)
    return false;
  *port = uint16_t(v);
  return true;
}

bool is_host_name(std::string_view host) {
  for (char c : host)
    if (!is_host_char(c))
      return false;
  return !host.empty();
}

} // namespace h2pool_core
