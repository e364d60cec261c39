// Internal: what a reload must do, computed without sockets.
//
// From the running instances (as configured and as bound) and the enabled
// instances of the new file: which run on untouched, which are rebuilt,
// which go; which listening socket a leaving instance hands to a new one
// (under the key the new one wants it by), and which endpoints must be bound
// first. server's reload applies the plan; tests/test_reload_plan.cpp checks
// it on plain data.
#pragma once

#include <coserve/config.hpp>

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coserve::detail {

// A running instance as the plan sees it: its configuration and the address
// and port each of its sockets is bound to (port 0 resolved), in order.
struct RunningInstance {
    const InstanceConfig* config;
    std::vector<std::pair<boost::asio::ip::address, unsigned short>> tcp_bound, udp_bound;
};

// The key a listening socket is known by: its endpoint, or for port 0 the
// instance, the kind (tcp, tls, udp) and the endpoint (only the same
// instance's port 0 of the same kind is the same socket).
std::string socket_key(const std::string& instance, std::string_view kind, const Endpoint& e);

// An instance's listeners of one family, each with its kind: the stream ones
// (tcp, tls, then each front-end's NAME and NAME_tls: the order of
// Instance::acceptors) or the udp ones.
struct Listener {
    std::string kind;
    Endpoint endpoint;
};
std::vector<Listener> listeners(const InstanceOptions& options, bool stream);

struct ReloadPlan {
    enum class Fate { kept, changed, removed };
    // Per wanted instance, in the new file's order: the running one kept as it is, or nullopt (build it).
    std::vector<std::optional<std::size_t>> keep;
    // Per running instance.
    std::vector<Fate> fate;
    // Sockets of leaving instances, (instance, index) -> the key a new instance wants it by; the rest close.
    std::map<std::pair<std::size_t, std::size_t>, std::string> tcp_handover, udp_handover;
    // Endpoints nobody holds: bound (or taken from the service manager) before anything else changes.
    struct Bind {
        std::string key;
        std::string instance;
        Endpoint endpoint;
        std::string kind;
    };
    std::vector<Bind> tcp_bind, udp_bind;
    std::size_t started = 0, changed = 0, stopped = 0, unchanged = 0;
};

// `wanted`: the enabled instances of the new configuration, in file order.
ReloadPlan plan_reload(const std::vector<RunningInstance>& running, const std::vector<const InstanceConfig*>& wanted);

}  // namespace coserve::detail
