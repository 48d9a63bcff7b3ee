// What a part of a worker learns about its connections' lives besides the
// messages they carry: a connection opened, a connection closed, and whether
// it was its user's first or last on this worker. The worker tells every
// observer, in the order they were registered; this is where a part that
// cares about connections coming and going (the bus interest in a user,
// token re-validation, presence, recovery) plugs in, instead of growing the
// worker. Worker thread only.
#pragma once

namespace wsgw::session {

class Session;

class SessionObserver {
 public:
  struct Opened {
    // The user had no other connection on this worker.
    bool first_of_user = false;
  };
  struct Closed {
    // The user has no connection left on this worker.
    bool last_of_user = false;
  };

  virtual ~SessionObserver() = default;
  // `s` was adopted and indexed, and its WELCOME is queued; nothing has been
  // read from it yet.
  virtual void on_opened(Session& s, const Opened& e) {}
  // `s` stopped being open (closing or closed) and left the index: nothing
  // more is routed to it. Called once per session.
  virtual void on_closed(Session& s, const Closed& e) {}
};

}  // namespace wsgw::session
