#include "write_out.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "args.h"

namespace h2pool_cli {

void TransferInfo::take_timings(const h2pool_response *resp,
                                const h2pool_error *err) {
  for (int i = 0; i <= H2POOL_TIMING_TOTAL; ++i) {
    auto which = static_cast<h2pool_timing>(i);
    timing_us[i] = err ? h2pool_error_timing_us(err, which)
                       : h2pool_response_timing_us(resp, which);
  }
  remote_ip =
      err ? h2pool_error_remote_ip(err) : h2pool_response_remote_ip(resp);
  remote_port =
      err ? h2pool_error_remote_port(err) : h2pool_response_remote_port(resp);
  num_connects =
      err ? h2pool_error_num_connects(err) : h2pool_response_num_connects(resp);
}

namespace {

// curl prints a phase not reached (or a cleartext connection's TLS) as 0.
std::string seconds(int64_t us) {
  if (us < 0)
    us = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%06" PRId64, us / 1000000,
                us % 1000000);
  return buf;
}

// curl's %{http_version}: "2", "1.1", "1.0"; "0" when there was no response.
const char *http_version(int protocol) {
  switch (protocol) {
  case H2POOL_PROTOCOL_HTTP_2:
    return "2";
  case H2POOL_PROTOCOL_HTTP_1_1:
    return "1.1";
  case H2POOL_PROTOCOL_HTTP_1_0:
    return "1.0";
  default:
    return "0";
  }
}

bool variable(const std::string &name, const TransferInfo &t,
              std::string *out) {
  struct Time {
    const char *name;
    h2pool_timing which;
  };
  static const Time times[] = {
      {"time_queue", H2POOL_TIMING_QUEUED},
      {"time_namelookup", H2POOL_TIMING_NAMELOOKUP},
      {"time_connect", H2POOL_TIMING_CONNECT},
      {"time_appconnect", H2POOL_TIMING_APPCONNECT},
      {"time_pretransfer", H2POOL_TIMING_PRETRANSFER},
      {"time_starttransfer", H2POOL_TIMING_STARTTRANSFER},
      {"time_total", H2POOL_TIMING_TOTAL},
  };
  for (const Time &tm : times)
    if (name == tm.name) {
      *out = seconds(t.timing_us[tm.which]);
      return true;
    }
  if (name == "http_code" || name == "response_code") {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%03d", t.http_code);
    *out = buf;
  } else if (name == "size_download") {
    *out = std::to_string(t.size_download);
  } else if (name == "size_upload") {
    *out = std::to_string(t.size_upload);
  } else if (name == "size_header") {
    *out = std::to_string(t.size_header);
  } else if (name == "speed_download" || name == "speed_upload") {
    int64_t us = t.timing_us[H2POOL_TIMING_TOTAL];
    uint64_t bytes = name == "speed_download" ? t.size_download : t.size_upload;
    *out =
        std::to_string(us > 0 ? uint64_t(double(bytes) * 1e6 / double(us)) : 0);
  } else if (name == "remote_ip") {
    *out = t.remote_ip;
  } else if (name == "remote_port") {
    *out = t.remote_port ? std::to_string(t.remote_port) : std::string();
  } else if (name == "num_connects") {
    *out = std::to_string(t.num_connects);
  } else if (name == "http_version") {
    *out = http_version(t.protocol);
  } else if (name == "exitcode") {
    *out = std::to_string(t.exitcode);
  } else if (name == "errormsg") {
    *out = t.errormsg;
  } else if (name == "url" || name == "url_effective") {
    *out = t.url;
  } else if (name == "method") {
    *out = t.method;
  } else {
    return false;
  }
  return true;
}

} // namespace

std::string expand_write_out(const std::string &format,
                             const TransferInfo &info, std::string *warn) {
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '%' && i + 1 < format.size()) {
      if (format[i + 1] == '%') {
        out += '%';
        ++i;
        continue;
      }
      if (format[i + 1] == '{') {
        size_t end = format.find('}', i + 2);
        if (end != std::string::npos) {
          std::string name = format.substr(i + 2, end - i - 2);
          std::string value;
          if (variable(name, info, &value))
            out += value;
          else if (warn)
            *warn += "unknown --write-out variable: '" + name + "'\n";
          i = end;
          continue;
        }
      }
    } else if (c == '\\' && i + 1 < format.size()) {
      char e = format[i + 1];
      const char *rep = e == 'n'    ? "\n"
                        : e == 't'  ? "\t"
                        : e == 'r'  ? "\r"
                        : e == '\\' ? "\\"
                                    : nullptr;
      if (rep) {
        out += rep;
        ++i;
        continue;
      }
    }
    out += c;
  }
  return out;
}

std::string load_write_out(const std::string &arg) {
  if (arg.empty() || arg[0] != '@')
    return arg;
  std::string path = arg.substr(1);
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw UsageError("--write-out @" + path +
                     ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace h2pool_cli
