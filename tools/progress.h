// Transfer progress on stderr for `h2pool get`, drawn only when stderr is a
// terminal (curl draws nothing either when it is redirected). Two styles,
// as curl's: a meter line (bytes so far, total, rate, ETA) and, with -#, a
// bar of '#'s with a percentage. Updates come from the pool's loop thread;
// the line is redrawn at most every 200 ms, and once more by finish().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace h2pool_cli {

class Progress {
public:
  enum class Style { meter, bar };

  explicit Progress(Style style);
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;

  static bool stderr_is_terminal();

  // -1: unknown (no content-length, a body of unknown length).
  void set_download_total(int64_t bytes);
  void set_upload_total(int64_t bytes);
  void downloaded(uint64_t bytes);
  void uploaded(uint64_t bytes);
  // Draws the final state and ends the line.
  void finish();

  // The line for the given state, without the leading \r (for tests of the
  // format and for bench's live line).
  static std::string format(Style style, uint64_t done, int64_t total,
                            double elapsed_s, int width);

private:
  void maybe_draw(bool force);

  using Clock = std::chrono::steady_clock;
  Style style_;
  Clock::time_point start_;
  std::mutex mu_; // guards the drawing and last_draw_
  Clock::time_point last_draw_;
  std::atomic<int64_t> down_total_{-1};
  std::atomic<int64_t> up_total_{-1};
  std::atomic<uint64_t> down_{0};
  std::atomic<uint64_t> up_{0};
  bool drawn_ = false;
};

// "1.5 MiB", "512 B": sizes as people read them.
std::string human_bytes(double bytes);

} // namespace h2pool_cli
