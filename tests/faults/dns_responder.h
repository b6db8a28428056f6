// A tiny DNS server for the resolver tests, on 127.0.0.1 with an ephemeral
// UDP port: answers A and AAAA questions for the names it is given (with
// their TTL), NXDOMAIN for the rest, and counts every question, so a test
// can tell a cache hit from a query. A name can be made silent (its
// questions are counted and never answered) or held (answered only once
// `hold_until` distinct held names have been asked, proving that many
// lookups were in flight at once). A DnsSilence is a socket that reads and
// never answers, for timeouts.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace h2pool_testing {

// 127.0.0.1:port, for bind() and connect().
inline sockaddr_in loopback4(uint16_t port = 0) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  return sin;
}

class DnsResponder {
public:
  struct Record {
    std::vector<std::string> v4; // dotted quads
    std::vector<std::string> v6;
    uint32_t ttl = 60;
    bool silent = false;
    bool held = false;
  };

  DnsResponder() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    // Room for a burst of questions while the thread is busy answering.
    int rcvbuf = 1 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sin = loopback4();
    socklen_t len = sizeof sin;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&sin), len) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr *>(&sin), &len) != 0)
      return;
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~DnsResponder() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
    if (fd_ >= 0)
      close(fd_);
  }
  DnsResponder(const DnsResponder &) = delete;
  DnsResponder &operator=(const DnsResponder &) = delete;

  bool ok() const { return port_ != 0; }
  // For h2pool_config_set_dns_servers().
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  void set(const std::string &name, Record r) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[name] = std::move(r);
  }
  // Names ending in `suffix` not set otherwise get `r`.
  void set_suffix(const std::string &suffix, Record r) {
    std::lock_guard<std::mutex> lock(mu_);
    suffix_ = suffix;
    suffix_record_ = std::move(r);
  }
  void set_silent(const std::string &name, bool silent) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[name].silent = silent;
  }
  // Held names are answered once this many distinct ones have been asked.
  void hold_until(size_t distinct) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_until_ = distinct;
  }
  // Questions received for `name` (A and AAAA each count), and of a type
  // (1: A, 28: AAAA).
  int questions(const std::string &name, int type = 0) const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto &q : asked_)
      if (q.first == name && (type == 0 || q.second == type))
        ++n;
    return n;
  }
  size_t total_questions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_.size();
  }
  size_t peak_held() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_held_;
  }

private:
  struct Query {
    sockaddr_in from;
    std::string packet;
    std::string name;
    int type;
  };

  void run() {
    char buf[1500];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0)
        continue;
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom(fd_, buf, sizeof buf, 0,
                           reinterpret_cast<sockaddr *>(&from), &flen);
      if (n < 12)
        continue;
      Query q{from, std::string(buf, size_t(n)), "", 0};
      size_t end = 12;
      if (!parse_question(q.packet, &q.name, &q.type, &end))
        continue;
      q.packet.resize(end + 4); // header and question, nothing after
      std::vector<Query> answer_now;
      {
        std::lock_guard<std::mutex> lock(mu_);
        asked_.emplace_back(q.name, q.type);
        const Record *r = find(q.name);
        if (r && r->silent)
          continue;
        if (r && r->held) {
          held_.push_back(q);
          held_names_.insert(q.name);
          peak_held_ = std::max(peak_held_, held_names_.size());
          if (held_names_.size() < hold_until_)
            continue;
          answer_now.swap(held_);
        } else {
          answer_now.push_back(q);
        }
      }
      for (const Query &a : answer_now)
        answer(a);
    }
  }

  const Record *find(const std::string &name) const {
    auto it = records_.find(name);
    if (it != records_.end())
      return &it->second;
    if (!suffix_.empty() && name.size() > suffix_.size() &&
        name.compare(name.size() - suffix_.size(), suffix_.size(), suffix_) ==
            0)
      return &suffix_record_;
    return nullptr;
  }

  static bool parse_question(const std::string &p, std::string *name, int *type,
                             size_t *pos) {
    size_t i = 12;
    std::string n;
    while (i < p.size() && p[i] != 0) {
      size_t len = uint8_t(p[i]);
      if (len > 63 || i + 1 + len > p.size())
        return false;
      if (!n.empty())
        n += '.';
      for (size_t k = 0; k < len; ++k)
        n += char(tolower(uint8_t(p[i + 1 + k])));
      i += 1 + len;
    }
    if (i + 5 > p.size())
      return false;
    *type = (uint8_t(p[i + 1]) << 8) | uint8_t(p[i + 2]);
    *name = n;
    *pos = i + 1;
    return true;
  }

  void answer(const Query &q) {
    std::vector<std::string> rdatas;
    uint32_t ttl = 0;
    bool exists = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (const Record *r = find(q.name)) {
        exists = true;
        ttl = r->ttl;
        int family = q.type == 1 ? AF_INET : AF_INET6;
        for (const std::string &a : q.type == 1 ? r->v4 : r->v6) {
          unsigned char bytes[16];
          if ((q.type == 1 || q.type == 28) &&
              inet_pton(family, a.c_str(), bytes) == 1)
            rdatas.emplace_back(reinterpret_cast<char *>(bytes),
                                q.type == 1 ? 4 : 16);
        }
      }
    }
    std::string out = q.packet;
    out[2] = char(0x81);                 // QR, RD
    out[3] = char(exists ? 0x80 : 0x83); // RA; NOERROR or NXDOMAIN
    out[6] = 0;
    out[7] = char(rdatas.size());
    out[8] = out[9] = out[10] = out[11] = 0;
    for (const std::string &rd : rdatas) {
      out += std::string("\xc0\x0c", 2); // the question's name
      out += char(0);
      out += char(q.type);
      out += std::string("\x00\x01", 2); // IN
      out += char(ttl >> 24);
      out += char(ttl >> 16);
      out += char(ttl >> 8);
      out += char(ttl);
      out += char(0);
      out += char(rd.size());
      out += rd;
    }
    sendto(fd_, out.data(), out.size(), 0,
           reinterpret_cast<const sockaddr *>(&q.from), sizeof q.from);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;
  std::string suffix_;
  Record suffix_record_;
  size_t hold_until_ = 0;
  std::vector<Query> held_;
  std::set<std::string> held_names_;
  size_t peak_held_ = 0;
  std::vector<std::pair<std::string, int>> asked_;
};

// A UDP socket on 127.0.0.1 that never answers: a DNS server that is down.
class DnsSilence {
public:
  DnsSilence() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sin = loopback4();
    socklen_t len = sizeof sin;
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr *>(&sin), len) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr *>(&sin), &len) == 0)
      port_ = ntohs(sin.sin_port);
  }
  ~DnsSilence() {
    if (fd_ >= 0)
      close(fd_);
  }
  bool ok() const { return port_ != 0; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  // Datagrams received so far (drained).
  int received() {
    char buf[1500];
    while (recv(fd_, buf, sizeof buf, 0) > 0)
      ++received_;
    return received_;
  }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
  int received_ = 0;
};

} // namespace h2pool_testing
