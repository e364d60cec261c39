// Logging: one line per record, with time, severity, instance and peer.
// Backed by Boost.Log (src/log.cpp); this header keeps Boost.Log out of the
// translation units that only write records. Thread-safe.
//
//     COSERVE_LOG(Severity::info, "echo", "127.0.0.1:5000") << "hello " << 42;
//
// The stream expression is evaluated only when the severity is enabled.
#pragma once

#include <coserve/config.hpp>

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace coserve::log {

// Where and how records go ([server] log_file, log_format, syslog, log_rotate_size).
struct Options {
    Severity level = Severity::info;
    std::string file;            // empty: stderr
    bool json = false;           // one JSON object per line instead of text
    bool syslog = false;         // the local syslog (facility daemon) instead of file or stderr
    std::uint64_t rotate_size = 0;  // rotate `file` to file.N at this size (0: never)
};

// Sets up the stderr sink if there is none yet, and the level.
void init(Severity level);
// Replaces the sink (at start-up and on reload). Thread-safe.
void configure(const Options& options);
// Closes the log file; the next record opens it again (after logrotate moved it).
void reopen();
void set_level(Severity level);
bool enabled(Severity level) noexcept;
void write(Severity level, std::string_view instance, std::string_view peer, std::string_view message);

// Numeric `addr:port`, `[v6]:port`; IPv4-mapped IPv6 is shown as IPv4. Never resolves names.
std::string format_address(const boost::asio::ip::address& address, unsigned short port);
template <class Endpoint>
std::string format_endpoint(const Endpoint& e) {
    return format_address(e.address(), e.port());
}

// Accumulates one record and writes it when destroyed; does nothing (and
// formats nothing) when its severity is disabled.
class Line {
public:
    Line(Severity level, std::string_view instance, std::string_view peer)
        : level_(level), instance_(instance), peer_(peer) {
        if (enabled(level)) out_.emplace();
    }
    Line(const Line&) = delete;
    Line& operator=(const Line&) = delete;
    ~Line() {
        if (out_) write(level_, instance_, peer_, out_->str());
    }

    template <class T>
    Line& operator<<(const T& value) {
        if (out_) *out_ << value;
        return *this;
    }

private:
    Severity level_;
    std::string_view instance_;
    std::string_view peer_;
    std::optional<std::ostringstream> out_;
};

}  // namespace coserve::log

#define COSERVE_LOG(level, instance, peer)                                                        \
    for (bool coserve_log_once_ = ::coserve::log::enabled(level); coserve_log_once_; coserve_log_once_ = false) \
    ::coserve::log::Line((level), (instance), (peer))
