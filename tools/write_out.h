// curl's --write-out for `h2pool get -w FORMAT`: %{variable} expands to a
// fact about the finished transfer, \n \t \r \\ are escapes and %% is a
// percent sign. Times print in seconds with six decimals, as curl prints
// them. An unknown variable is warned about on stderr and expands to
// nothing, as curl does.
#pragma once

#include <h2pool.h>

#include <cstdint>
#include <string>

namespace h2pool_cli {

// What a transfer reports to --write-out.
struct TransferInfo {
  int64_t timing_us[H2POOL_TIMING_TOTAL + 1]; // -1: not reached
  int http_code = 0;
  int protocol = H2POOL_PROTOCOL_UNKNOWN;
  uint64_t size_download = 0;
  uint64_t size_upload = 0;
  uint64_t size_header = 0;
  std::string remote_ip;
  int remote_port = 0;
  int num_connects = 0;
  int exitcode = 0;
  std::string errormsg;
  std::string url;
  std::string method;

  TransferInfo() {
    for (int64_t &v : timing_us)
      v = -1;
  }
  // Copies the timings and peer of a completed request (`resp` or `err`
  // may be NULL).
  void take_timings(const h2pool_response *resp, const h2pool_error *err);
};

// Expands `format` for `info`. Unknown variables are reported through
// `warn` (one line each, without the program name) and expand to nothing.
std::string expand_write_out(const std::string &format,
                             const TransferInfo &info, std::string *warn);

// The FORMAT argument as given: "@FILE" reads it from FILE ("@-": stdin).
// Throws UsageError if the file cannot be read.
std::string load_write_out(const std::string &arg);

} // namespace h2pool_cli
