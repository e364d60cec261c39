// guess's tests: the game without sockets, then two players on one embedded
// server over loopback.
#define CATCH_CONFIG_MAIN
#include "guess.hpp"

#include <coserve/services.hpp>
#include <coserve/config.hpp>
#include <coserve/server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

namespace {

// Plays one number by halving the range; returns the final reply.
std::string play(const std::function<std::string(const std::string&)>& send, int max) {
    int low = 1, high = max;
    for (;;) {
        const int mid = low + (high - low) / 2;
        const auto reply = send(std::to_string(mid));
        if (reply.starts_with("higher")) low = mid + 1;
        else if (reply.starts_with("lower")) high = mid - 1;
        else return reply;
    }
}

}  // namespace

TEST_CASE("guess: the game") {
    guess::Rules rules;  // 1 to 100, 7 tries: halving always wins
    guess::Board board;
    guess::Game game(rules, board, 42);
    CHECK(game.greeting() == "guess my number from 1 to 100; you have 7 tries (NEW: another number, SCORE: the scores)");
    const auto send = [&game](const std::string& line) { return game.answer(line); };
    for (int i = 0; i < 20; ++i) {
        const auto end = play(send, 100);
        INFO(end);
        CHECK(end.starts_with("correct, in "));
        CHECK(end.ends_with("a new number from 1 to 100, 7 tries"));
    }
    CHECK(board.won == 20);
    CHECK(board.best >= 1);
    CHECK(board.best <= 7);
    CHECK(game.answer("0") == "ERR a whole number from 1 to 100, NEW or SCORE");  // no try used
    CHECK(game.answer("101") == "ERR a whole number from 1 to 100, NEW or SCORE");
    CHECK(game.answer("5x") == "ERR a whole number from 1 to 100, NEW or SCORE");
    CHECK(game.answer("") == "ERR a whole number from 1 to 100, NEW or SCORE");
    CHECK(game.answer("99999999999999999999") == "ERR a whole number from 1 to 100, NEW or SCORE");
    CHECK(game.answer(" new ").starts_with("it was "));
    CHECK(game.answer("score") == "you: won 20 lost 1; everyone: won 20 lost 1 best " + std::to_string(board.best.load()) + " tries");

    guess::Rules two{100, 2};  // two tries: a guess that cannot be right loses
    guess::Game short_game(two, board, 7);
    for (;;) {
        const auto first = short_game.answer("50");
        if (first.starts_with("correct")) continue;
        CHECK(first == (first.starts_with("higher") ? "higher (1 try left)" : "lower (1 try left)"));
        const auto last = short_game.answer(first.starts_with("higher") ? "1" : "100");
        CHECK(last.starts_with("no tries left: it was "));
        CHECK(last.ends_with("; a new number from 1 to 100, 2 tries"));
        break;
    }
    CHECK(board.lost == 2);
}

TEST_CASE("guess: two players next to a built-in service, over loopback") {
    namespace asio = boost::asio;
    coserve::services::register_builtin();  // [echo] beside it
    coserve::register_service(guess::service);
    coserve::ServerHooks options;
    options.handle_signals = false;
    coserve::Server server(
        coserve::load_config_text("[guess]\ntcp = 127.0.0.1:0\nmax = 1000\ntries = 10\n[echo]\ntcp = 127.0.0.1:0\n"),
        options);
    server.start();
    std::thread loop([&] { server.run(); });
    asio::io_context io;
    struct Player {
        explicit Player(asio::io_context& io) : socket(io) {}
        asio::ip::tcp::socket socket;
        asio::streambuf in;
        std::string line() {
            asio::read_until(socket, in, "\r\n");
            std::string all(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
            const auto end = all.find("\r\n");
            in.consume(end + 2);
            return all.substr(0, end);
        }
        std::string ask(const std::string& text) {
            asio::write(socket, asio::buffer(text + "\r\n"));
            return line();
        }
    };
    Player a(io), b(io);
    a.socket.connect(server.tcp_endpoints("guess").at(0));
    b.socket.connect(server.tcp_endpoints("guess").at(0));
    CHECK(a.line() == "guess my number from 1 to 1000; you have 10 tries (NEW: another number, SCORE: the scores)");
    CHECK(b.line().starts_with("guess my number from 1 to 1000"));
    CHECK(play([&a](const std::string& l) { return a.ask(l); }, 1000).starts_with("correct, in "));
    CHECK(play([&a](const std::string& l) { return a.ask(l); }, 1000).starts_with("correct, in "));
    CHECK(b.ask("NEW").starts_with("it was "));
    CHECK(a.ask("SCORE").starts_with("you: won 2 lost 0; everyone: won 2 lost 1 best "));  // a's own, and the instance's
    CHECK(b.ask("SCORE").starts_with("you: won 0 lost 1; everyone: won 2 lost 1 best "));
    a.socket.close();  // else stop() gives the open sessions shutdown_grace to finish
    b.socket.close();
    server.stop();
    loop.join();
}
