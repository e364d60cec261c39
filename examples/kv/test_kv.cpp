// kv's tests: the protocol without sockets, then kv and echo in one embedded
// server over loopback.
#define CATCH_CONFIG_MAIN
#include "kv.hpp"

#include <coserve/services.hpp>
#include <coserve/config.hpp>
#include <coserve/server.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <thread>

TEST_CASE("kv: the protocol") {
    auto store = kv::make_store(2, 8);
    CHECK(kv::answer(*store, "GET a") == "NOT_FOUND");
    CHECK(kv::answer(*store, "SET a hello world") == "ERR value longer than 8 bytes");
    CHECK(kv::answer(*store, "SET a hi there") == "STORED");
    CHECK(kv::answer(*store, "GET a") == "VALUE hi there");
    CHECK(kv::answer(*store, "SET b 2") == "STORED");
    CHECK(kv::answer(*store, "SET c 3") == "ERR full (2 keys)");
    CHECK(kv::answer(*store, "SET a x") == "STORED");  // replacing is not growing
    CHECK(kv::answer(*store, "DEL a") == "DELETED");
    CHECK(kv::answer(*store, "DEL a") == "NOT_FOUND");
    CHECK(kv::answer(*store, "FROB a").starts_with("ERR usage"));
    CHECK(kv::answer(*store, "").starts_with("ERR usage"));
    CHECK(kv::answer(*store, "STATS") == "STATS keys 1 connection_requests 0");
}

TEST_CASE("kv: next to a built-in service in one server, over loopback") {
    namespace asio = boost::asio;
    static bool registered = (coserve::services::register_builtin(), coserve::register_service(kv::service), true);
    (void)registered;
    coserve::ServerHooks options;
    options.handle_signals = false;
    coserve::Server server(coserve::load_config_text("[kv]\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\n[echo]\ntcp = 127.0.0.1:0\n"), options);
    server.start();
    std::thread loop([&] { server.run(); });
    asio::io_context io;
    auto ask = [&](asio::ip::tcp::socket& s, const std::string& line) {
        asio::write(s, asio::buffer(line + "\r\n"));  // kv answers with the request's own line ending
        asio::streambuf in;
        asio::read_until(s, in, "\r\n");
        std::string reply(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
        return reply.substr(0, reply.find("\r\n"));
    };
    asio::ip::tcp::socket a(io), b(io), e(io);
    a.connect(server.tcp_endpoints("kv").at(0));
    b.connect(server.tcp_endpoints("kv").at(0));
    e.connect(server.tcp_endpoints("echo").at(0));
    CHECK(ask(a, "SET k shared") == "STORED");
    CHECK(ask(b, "GET k") == "VALUE shared");  // one store per instance
    CHECK(ask(b, "STATS") == "STATS keys 1 connection_requests 2");  // b's own count
    asio::ip::udp::socket u(io, asio::ip::udp::v4());  // the same store over UDP
    u.send_to(asio::buffer(std::string("GET k\n")), server.udp_endpoints("kv").at(0));
    std::string datagram(100, '\0');
    datagram.resize(u.receive(asio::buffer(datagram)));
    CHECK(datagram == "VALUE shared\n");
    asio::write(e, asio::buffer(std::string("echo\n")));
    std::string echoed(5, '\0');
    asio::read(e, asio::buffer(echoed));
    CHECK(echoed == "echo\n");
    for (auto* s : {&a, &b, &e}) s->close();  // else stop() gives the open sessions shutdown_grace to finish
    server.stop();
    loop.join();
}
