// Boost.Log behind coserve/log.hpp: a synchronous stderr sink, one line per
// record: `2026-11-22 00:12:34.567890 info [echo] 127.0.0.1:5555: text`.
#include <coserve/log.hpp>

#include <boost/core/null_deleter.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_logger.hpp>
#include <boost/log/utility/manipulators/add_value.hpp>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <sstream>

namespace coserve::log {
namespace {

namespace bl = boost::log;

std::atomic<int> current_level{static_cast<int>(Severity::info)};
std::once_flag sink_once;

BOOST_LOG_ATTRIBUTE_KEYWORD(kw_severity, "Severity", Severity)
BOOST_LOG_ATTRIBUTE_KEYWORD(kw_time, "Time", std::string)
BOOST_LOG_ATTRIBUTE_KEYWORD(kw_instance, "Instance", std::string)
BOOST_LOG_ATTRIBUTE_KEYWORD(kw_peer, "Peer", std::string)

bl::sources::severity_logger_mt<Severity>& logger() {
    static bl::sources::severity_logger_mt<Severity> lg;
    return lg;
}

// Local time with microseconds: 2026-11-22 00:12:34.567890
std::string timestamp() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm local{};
    localtime_r(&ts.tv_sec, &local);
    char buf[48];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
    std::snprintf(buf + n, sizeof buf - n, ".%06ld", static_cast<long>(ts.tv_nsec / 1000));
    return buf;
}

void install_sink() {
    using backend_t = bl::sinks::text_ostream_backend;
    auto backend = boost::make_shared<backend_t>();
    backend->add_stream(boost::shared_ptr<std::ostream>(&std::clog, boost::null_deleter()));
    backend->auto_flush(true);
    auto sink = boost::make_shared<bl::sinks::synchronous_sink<backend_t>>(backend);
    namespace expr = bl::expressions;
    sink->set_formatter(expr::stream
                        << kw_time << " " << kw_severity
                        << expr::if_(expr::has_attr(kw_instance))[expr::stream << " [" << kw_instance << "]"]
                        << expr::if_(expr::has_attr(kw_peer))[expr::stream << " " << kw_peer << ":"] << " "
                        << expr::smessage);
    bl::core::get()->add_sink(sink);
}

}  // namespace

}  // namespace coserve::log

namespace coserve {
std::ostream& operator<<(std::ostream& out, Severity s) {
    return out << severity_name(s);
}
}  // namespace coserve

namespace coserve::log {

void init(Severity level) {
    set_level(level);
    std::call_once(sink_once, install_sink);
}

void set_level(Severity level) {
    current_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool enabled(Severity level) noexcept {
    return static_cast<int>(level) >= current_level.load(std::memory_order_relaxed);
}

void write(Severity level, std::string_view instance, std::string_view peer, std::string_view message) {
    std::call_once(sink_once, install_sink);
    auto& lg = logger();
    if (auto rec = lg.open_record(bl::keywords::severity = level)) {
        bl::record_ostream strm(rec);
        strm << bl::add_value("Time", timestamp());
        if (!instance.empty()) strm << bl::add_value("Instance", std::string(instance));
        if (!peer.empty()) strm << bl::add_value("Peer", std::string(peer));
        strm << message;
        strm.flush();
        lg.push_record(std::move(rec));
    }
}

std::string format_address(const boost::asio::ip::address& address, unsigned short port) {
    std::ostringstream out;
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        out << boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
    else if (address.is_v6())
        out << '[' << address.to_v6() << ']';
    else
        out << address.to_v4();
    out << ':' << port;
    return out.str();
}

}  // namespace coserve::log
