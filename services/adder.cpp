// adder: "50,40" -> "90". Exact decimal sums (Boost.Multiprecision), no
// floating point, no overflow. Line-based over TCP and UDP.
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>


#include <vector>

namespace coserve::services {

namespace {

class Adder final : public Service {
public:
    Adder(Duration line_idle, std::size_t max_terms, std::size_t max_digits, std::size_t max_line)
        : line_idle_(line_idle), max_terms_(max_terms), max_digits_(max_digits), max_line_(max_line) {}

    boost::asio::awaitable<void> serve(Connection& c) override {
        co_await serve_lines(c, line_idle_, [this](std::string_view line, std::string& reply) { reply = sum(line); });
    }

    std::size_t datagram(std::span<const char> in, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        return answer_datagram(in, out, max_line_, [this](std::string_view line, std::string& reply) { reply = sum(line); });
    }

private:
    std::string sum(std::string_view line) const { return adder_sum(line, max_terms_, max_digits_); }

    Duration line_idle_;
    std::size_t max_terms_, max_digits_, max_line_;
};

}  // namespace

extern const ServiceType adder_service{
    .name = "adder", .create = [](Section& s, const InstanceOptions& o) -> std::unique_ptr<Service> {
        auto line_idle = s.duration("line_idle", std::chrono::milliseconds(200), Duration::zero(), std::chrono::minutes(10));
        auto max_terms = static_cast<std::size_t>(s.integer("max_terms", 1000, 1, 1'000'000));
        auto max_digits = static_cast<std::size_t>(s.integer("max_digits", 1000, 1, 100'000));
        return std::make_unique<Adder>(line_idle, max_terms, max_digits, o.max_line);
    }};

}  // namespace coserve::services
