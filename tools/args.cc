#include "args.h"

#include <charconv>
#include <utility>

namespace h2pool_cli {

uint64_t parse_uint(std::string_view text, uint64_t min, uint64_t max,
                    std::string_view what) {
  auto fail = [&](std::string_view why) -> UsageError {
    return UsageError(std::string(what) + ": " + std::string(why) + ": '" +
                      std::string(text) + "'");
  };
  if (text.empty()) {
    throw fail("expected a number");
  }
  // from_chars would accept a leading '-' for signed types only, but be
  // explicit: digits and nothing else.
  for (char c : text) {
    if (c < '0' || c > '9') {
      throw fail("expected a non-negative decimal integer");
    }
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    throw fail("number too large");
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw fail("expected a number");
  }
  if (v < min || v > max) {
    throw UsageError(std::string(what) + ": " + std::string(text) +
                     " is out of range (" + std::to_string(min) + ".." +
                     std::to_string(max) + ")");
  }
  return v;
}

ArgCursor::ArgCursor(std::vector<std::string> args) : args_(std::move(args)) {}

bool ArgCursor::value_option(std::string_view long_name,
                             std::string_view short_name, std::string &value) {
  if (done() || options_ended_) {
    return false;
  }
  std::string_view a = args_[pos_];
  bool inline_value = false;
  std::string_view rest;
  if (a == long_name || (!short_name.empty() && a == short_name)) {
    // value in the next argument
  } else if (a.size() > long_name.size() + 1 && a.starts_with(long_name) &&
             a[long_name.size()] == '=') {
    inline_value = true;
    rest = a.substr(long_name.size() + 1);
  } else if (a.size() == long_name.size() + 1 && a.starts_with(long_name) &&
             a.back() == '=') {
    inline_value = true; // "--name=" gives an empty value
    rest = {};
  } else if (!short_name.empty() && a.size() > short_name.size() &&
             a.starts_with(short_name)) {
    inline_value = true; // "-n100"
    rest = a.substr(short_name.size());
  } else {
    return false;
  }
  if (inline_value) {
    value.assign(rest);
    ++pos_;
    return true;
  }
  if (pos_ + 1 >= args_.size()) {
    throw UsageError("option " + std::string(a) + " requires a value");
  }
  value = args_[pos_ + 1];
  pos_ += 2;
  return true;
}

bool ArgCursor::flag(std::string_view long_name, std::string_view short_name) {
  if (done() || options_ended_) {
    return false;
  }
  std::string_view a = args_[pos_];
  if (a == long_name || (!short_name.empty() && a == short_name)) {
    ++pos_;
    return true;
  }
  if (a.starts_with(long_name) && a.size() > long_name.size() &&
      a[long_name.size()] == '=') {
    throw UsageError("option " + std::string(long_name) +
                     " does not take a value");
  }
  return false;
}

void ArgCursor::check_help() {
  if (!done() && !options_ended_ &&
      (args_[pos_] == "-h" || args_[pos_] == "--help")) {
    throw HelpRequested{};
  }
}

std::optional<std::string> ArgCursor::positional() {
  std::string a = args_[pos_];
  if (!options_ended_ && a == "--") {
    options_ended_ = true;
    ++pos_;
    return std::nullopt;
  }
  if (!options_ended_ && a.size() > 1 && a[0] == '-') {
    throw UsageError("unknown option '" + a + "'");
  }
  ++pos_;
  return a;
}

} // namespace h2pool_cli
