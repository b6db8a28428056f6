#include "priority.h"

#include <cassert>

namespace h2pool_core {
namespace {

// A cursor over a Structured Fields dictionary (RFC 8941 section 4.2.2),
// reading only as much of each item as RFC 9218's two members need: keys,
// integers and booleans; any other item (strings, tokens, byte sequences,
// inner lists, decimals) is skipped whole.
class DictReader {
public:
  explicit DictReader(std::string_view s) : s_(s) {}

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  bool eat(char c) {
    if (peek() != c)
      return false;
    ++i_;
    return true;
  }
  void skip_sp() {
    while (peek() == ' ')
      ++i_;
  }
  void skip_ows() {
    while (peek() == ' ' || peek() == '\t')
      ++i_;
  }

  // key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
  bool key(std::string_view *out) {
    size_t start = i_;
    char c = peek();
    if (!((c >= 'a' && c <= 'z') || c == '*'))
      return false;
    ++i_;
    for (c = peek(); (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || c == '.' || c == '*';
         c = peek())
      ++i_;
    *out = s_.substr(start, i_ - start);
    return true;
  }

  // A bare item. `*integer` is set for an integer, `*boolean` for a
  // boolean; false on a syntax error.
  bool bare_item(bool *is_int, long long *integer, bool *is_bool,
                 bool *boolean) {
    *is_int = *is_bool = false;
    char c = peek();
    if (c == '-' || (c >= '0' && c <= '9'))
      return number(is_int, integer);
    if (c == '?') {
      ++i_;
      if (eat('0') || eat('1')) {
        *is_bool = true;
        *boolean = s_[i_ - 1] == '1';
        return true;
      }
      return false;
    }
    if (c == '"')
      return string();
    if (c == ':')
      return byte_sequence();
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*')
      return token();
    return false;
  }

  // Parameters (";" key [ "=" bare-item ]), skipped: RFC 9218 defines none.
  bool skip_parameters() {
    while (eat(';')) {
      skip_sp();
      std::string_view k;
      if (!key(&k))
        return false;
      if (eat('=')) {
        bool is_int, is_bool, b;
        long long n;
        if (!bare_item(&is_int, &n, &is_bool, &b))
          return false;
      }
    }
    return true;
  }

  // An inner list, "(" *( item ) ")", skipped.
  bool skip_inner_list() {
    if (!eat('('))
      return false;
    for (;;) {
      skip_sp();
      if (eat(')'))
        return skip_parameters();
      bool is_int, is_bool, b;
      long long n;
      if (!bare_item(&is_int, &n, &is_bool, &b) || !skip_parameters())
        return false;
      if (peek() != ' ' && peek() != ')')
        return false;
    }
  }

private:
  bool number(bool *is_int, long long *out) {
    bool negative = eat('-');
    size_t digits = 0;
    long long v = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (++digits > 15)
        return false; // RFC 8941 integers have at most 15 digits
      v = v * 10 + (s_[i_++] - '0');
    }
    if (digits == 0)
      return false;
    if (eat('.')) { // a decimal: valid, but not an integer
      size_t frac = 0;
      while (peek() >= '0' && peek() <= '9') {
        ++i_;
        ++frac;
      }
      return frac >= 1 && frac <= 3 && digits <= 12;
    }
    *is_int = true;
    *out = negative ? -v : v;
    return true;
  }
  bool string() {
    ++i_; // the opening quote
    while (!at_end()) {
      char c = s_[i_++];
      if (c == '\\') {
        if (peek() != '"' && peek() != '\\')
          return false;
        ++i_;
      } else if (c == '"') {
        return true;
      } else if (c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    return false;
  }
  bool byte_sequence() {
    ++i_;
    while (!at_end()) {
      char c = s_[i_++];
      if (c == ':')
        return true;
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
        return false;
    }
    return false;
  }
  bool token() {
    ++i_;
    static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~:/";
    for (char c = peek();
         (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') ||
         (c != '\0' && kTchar.find(c) != std::string_view::npos);
         c = peek())
      ++i_;
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

} // namespace

std::string format_priority(Priority p) {
  std::string out = "u=";
  out += char('0' + (p.urgency < kUrgencyLevels ? p.urgency : kDefaultUrgency));
  if (p.incremental)
    out += ", i";
  return out;
}

Priority parse_priority(std::string_view value) {
  // Values found for each member; the last occurrence of a key counts
  // (RFC 8941 section 4.2.2), and an unusable one counts as absent.
  Priority found;
  bool have_u = false, have_i = false;
  DictReader r(value);
  r.skip_sp();
  if (r.at_end())
    return Priority{};
  for (;;) {
    std::string_view k;
    if (!r.key(&k))
      return Priority{}; // not a dictionary: the field is ignored
    bool is_int = false, is_bool = false, boolean = true;
    long long integer = 0;
    if (r.eat('=')) {
      if (r.peek() == '(') {
        if (!r.skip_inner_list())
          return Priority{};
      } else if (!r.bare_item(&is_int, &integer, &is_bool, &boolean) ||
                 !r.skip_parameters()) {
        return Priority{};
      }
    } else {
      is_bool = true; // a bare key is boolean true
      if (!r.skip_parameters())
        return Priority{};
    }
    if (k == "u") {
      have_u = is_int && integer >= 0 && integer < kUrgencyLevels;
      if (have_u)
        found.urgency = uint8_t(integer);
    } else if (k == "i") {
      have_i = is_bool;
      if (have_i)
        found.incremental = boolean;
    }
    r.skip_ows();
    if (r.at_end())
      break;
    if (!r.eat(','))
      return Priority{};
    r.skip_ows();
    if (r.at_end())
      return Priority{}; // a trailing comma
  }
  Priority p;
  if (have_u)
    p.urgency = found.urgency;
  if (have_i)
    p.incremental = found.incremental;
  return p;
}

RequestList &PriorityQueue::list_for(const Request *r) {
  return lists_[r->urgency < kUrgencyLevels ? r->urgency : kDefaultUrgency];
}

Request *PriorityQueue::front() const {
  for (const RequestList &list : lists_)
    if (Request *r = list.front())
      return r;
  return nullptr;
}

void PriorityQueue::push_back(Request *r) {
  list_for(r).push_back(r);
  ++size_;
}

void PriorityQueue::push_front(Request *r) {
  list_for(r).push_front(r);
  ++size_;
}

void PriorityQueue::remove(Request *r) {
  // By the list it is in, not its urgency, which may have changed since.
  for (RequestList &list : lists_)
    if (list.contains(r)) {
      list.remove(r);
      --size_;
      return;
    }
  assert(false && "request not in this queue");
}

Request *PriorityQueue::pop_front() {
  for (RequestList &list : lists_)
    if (!list.empty()) {
      --size_;
      return list.pop_front();
    }
  return nullptr;
}

bool PriorityQueue::contains(const Request *r) const {
  for (const RequestList &list : lists_)
    if (list.contains(r))
      return true;
  return false;
}

} // namespace h2pool_core
