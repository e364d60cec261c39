// reverse: every line back, reversed. A complete coserve service.
#include <coserve/lines.hpp>
#include <coserve/plugin.hpp>

namespace {

class Reverse final : public coserve::Service {
public:
    boost::asio::awaitable<void> serve(coserve::Connection& c) override {
        co_await coserve::serve_lines(c, coserve::Duration::zero(), [](std::string_view line, std::string& reply) {
            reply.assign(line.rbegin(), line.rend());
        });
    }
};

}  // namespace

extern const coserve::ServiceType reverse_service{
    .name = "reverse",
    .create = [](coserve::Section&, const coserve::InstanceOptions&) -> std::unique_ptr<coserve::Service> {
        return std::make_unique<Reverse>();
    },
    .tcp = true,
    .udp = false,
};

COSERVE_PLUGIN(reverse_service)  // for coserved: [reverse] plugin = reverse.so
