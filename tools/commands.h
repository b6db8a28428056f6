// The h2pool subcommands. Each takes the arguments after its name and
// returns the process exit status; usage mistakes are thrown as UsageError
// and reported by main() with the command's usage text.
#pragma once

#include <string>
#include <vector>

namespace h2pool_cli {

using Args = std::vector<std::string>;

// Exit statuses shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int cmd_get(const Args &args);
int cmd_bench(const Args &args);
int cmd_serve(const Args &args);
int cmd_demo(const Args &args);

extern const char kGetUsage[];
extern const char kBenchUsage[];
extern const char kServeUsage[];
extern const char kDemoUsage[];

} // namespace h2pool_cli
