// The service interface: what a protocol implements, and how it is registered.
//
// A service type is a name plus a factory. The factory reads the service's own
// keys from its INI section (the framework has already taken the common ones:
// tcp, udp, enabled, max_connections, idle_timeout, max_line) and returns one
// Service object per configured instance.
//
// Threading: serve() runs once per TCP connection, each in its own coroutine;
// datagram() runs on the UDP endpoint's receive loop. With `threads > 1` calls
// for different connections run concurrently, so a Service must treat its own
// members as read-only after construction (or guard what it shares).
//
// Adding a built-in service: write services/NAME.cpp defining
//     extern const coserve::ServiceType NAME_service = {"NAME", factory};
// and add one line `COSERVE_SERVICE(NAME)` to services/services.def. A
// program using the installed library registers its own with
// register_service() instead (examples/kv), or builds the type as a plugin
// that coserved loads from `plugin = PATH` (coserve/plugin.hpp).
#pragma once

#include <coserve/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace coserve {

class Connection;

// Where a service adds its own counters to GET /metrics (Prometheus text
// format). The framework adds the `instance` and `service` labels and groups
// samples by family. Called on the metrics endpoint's thread: read counters
// that are atomics.
class MetricsWriter {
public:
    virtual ~MetricsWriter() = default;
    // `name` gets the "coserve_" prefix; `type` is "counter" or "gauge";
    // `labels` is extra, already formatted (`reason="limit"`), or empty.
    virtual void add(std::string_view name, std::string_view type, std::string_view help, double value,
                     std::string_view labels = {}) = 0;
};

class Service {
public:
    virtual ~Service() = default;

    // One TCP connection, from accept to close. Returning (or throwing) closes
    // it; the framework logs the close and counts bytes. A std::system_error
    // from a normal close (EOF, reset, cancellation) is not logged as an error.
    virtual boost::asio::awaitable<void> serve(Connection& connection);

    // One UDP datagram. Write the reply into `reply` (65507 bytes, reused for
    // every datagram) and return its length, or return no_reply. Must not block.
    static constexpr std::size_t no_reply = static_cast<std::size_t>(-1);
    virtual std::size_t datagram(std::span<const char> request, const boost::asio::ip::udp::endpoint& from,
                                 std::span<char> reply);

    // The service's own counters for /metrics (none by default).
    virtual void metrics(MetricsWriter&) const {}

    // Called once, on the event loop, when the instance starts serving and
    // before its first connection: a service with I/O of its own (chat's
    // Redis link) starts it on `executor`. Nothing by default.
    virtual void start(const boost::asio::any_io_executor& executor) { (void)executor; }
    // Called at shutdown, after the sessions have ended (or were given up
    // on), and again before the server is destroyed: the service ends its
    // own I/O within a second or so, so that the loop can finish, and lets go
    // of every I/O object it started (none may outlive the io_context).
    // Must be idempotent. Nothing by default.
    virtual void stop() {}
};

struct ServiceType {
    std::string_view name;
    // Reads the service's own keys from `section` (throwing ConfigError on bad
    // values) and builds the instance's Service.
    std::unique_ptr<Service> (*create)(Section& section, const InstanceOptions& options);
    bool tcp = true;  // whether the protocol has a TCP side
    bool udp = true;  // ... and a UDP side
    // serve() keeps nothing between messages and waits for each in
    // Connection::read_shared(): the framework may then let an idle
    // connection go without its coroutine (before its first byte, and after
    // about a second of silence) and call serve() afresh, on a new
    // coroutine, when bytes arrive. The read is ended by an exception
    // (operation_aborted) that serve() must let through. An idle connection
    // then holds a socket and a few stamps instead of coroutine frames.
    // Plaintext only: over TLS the session keeps its coroutine.
    bool idle_restart = false;
    std::size_t max_line_default = 8192;  // the instance's `max_line` when the section does not set it
    // Other protocols the service speaks on listeners of their own, each a
    // key (`irc`) and its TLS twin (`irc_tls`); see FrontEndListeners.
    std::span<const std::string_view> front_ends = {};
};

// The service types by name: those registered (the built-in ones once
// coserve::services::register_builtin() has run, <coserve/services.hpp>);
// nullptr if none has the name.
const ServiceType* find_service_type(std::string_view name);
std::span<const ServiceType* const> service_types();

// Adds a service type of the program's own, for configurations loaded after
// this call (so `[NAME]` sections, or `service = NAME`, can use it): call it
// at start, before load_config_*, from one thread. `type` must outlive every
// Server. Throws std::invalid_argument if the name is taken.
void register_service(const ServiceType& type);

}  // namespace coserve
