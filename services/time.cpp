// time, RFC 868: 4 bytes, big-endian, seconds since 1900-01-01T00:00:00Z.
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <array>

namespace coserve::services {

std::uint32_t rfc868_seconds(std::chrono::system_clock::time_point when) {
    constexpr std::int64_t seconds_1900_to_1970 = 2'208'988'800;
    const auto unix_seconds = std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(unix_seconds + seconds_1900_to_1970));
}

namespace {

std::array<char, 4> now_bytes() {
    const std::uint32_t s = rfc868_seconds(std::chrono::system_clock::now());
    return {static_cast<char>(s >> 24), static_cast<char>(s >> 16), static_cast<char>(s >> 8), static_cast<char>(s)};
}

class Time final : public Service {
public:
    boost::asio::awaitable<void> serve(Connection& c) override {
        const auto bytes = now_bytes();
        co_await c.write(boost::asio::buffer(bytes));
        c.shutdown_send();
    }

    std::size_t datagram(std::span<const char>, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        const auto bytes = now_bytes();
        std::copy(bytes.begin(), bytes.end(), out.begin());
        return bytes.size();
    }
};

}  // namespace

extern const ServiceType time_service{
    .name = "time", .create = [](Section&, const InstanceOptions&) -> std::unique_ptr<Service> { return std::make_unique<Time>(); }};

}  // namespace coserve::services
