// daytime, RFC 867: the current time as one line (CRLF), then close.
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <cstdio>
#include <cstring>
#include <ctime>

namespace coserve::services {

std::string daytime_text(std::chrono::system_clock::time_point when, DaytimeFormat format, bool utc) {
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    if (utc) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    char buf[64];
    std::size_t n = 0;
    const long offset = utc ? 0 : tm.tm_gmtoff;
    const char sign = offset < 0 ? '-' : '+';
    const long hours = std::labs(offset) / 3600, minutes = std::labs(offset) % 3600 / 60;
    switch (format) {
    case DaytimeFormat::ctime:  // as Python's time.ctime() and C's asctime(): day padded with a space
        n = std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
        break;
    case DaytimeFormat::rfc3339:
        n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        if (utc) n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, "Z"));
        else n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, "%c%02ld:%02ld", sign, hours, minutes));
        break;
    case DaytimeFormat::rfc2822:
        n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S ", &tm);
        n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, "%c%02ld%02ld", sign, hours, minutes));
        break;
    }
    return std::string(buf, n);
}

namespace {

class Daytime final : public Service {
public:
    Daytime(DaytimeFormat format, bool utc) : format_(format), utc_(utc) {}

    boost::asio::awaitable<void> serve(Connection& c) override {
        const std::string line = now();
        co_await c.write(boost::asio::buffer(line));
        c.shutdown_send();
    }

    std::size_t datagram(std::span<const char>, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        const std::string line = now();
        std::memcpy(out.data(), line.data(), line.size());
        return line.size();
    }

private:
    std::string now() const { return daytime_text(std::chrono::system_clock::now(), format_, utc_) + "\r\n"; }

    DaytimeFormat format_;
    bool utc_;
};

}  // namespace

extern const ServiceType daytime_service{
    .name = "daytime", .create = [](Section& s, const InstanceOptions&) -> std::unique_ptr<Service> {
        const auto f = s.choice("format", "ctime", {"ctime", "rfc3339", "rfc2822"});
        const bool utc = s.boolean("utc", false);
        tzset();
        return std::make_unique<Daytime>(f == "ctime"     ? DaytimeFormat::ctime
                                         : f == "rfc3339" ? DaytimeFormat::rfc3339
                                                          : DaytimeFormat::rfc2822,
                                         utc);
    }};

}  // namespace coserve::services
