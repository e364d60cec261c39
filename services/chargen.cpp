// chargen, RFC 864: the rotating 72-character pattern, as fast as the client reads.
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <cstring>
#include <random>

namespace coserve::services {

std::string_view chargen_period() {
    static const std::string period = [] {
        std::string s;
        s.reserve(95 * 74);
        for (int line = 0; line < 95; ++line) {
            for (int k = 0; k < 72; ++k) s.push_back(static_cast<char>(' ' + (line + k) % 95));
            s += "\r\n";
        }
        return s;
    }();
    return period;
}

namespace {

class Chargen final : public Service {
public:
    boost::asio::awaitable<void> serve(Connection& c) override {
        // One immutable period of the pattern, written again and again: each
        // write waits for the client to take the last, so memory stays flat.
        const std::string_view period = chargen_period();
        for (;;) co_await c.write(boost::asio::buffer(period.data(), period.size()));
    }

    std::size_t datagram(std::span<const char>, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        thread_local std::minstd_rand rng{std::random_device{}()};
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 512)(rng);
        std::memcpy(out.data(), chargen_period().data(), n);
        return n;
    }
};

}  // namespace

extern const ServiceType chargen_service{
    .name = "chargen", .create = [](Section&, const InstanceOptions&) -> std::unique_ptr<Service> { return std::make_unique<Chargen>(); }};

}  // namespace coserve::services
