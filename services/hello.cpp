// hello: the "hi-hello" and "thank you for connecting" servers. A banner on
// connect, then `reply` to every line (or close right after the banner).
#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <cstring>

namespace coserve::services {
namespace {

class Hello final : public Service {
public:
    Hello(std::string banner, std::string reply, bool close_after_banner, Duration line_idle, std::size_t max_line)
        : banner_(std::move(banner) + "\r\n"), reply_(std::move(reply)), close_after_banner_(close_after_banner),
          line_idle_(line_idle), max_line_(max_line) {}

    boost::asio::awaitable<void> serve(Connection& c) override {
        co_await c.write(boost::asio::buffer(banner_));
        if (close_after_banner_) {
            c.shutdown_send();
            co_return;
        }
        co_await serve_lines(c, line_idle_, [this](std::string_view, std::string& reply) { reply = reply_; });
    }

    std::size_t datagram(std::span<const char> in, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        return answer_datagram(in, out, max_line_, [this](std::string_view, std::string& reply) { reply = reply_; });
    }

private:
    std::string banner_, reply_;
    bool close_after_banner_;
    Duration line_idle_;
    std::size_t max_line_;
};

}  // namespace

extern const ServiceType hello_service{
    .name = "hello", .create = [](Section& s, const InstanceOptions& o) -> std::unique_ptr<Service> {
        auto banner = s.string("banner", "Hi, we are connected!");
        auto reply = s.string("reply", "hello");
        if (banner.find_first_of("\r\n") != std::string::npos) s.fail("banner", "must be one line");
        if (reply.find_first_of("\r\n") != std::string::npos) s.fail("reply", "must be one line");
        auto close = s.boolean("close_after_banner", false);
        auto line_idle = s.duration("line_idle", std::chrono::milliseconds(200), Duration::zero(), std::chrono::minutes(10));
        return std::make_unique<Hello>(std::move(banner), std::move(reply), close, line_idle, o.max_line);
    }};

}  // namespace coserve::services
