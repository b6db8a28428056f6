#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

namespace h2pool_cli {

namespace {

int terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
    return ws.ws_col;
  return 80;
}

std::string clock_text(double s) {
  if (s < 0 || s > 99 * 3600)
    return "--:--:--";
  auto t = static_cast<unsigned long>(s);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lu:%02lu:%02lu", t / 3600, t / 60 % 60,
                t % 60);
  return buf;
}

} // namespace

std::string human_bytes(double bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes,
                units[u]);
  return buf;
}

Progress::Progress(Style style)
    : style_(style), start_(Clock::now()), last_draw_(start_) {}

bool Progress::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

void Progress::set_download_total(int64_t bytes) {
  down_total_.store(bytes, std::memory_order_relaxed);
}

void Progress::set_upload_total(int64_t bytes) {
  up_total_.store(bytes, std::memory_order_relaxed);
}

void Progress::downloaded(uint64_t bytes) {
  down_.fetch_add(bytes, std::memory_order_relaxed);
  maybe_draw(false);
}

void Progress::uploaded(uint64_t bytes) {
  up_.fetch_add(bytes, std::memory_order_relaxed);
  maybe_draw(false);
}

void Progress::finish() {
  maybe_draw(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (drawn_)
    std::fputc('\n', stderr);
}

std::string Progress::format(Style style, uint64_t done, int64_t total,
                             double elapsed_s, int width) {
  double rate = elapsed_s > 0 ? double(done) / elapsed_s : 0;
  bool known = total > 0;
  double fraction = known ? double(done) / double(total) : 0;
  if (fraction > 1)
    fraction = 1;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%5.1f%%", fraction * 100);
  if (style == Style::bar) {
    // curl's -#: a bar of '#' across the line and the percentage.
    int cells = width - 8;
    if (cells < 10)
      cells = 10;
    std::string line;
    int filled = known ? int(fraction * cells) : int(done / 65536 % cells);
    line.append(size_t(filled), '#');
    line.append(size_t(cells - filled), ' ');
    line += ' ';
    line += known ? pct : "  ?  %";
    return line;
  }
  double eta = known && rate > 0 ? double(total - int64_t(done)) / rate : -1;
  std::string line = known ? std::string(pct) + " " : std::string("       ");
  line += human_bytes(double(done));
  line += known ? " of " + human_bytes(double(total)) : std::string();
  line += "  " + human_bytes(rate) + "/s";
  line += "  " + clock_text(elapsed_s) + " elapsed  ETA " + clock_text(eta);
  if (int(line.size()) < width - 1)
    line.append(size_t(width - 1) - line.size(), ' ');
  return line;
}

void Progress::maybe_draw(bool force) {
  Clock::time_point now = Clock::now();
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    if (!force)
      return; // someone is drawing this very moment
    lock.lock();
  }
  if (!force && now - last_draw_ < std::chrono::milliseconds(200))
    return;
  last_draw_ = now;
  // The direction with data in flight: an upload until its body is sent,
  // then the download.
  uint64_t down = down_.load(std::memory_order_relaxed);
  uint64_t up = up_.load(std::memory_order_relaxed);
  bool upload = down == 0 && up > 0;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string line =
      format(style_, upload ? up : down,
             upload ? up_total_.load(std::memory_order_relaxed)
                    : down_total_.load(std::memory_order_relaxed),
             elapsed, terminal_width());
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

} // namespace h2pool_cli
