// Validation and normalisation of caller-supplied methods and headers, done
// on the caller's thread so that a bad request is refused synchronously.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "h2pool.h"

namespace h2pool_core {

struct HeaderField {
  std::string name; // lower-case for request headers
  std::string value;
};

// True if `method` is a non-empty RFC 9110 token.
bool valid_method(std::string_view method);

// RFC 9110 section 5.6.3: a field value without the optional whitespace
// (spaces and horizontal tabs) around it.
std::string_view trim_ows(std::string_view v);

// Compares without regard to ASCII case (field names, tokens).
bool equals_ignoring_ascii_case(std::string_view a, std::string_view b);

// The result of normalising the caller's request headers.
struct RequestHeaders {
  std::vector<HeaderField> fields;
  std::string authority; // non-empty if the caller set "host"
  bool has_content_length = false;
  bool has_accept_encoding = false;
  // The caller's "priority" field values (RFC 9218), joined with ", ".
  bool has_priority = false;
  std::string priority;
};

// Lower-cases names and checks every field against RFC 9113: no
// pseudo-headers, no connection-specific fields, valid names and values.
// te, whose one allowed value is "trailers" in any case, is stored as
// exactly "trailers".
// Returns H2POOL_OK or H2POOL_ERR_INVALID_HEADER with the reason in `*why`.
int normalize_request_headers(const h2pool_header *headers, size_t n,
                              RequestHeaders *out, std::string *why);

} // namespace h2pool_core
