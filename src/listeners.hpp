// Internal: starting the TCP and UDP loops of a bound instance.
#pragma once

#include "instance.hpp"

#include <exception>
#include <string>
#include <string_view>

namespace coserve::detail {

// Spawns the accept loop of each acceptor and the idle sweep.
void start_tcp(Instance& inst);
// Spawns the receive loop of each UDP socket.
void start_udp(Instance& inst);
// Logs an exception that ended a framework coroutine (never swallowed).
void log_failure(const std::string& instance, std::string_view what, std::exception_ptr e);

}  // namespace coserve::detail
