// echo, RFC 862: every byte comes back unchanged, over TCP and UDP.
#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <cstring>

namespace coserve::services {
namespace {

class Echo final : public Service {
public:
    boost::asio::awaitable<void> serve(Connection& c) override {
        // One read, then its whole write: while the client does not read, we
        // do not read either, so its backlog stays in the kernel's buffers.
        // The bytes pass through the loop's buffer: an idle client owns none.
        while (true) {
            const auto data = co_await c.read_shared();
            if (data.empty()) break;
            if (const auto rest = c.send_now(data); !rest.empty()) co_await c.write_now(rest);
        }
        c.shutdown_send();  // the client half-closed and everything is echoed
    }

    std::size_t datagram(std::span<const char> in, const boost::asio::ip::udp::endpoint&,
                         std::span<char> out) override {
        if (in.size() > out.size()) return no_reply;
        std::memcpy(out.data(), in.data(), in.size());
        return in.size();
    }
};

}  // namespace

extern const ServiceType echo_service{
    .name = "echo",
    .create = [](Section&, const InstanceOptions&) -> std::unique_ptr<Service> { return std::make_unique<Echo>(); },
    .idle_restart = true};

}  // namespace coserve::services
