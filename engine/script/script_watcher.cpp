#include "engine/script/script_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/log/log.hpp"

namespace wsgw::script {

std::unique_ptr<ScriptWatcher> ScriptWatcher::start(const std::string& dir,
                                                    std::uint32_t debounce_ms,
                                                    std::function<void()> on_change,
                                                    std::string& error) {
  std::unique_ptr<ScriptWatcher> w(new ScriptWatcher);
  w->debounce_ms_ = debounce_ms;
  w->on_change_ = std::move(on_change);
  w->inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->inotify_fd_ < 0 || w->stop_fd_ < 0) {
    error = std::string("inotify: ") + std::strerror(errno);
    return nullptr;
  }
  constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO |
                                  IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF;
  if (inotify_add_watch(w->inotify_fd_, dir.c_str(), kMask) < 0) {
    error = "cannot watch " + dir + ": " + std::strerror(errno);
    return nullptr;
  }
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

ScriptWatcher::~ScriptWatcher() {
  if (thread_.joinable()) {
    std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void ScriptWatcher::run() {
  alignas(inotify_event) char buf[16 * 1024];
  bool pending = false;
  for (;;) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    // Quiet for debounce_ms after the last event: the change is complete.
    int n = ::poll(fds, 2, pending ? static_cast<int>(debounce_ms_) : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      WSGW_LOG(error, "script_watch_failed").kv("error", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (n == 0) {
      pending = false;
      on_change_();
      continue;
    }
    for (;;) {
      ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
      if (len <= 0) break;
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        // Only .lua files matter; editors' swap and temp files do not.
        std::string_view name(ev->len ? ev->name : "");
        if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0 ||
            (name.size() > 4 && name.substr(name.size() - 4) == ".lua")) {
          pending = true;
        }
        if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
          WSGW_LOG(warn, "script_dir_gone").kv("detail", "the scripts directory was removed or moved");
        }
        p += sizeof(inotify_event) + ev->len;
      }
    }
  }
}

}  // namespace wsgw::script
