// discard, RFC 863: everything received is dropped.
#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <array>

namespace coserve::services {
namespace {

class Discard final : public Service {
public:
    boost::asio::awaitable<void> serve(Connection& c) override {
        std::array<char, 16384> sink;
        while (co_await c.read_some(boost::asio::buffer(sink))) {
        }
    }
    // UDP: the default datagram() sends no reply.
};

}  // namespace

extern const ServiceType discard_service{
    .name = "discard", .create = [](Section&, const InstanceOptions&) -> std::unique_ptr<Service> { return std::make_unique<Discard>(); }};

}  // namespace coserve::services
