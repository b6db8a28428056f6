#include "headers.h"

#include <nghttp2/nghttp2.h>

#include <cstdint>

namespace h2pool_core {
namespace {

// RFC 9113 section 8.2.2: these belong to HTTP/1.1 connection management and
// make an HTTP/2 message malformed.
bool is_connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" ||
         name == "proxy-connection" || name == "transfer-encoding" ||
         name == "upgrade";
}

int fail(std::string *why, std::string reason) {
  if (why)
    *why = std::move(reason);
  return H2POOL_ERR_INVALID_HEADER;
}

} // namespace

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = char(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

bool valid_method(std::string_view method) {
  // nghttp2's own check (a non-empty RFC 9110 token), the rule its server
  // side applies to what we send. (A request keeps its length in 32 bits.)
  return method.size() <= UINT32_MAX &&
         nghttp2_check_method(reinterpret_cast<const uint8_t *>(method.data()),
                              method.size()) != 0;
}

int normalize_request_headers(const h2pool_header *headers, size_t n,
                              RequestHeaders *out, std::string *why) {
  out->fields.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const h2pool_header &h = headers[i];
    if ((h.name == nullptr && h.name_len) ||
        (h.value == nullptr && h.value_len))
      return fail(why, "header " + std::to_string(i) + " has a NULL pointer");
    std::string name(h.name ? h.name : "", h.name_len);
    if (name.empty())
      return fail(why, "header " + std::to_string(i) + " has an empty name");
    if (name[0] == ':')
      return fail(why, "pseudo-header '" + name +
                           "' is set by h2pool, not by the caller");
    for (char &c : name)
      if (c >= 'A' && c <= 'Z')
        c = char(c - 'A' + 'a');
    // Lower-cased first: HTTP/2 field names are lower case, and nghttp2's
    // check (a token without upper-case letters) says so.
    if (!nghttp2_check_header_name(
            reinterpret_cast<const uint8_t *>(name.data()), name.size()))
      return fail(why, "header name '" + name + "' has an invalid character");
    std::string_view value(h.value ? h.value : "", h.value_len);
    if (name == "te") {
      // RFC 9113 section 8.2.2: te may carry only "trailers". Its tokens are
      // case-insensitive (RFC 9110 section 10.1.4) and whitespace around a
      // field value is not part of it, so "Trailers " means the same; it is
      // sent in the one spelling every HTTP/2 peer accepts.
      if (!equals_ignoring_ascii_case(trim_ows(value), "trailers"))
        return fail(why, "header 'te' may only be \"trailers\" in HTTP/2");
      out->fields.push_back({std::move(name), "trailers"});
      continue;
    }
    if (!nghttp2_check_header_value_rfc9113(
            reinterpret_cast<const uint8_t *>(value.data()), value.size()))
      return fail(why, "header '" + name +
                           "' has an invalid value (CR, LF, NUL or "
                           "leading/trailing whitespace)");
    if (is_connection_specific(name))
      return fail(why, "header '" + name + "' is not allowed in HTTP/2");
    if (name == "host") {
      // HTTP/2 carries the host in :authority; sending both invites
      // disagreement, so the caller's value replaces the URL's authority,
      // and must be one: host[:port], no userinfo, nothing else.
      if (value.empty())
        return fail(why, "header 'host' is empty");
      if (value.find('@') != std::string_view::npos ||
          !nghttp2_check_authority(
              reinterpret_cast<const uint8_t *>(value.data()), value.size()))
        return fail(why, "header 'host' is not a valid authority: '" +
                             std::string(value) + "'");
      out->authority.assign(value);
      continue;
    }
    if (name == "content-length")
      out->has_content_length = true;
    if (name == "accept-encoding")
      out->has_accept_encoding = true;
    if (name == "priority") {
      // Several fields of a Structured Field combine as one list
      // (RFC 8941 section 4.2).
      if (out->has_priority)
        out->priority += ", ";
      out->priority.append(value);
      out->has_priority = true;
    }
    out->fields.push_back({std::move(name), std::string(value)});
  }
  return H2POOL_OK;
}

} // namespace h2pool_core
