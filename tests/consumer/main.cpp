// Embeds a coserve::Server with a built-in service, echoes one line through
// it over loopback, and prints what it saw. Built by tests/e2e_install.sh
// against the installed library, with CMake and with pkg-config.
#include <coserve/config.hpp>
#include <coserve/server.hpp>
#include <coserve/services.hpp>
#include <coserve/version.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <iostream>
#include <string>
#include <thread>

int main() {
    namespace asio = boost::asio;
    coserve::services::register_builtin();
    coserve::ServerHooks options;
    options.handle_signals = false;
    coserve::Server server(coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\n", "consumer.ini"), options);
    server.start();
    std::thread loop([&] { server.run(); });
    std::string reply(5, '\0');
    {
        asio::io_context io;
        asio::ip::tcp::socket s(io);
        s.connect(server.tcp_endpoints("echo").at(0));
        asio::write(s, asio::buffer(std::string("ping\n")));
        asio::read(s, asio::buffer(reply));
    }
    server.stop();
    loop.join();
    std::cout << "coserve " << coserve::library_version() << " (headers " << COSERVE_VERSION_STRING
              << "): echo answered " << (reply == "ping\n" ? "ping" : "something else") << "\n";
    return reply == "ping\n" ? 0 : 1;
}
