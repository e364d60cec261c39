#include <coserve/service.hpp>

#include <stdexcept>

namespace coserve {

boost::asio::awaitable<void> Service::serve(Connection&) {
    throw std::logic_error("this service has no TCP side");
    co_return;
}

std::size_t Service::datagram(std::span<const char>, const boost::asio::ip::udp::endpoint&, std::span<char>) {
    return no_reply;
}

}  // namespace coserve
