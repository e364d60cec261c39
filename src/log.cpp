// Boost.Log behind coserve/log.hpp. One sink at a time: stderr (default), a
// file (text_file_backend, with optional size rotation), or the local syslog
// (syslog_backend). Records are text,
//   2026-11-22 00:12:34.567890 info [echo] 127.0.0.1:5555: text
// or one JSON object per line:
//   {"time":"2026-11-22T00:12:34.567890+00:00","level":"info","instance":"echo","peer":"127.0.0.1:5555","message":"text"}
#include <coserve/log.hpp>

// Debian builds Boost.Log with native syslog(3) support; the enum needs this.
#define BOOST_LOG_USE_NATIVE_SYSLOG 1
#include <boost/core/null_deleter.hpp>
#include <boost/log/attributes/value_extraction.hpp>
#include <boost/log/core.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/syslog_backend.hpp>
#include <boost/log/sinks/text_file_backend.hpp>
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
std::mutex sink_mutex;
boost::shared_ptr<bl::sinks::sink> current_sink;
boost::shared_ptr<bl::sinks::text_file_backend> file_backend;  // when logging to a file
std::atomic<bool> json{false};
std::atomic<bool> ready{false};  // a sink is installed

bl::sources::severity_logger_mt<Severity>& logger() {
    static bl::sources::severity_logger_mt<Severity> lg;
    return lg;
}

// Local time with microseconds: "2026-11-22 00:12:34.567890", or for JSON the
// RFC 3339 form "2026-11-22T00:12:34.567890+01:00".
std::string timestamp(bool rfc3339) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm local{};
    localtime_r(&ts.tv_sec, &local);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, rfc3339 ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &local);
    n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, ".%06ld", static_cast<long>(ts.tv_nsec / 1000)));
    if (rfc3339) {
        const long off = local.tm_gmtoff;
        std::snprintf(buf + n, sizeof buf - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', std::labs(off) / 3600,
                      std::labs(off) % 3600 / 60);
    }
    return buf;
}

void json_string(bl::formatting_ostream& out, std::string_view s) {
    std::string text;
    text.reserve(s.size() + 2);
    text.push_back('"');
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            text.push_back('\\');
            text.push_back(ch);
        } else if (c == '\n') {
            text.append("\\n");
        } else if (c == '\r') {
            text.append("\\r");
        } else if (c == '\t') {
            text.append("\\t");
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            text.append(esc);
        } else {
            text.push_back(ch);
        }
    }
    text.push_back('"');
    out << text;
}

void format_record(const bl::record_view& rec, bl::formatting_ostream& out) {
    const auto time = bl::extract<std::string>("Time", rec);
    const auto level = bl::extract<Severity>("Severity", rec);
    const auto instance = bl::extract<std::string>("Instance", rec);
    const auto peer = bl::extract<std::string>("Peer", rec);
    const auto message = bl::extract<std::string>("Message", rec);
    const std::string_view level_name = level ? severity_name(*level) : "info";
    if (json) {
        out << "{\"time\":";
        json_string(out, time ? *time : "");
        out << ",\"level\":";
        json_string(out, level_name);
        if (instance) {
            out << ",\"instance\":";
            json_string(out, *instance);
        }
        if (peer) {
            out << ",\"peer\":";
            json_string(out, *peer);
        }
        out << ",\"message\":";
        json_string(out, message ? *message : "");
        out << '}';
        return;
    }
    if (time) out << *time << ' ';
    out << level_name;
    if (instance) out << " [" << *instance << ']';
    if (peer) out << ' ' << *peer << ':';
    out << ' ' << (message ? *message : "");
}

bl::sinks::syslog::level syslog_level(Severity s) {
    using namespace bl::sinks::syslog;
    switch (s) {
    case Severity::trace:
    case Severity::debug: return debug;
    case Severity::info: return info;
    case Severity::warning: return warning;
    case Severity::error: return error;
    case Severity::fatal: return critical;
    }
    return info;
}

void install(const Options& o) {
    auto core = bl::core::get();
    if (current_sink) core->remove_sink(current_sink);
    file_backend.reset();
    json = o.json;
    if (o.syslog) {
        using backend_t = bl::sinks::syslog_backend;
        auto backend = boost::make_shared<backend_t>(bl::keywords::facility = bl::sinks::syslog::daemon,
                                                     bl::keywords::use_impl = bl::sinks::syslog::native,
                                                     bl::keywords::ident = std::string("coserved"));
        bl::sinks::syslog::custom_severity_mapping<Severity> levels("Severity");
        for (int i = 0; i <= static_cast<int>(Severity::fatal); ++i)
            levels[static_cast<Severity>(i)] = syslog_level(static_cast<Severity>(i));
        backend->set_severity_mapper(levels);
        auto sink = boost::make_shared<bl::sinks::synchronous_sink<backend_t>>(backend);
        sink->set_formatter(&format_record);
        current_sink = sink;
    } else if (!o.file.empty()) {
        using backend_t = bl::sinks::text_file_backend;
        auto backend = o.rotate_size > 0
            ? boost::make_shared<backend_t>(bl::keywords::file_name = o.file,
                                            bl::keywords::target_file_name = o.file + ".%N",
                                            bl::keywords::rotation_size = o.rotate_size,
                                            bl::keywords::open_mode = std::ios::out | std::ios::app,
                                            bl::keywords::enable_final_rotation = false)
            : boost::make_shared<backend_t>(bl::keywords::file_name = o.file,
                                            bl::keywords::open_mode = std::ios::out | std::ios::app,
                                            bl::keywords::enable_final_rotation = false);
        backend->auto_flush(true);
        file_backend = backend;
        auto sink = boost::make_shared<bl::sinks::synchronous_sink<backend_t>>(backend);
        sink->set_formatter(&format_record);
        current_sink = sink;
    } else {
        using backend_t = bl::sinks::text_ostream_backend;
        auto backend = boost::make_shared<backend_t>();
        backend->add_stream(boost::shared_ptr<std::ostream>(&std::clog, boost::null_deleter()));
        backend->auto_flush(true);
        auto sink = boost::make_shared<bl::sinks::synchronous_sink<backend_t>>(backend);
        sink->set_formatter(&format_record);
        current_sink = sink;
    }
    core->add_sink(current_sink);
    ready = true;
}

}  // namespace

void init(Severity level) {
    set_level(level);
    std::lock_guard lock(sink_mutex);
    if (!current_sink) install(Options{});
}

void configure(const Options& options) {
    set_level(options.level);
    std::lock_guard lock(sink_mutex);
    install(options);
}

void reopen() {
    std::lock_guard lock(sink_mutex);
    if (file_backend) file_backend->rotate_file();  // closed now, opened again by the next record
}

void set_level(Severity level) {
    current_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool enabled(Severity level) noexcept {
    return static_cast<int>(level) >= current_level.load(std::memory_order_relaxed);
}

void write(Severity level, std::string_view instance, std::string_view peer, std::string_view message) {
    if (!ready.load(std::memory_order_acquire)) {
        std::lock_guard lock(sink_mutex);
        if (!current_sink) install(Options{});
    }
    auto& lg = logger();
    if (auto rec = lg.open_record(bl::keywords::severity = level)) {
        bl::record_ostream strm(rec);
        strm << bl::add_value("Time", timestamp(json));
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
