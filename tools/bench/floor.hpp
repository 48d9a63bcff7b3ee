// The machine's own cost of the system calls every delivery needs, measured
// without the gateway: what the other scenarios' CPU figures should be read
// against (docs/BENCHMARKS.md, "The machine's floor").
#pragma once

#include <boost/json/object.hpp>

namespace wsgw::bench {

// One TCP connection on 127.0.0.1 with TCP_NODELAY; the calling thread sends
// `sends` messages of `bytes` each while a second thread reads them. Reports
// the CPU time per send of the sending thread (on loopback that includes the
// receiver's TCP processing, which runs inside the send), the reader's CPU per
// message, and the cost of a system call that does nothing (getppid).
// Throws std::runtime_error when the socket setup fails.
boost::json::object measure_floor(int sends, int bytes);

}  // namespace wsgw::bench
