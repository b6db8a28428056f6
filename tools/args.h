// Command-line parsing shared by the h2pool subcommands: option matching with
// "--name VALUE", "--name=VALUE", "-n VALUE" and "-nVALUE" forms, and strict
// numeric parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace h2pool_cli {

// A mistake in the command line. Reported with the command's usage on
// stderr and exit status 2.
class UsageError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Thrown when a command sees -h/--help: main() prints the command's usage on
// stdout and exits 0.
struct HelpRequested {};

// Parses a decimal unsigned integer made only of ASCII digits: no sign, no
// whitespace, no base prefix, no suffix. Throws UsageError naming `what` if
// `text` is not such a number or lies outside [min, max].
uint64_t parse_uint(std::string_view text, uint64_t min, uint64_t max,
                    std::string_view what);

// Walks a subcommand's arguments. Options may come before, between or after
// positional arguments; "--" ends option processing.
class ArgCursor {
public:
  explicit ArgCursor(std::vector<std::string> args);

  bool done() const { return pos_ >= args_.size(); }

  // If the current argument is the option `long_name` ("--name") or
  // `short_name` ("-n", may be empty) taking a value, consumes it and its
  // value, stores the value and returns true. Throws UsageError if the value
  // is missing.
  bool value_option(std::string_view long_name, std::string_view short_name,
                    std::string &value);

  // If the current argument is the flag `long_name` or `short_name`,
  // consumes it and returns true. "--flag=x" is a usage error.
  bool flag(std::string_view long_name, std::string_view short_name = {});

  // Throws HelpRequested if the current argument is -h or --help.
  void check_help();

  // Consumes the current argument as a positional one and returns it, or
  // returns nullopt after consuming a "--" separator. Throws UsageError if the
  // argument looks like an unknown option.
  std::optional<std::string> positional();

private:
  std::vector<std::string> args_;
  size_t pos_ = 0;
  bool options_ended_ = false;
};

} // namespace h2pool_cli
