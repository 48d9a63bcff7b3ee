// Watches the scripts directory with inotify and calls back, debounced, when
// it changes: a file written and closed, created, deleted, or renamed into or
// out of place (editors and deploy tools write a temp file and rename it). A
// burst of events (a deploy of ten files) gives one callback once the
// directory has been quiet for `debounce_ms`. Runs its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace wsgw::script {

class ScriptWatcher {
 public:
  // Starts watching `dir`; null with `error` when inotify cannot watch it.
  static std::unique_ptr<ScriptWatcher> start(const std::string& dir, std::uint32_t debounce_ms,
                                              std::function<void()> on_change, std::string& error);
  ~ScriptWatcher();  // stops the thread
  ScriptWatcher(const ScriptWatcher&) = delete;
  ScriptWatcher& operator=(const ScriptWatcher&) = delete;

 private:
  ScriptWatcher() = default;
  void run();

  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the thread to stop
  std::uint32_t debounce_ms_ = 200;
  std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace wsgw::script
