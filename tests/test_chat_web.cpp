// Integration: chat's WebSocket front-end over real loopback sockets, exact
// bytes: the page and the HTTP answers, the origin check, chat lines both
// ways with line users, long, binary and multi-line messages, pings, the
// close frames, IRC over text.ircv3.net and binary.ircv3.net, and 1000
// WebSocket members in one room.
#include <catch2/catch.hpp>

#include "support.hpp"
#include "ws_client.hpp"

#include <algorithm>
#include <map>

using namespace testing;

namespace {

const char* const web_config = "[chat]\ntcp = 127.0.0.1:0\nwebsocket = 127.0.0.1:0\n";

boost::asio::ip::tcp::endpoint web_endpoint(RunningServer& rs) {
    return rs.server().endpoints("chat", "websocket").at(0);
}

std::string origin_of(const boost::asio::ip::tcp::endpoint& ep) {
    return "Origin: http://127.0.0.1:" + std::to_string(ep.port()) + "\r\n";
}

// A WebSocket member past its welcome, renamed to `nick`.
std::unique_ptr<WsClient> ws_member(const boost::asio::ip::tcp::endpoint& ep, const std::string& nick) {
    auto c = std::make_unique<WsClient>(ep, origin_of(ep));
    REQUIRE(c->status() == 101);
    REQUIRE(c->text().starts_with("* welcome to #lobby, you are "));
    c->send_text("/nick " + nick);
    while (c->text() != "* you are now known as " + nick) {
    }
    return c;
}

std::unique_ptr<LineClient> line_member(RunningServer& rs, const std::string& nick) {
    auto c = std::make_unique<LineClient>(rs.tcp("chat"));
    REQUIRE(c->line().starts_with("* welcome to #lobby, you are "));
    c->send_line("/nick " + nick);
    while (c->line() != "* you are now known as " + nick) {
    }
    return c;
}

// One HTTP exchange on `c`: the response header and body (Content-Length).
std::pair<std::string, std::string> http_exchange(TcpClient& c, const std::string& request, std::string& rest) {
    c.send(request);
    std::string head = read_http_header(c, rest);
    const auto at = head.find("Content-Length: ");
    const std::size_t size = at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
    const bool is_head = request.starts_with("HEAD ");
    while (!is_head && rest.size() < size) rest += c.recv_some();
    std::string body = is_head ? "" : rest.substr(0, size);
    rest.erase(0, body.size());
    return {head, body};
}

}  // namespace

TEST_CASE("websocket: the page, its script and stylesheet under one content policy, on one kept-alive connection") {
    RunningServer rs(web_config);
    TcpClient c(web_endpoint(rs));
    std::string rest;
    auto [head, body] = http_exchange(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", rest);
    CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(head.find("\r\nContent-Security-Policy: default-src 'self'\r\n") != std::string::npos);
    CHECK(head.find("\r\nContent-Type: text/html; charset=utf-8\r\n") != std::string::npos);
    CHECK(head.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
    CHECK(body.starts_with("<!doctype html>"));
    CHECK(body.find("<script src=\"/chat.js\" defer></script>") != std::string::npos);
    std::tie(head, body) = http_exchange(c, "GET /chat.js HTTP/1.1\r\nHost: x\r\n\r\n", rest);
    CHECK(head.find("\r\nContent-Type: text/javascript; charset=utf-8\r\n") != std::string::npos);
    CHECK(body.find("new WebSocket(url)") != std::string::npos);
    std::tie(head, body) = http_exchange(c, "GET /chat.css HTTP/1.1\r\nHost: x\r\n\r\n", rest);
    CHECK(head.find("\r\nContent-Type: text/css; charset=utf-8\r\n") != std::string::npos);
    std::tie(head, body) = http_exchange(c, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", rest);
    CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(body.empty());
    std::tie(head, body) = http_exchange(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", rest);
    CHECK(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
    std::tie(head, body) = http_exchange(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", rest);
    CHECK(head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    CHECK(head.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
    std::tie(head, body) = http_exchange(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", rest);
    CHECK(head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    CHECK(c.closed_within(2s));
    // The real curl gets the page too.
    const auto page = run("curl -sS --max-time 5 http://127.0.0.1:" + std::to_string(web_endpoint(rs).port()) + "/");
    CHECK(page.starts_with("<!doctype html>"));
}

TEST_CASE("websocket: requests it cannot read get 400 or 431 and a close - a silent one is closed") {
    RunningServer rs(std::string(web_config) + "websocket_request_timeout = 300ms\n");
    {
        TcpClient c(web_endpoint(rs));
        c.send("NONSENSE\r\n\r\n");
        CHECK(c.recv_all().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
    {
        TcpClient c(web_endpoint(rs));
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
        CHECK(c.recv_all().starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }
    {
        TcpClient c(web_endpoint(rs));
        c.send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        CHECK(c.recv_all().starts_with("HTTP/1.1 400 Bad Request\r\n"));  // no body on GET
    }
    {
        TcpClient c(web_endpoint(rs));
        c.send("GET / HTTP/1.1\r\nHo");
        CHECK(c.closed_within(3s));  // websocket_request_timeout
    }
}

TEST_CASE("websocket: upgrades from the page's origin and without Origin - other origins get 403 unless listed") {
    RunningServer rs(std::string("[metrics]\nhttp = 127.0.0.1:0\n") + web_config +
                     "websocket_origins = https://chat.example.org, http://localhost:8080\n");
    const auto ep = web_endpoint(rs);
    {
        WsClient c(ep, origin_of(ep));
        CHECK(c.status() == 101);
        CHECK(c.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        CHECK(c.header("Sec-WebSocket-Protocol").empty());
        CHECK(c.text().starts_with("* welcome to #lobby"));
    }
    CHECK(WsClient(ep).status() == 101);
    CHECK(WsClient(ep, "Origin: https://Chat.Example.ORG\r\n").status() == 101);
    CHECK(WsClient(ep, "Origin: http://localhost:8080\r\n").status() == 101);
    for (const char* foreign : {"http://evil.example", "null", "https://127.0.0.1:" /* wrong scheme */, "http://localhost:8081"}) {
        std::string origin = foreign;
        if (origin.ends_with(":")) origin += std::to_string(ep.port());
        WsClient c(ep, "Origin: " + origin + "\r\n");
        INFO(origin);
        CHECK(c.status() == 403);
        CHECK((c.buffered() + c.tcp().recv_all()) == "this Origin may not open a chat connection (websocket_origins)\n");
    }
    CHECK(metric_value(scrape_metrics(rs), "coserve_chat_websocket_origin_refused_total{instance=\"chat\",service=\"chat\"}") == 4);
    // A bad handshake is Beast's to answer.
    TcpClient bad(ep);
    bad.send("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    CHECK(bad.recv_all().starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_CASE("websocket: text messages are chat lines, both ways with line users, with the same commands and replies") {
    RunningServer rs(web_config);
    const auto ep = web_endpoint(rs);
    auto web = ws_member(ep, "webby");
    auto nc = line_member(rs, "ncat");
    const auto joined = web->text();  // as guestN, then renamed
    CHECK(joined.starts_with("* guest"));
    CHECK(joined.ends_with(" joined #lobby"));
    CHECK(web->text() == "* " + joined.substr(2, joined.find(' ', 2) - 2) + " is now known as ncat");
    web->send_text("hello from the browser");
    CHECK(nc->line() == "<webby> hello from the browser");
    nc->send_line("hello from nc");
    CHECK(web->text() == "<ncat> hello from nc");
    web->send_text("/me waves");
    CHECK(nc->line() == "* webby waves");
    web->send_text("/who");
    CHECK(web->text() == "* 2 in #lobby: ncat, webby");
    nc->send_line("<img src=x onerror=alert(1)>");
    CHECK(web->text() == "<ncat> <img src=x onerror=alert(1)>");
    nc->send("bad \xc3( byte\r\n");
    CHECK(web->text() == "<ncat> bad \xef\xbf\xbd( byte");  // a text frame is valid UTF-8
    web->send_text("/join dev");
    CHECK(web->text() == "* you joined #dev");
    CHECK(nc->line() == "* webby left for #dev");
    nc->send_line("/join dev");
    CHECK(web->text() == "* ncat joined #dev");
    while (nc->line() != "* you joined #dev") {  // the history of #dev first
    }
    web->send_text("/msg ncat psst");
    CHECK(nc->line() == "<webby> (private) psst");
    // A message in two frames is one line.
    web->send_frame(1, "in two ", false);
    web->send_frame(0, "frames", true);
    CHECK(nc->line() == "<webby> in two frames");
    web->send_text("/quit gone");
    CHECK(web->text() == "* bye");
    const auto close = web->close_frame();
    CHECK(close.close_code() == 1000);
    CHECK(close.close_reason() == "bye");
    CHECK(nc->line() == "* webby left (gone)");
}

TEST_CASE("websocket: long, binary and multi-line messages are refused like a long line, and the member stays") {
    RunningServer rs(std::string(web_config) + "max_line = 100\n");
    auto web = ws_member(web_endpoint(rs), "webby");
    auto nc = line_member(rs, "ncat");
    web->text();
    web->text();
    web->send_text(std::string(101, 'x'));
    CHECK(web->text() == "* error: line too long (max 100 bytes)");
    web->send_text(std::string(100000, 'y'));  // read in pieces, dropped
    CHECK(web->text() == "* error: line too long (max 100 bytes)");
    web->send_frame(2, "binary");
    CHECK(web->text() == "* error: binary message ignored (chat lines are text messages)");
    web->send_text("one\ntwo");
    CHECK(web->text() == "* error: one line per message (no CR, LF or NUL)");
    web->send_text("with its own ending\r\n");  // a trailing line ending is allowed
    CHECK(nc->line() == "<webby> with its own ending");
    web->send_text(std::string(100, 'z'));
    CHECK(nc->line() == "<webby> " + std::string(100, 'z'));
    CHECK(nc->quiet_for(200ms));
    // Invalid UTF-8 in a text message: Beast fails the connection (1007), as RFC 6455 says.
    web->send_text("bad \xff");
    const auto close = web->close_frame();
    CHECK(close.close_code() == 1007);
    CHECK(nc->line() == "* webby left");
}

TEST_CASE("websocket: an idle member that answers pings stays - one that does not is closed with a close frame") {
    RunningServer rs(std::string("[metrics]\nhttp = 127.0.0.1:0\n") + web_config + "websocket_ping = 300ms\n");
    const auto ep = web_endpoint(rs);
    auto healthy = ws_member(ep, "healthy");
    auto silent = ws_member(ep, "silent");
    auto nc = line_member(rs, "ncat");
    healthy->text();
    healthy->text();
    silent->text();
    silent->text();
    silent->answer_pings = false;
    // The healthy one answers each ping and keeps its place; the silent one does not.
    std::vector<std::string> heard;
    const auto end = std::chrono::steady_clock::now() + 2500ms;
    while (std::chrono::steady_clock::now() < end) {
        try {
            heard.push_back(healthy->text(100ms));
        } catch (const std::runtime_error& e) {
            REQUIRE(std::string_view(e.what()) == "no whole frame within the timeout");
        }
    }
    CHECK(healthy->pings_answered >= 2);
    CHECK(std::find(heard.begin(), heard.end(), "* silent left (ping timeout)") != heard.end());
    WsFrame ping = silent->frame(3s);
    CHECK(ping.opcode == 9);
    CHECK(ping.payload == "coserve");
    const auto close = silent->close_frame(3s);
    CHECK(close.close_code() == 1001);
    CHECK(close.close_reason() == "ping timeout");
    CHECK(silent->tcp().closed_within(3s));
    nc->send_line("still there?");
    CHECK(healthy->text() == "<ncat> still there?");
    CHECK(metric_value(scrape_metrics(rs), "coserve_chat_websocket_ping_timeouts_total{instance=\"chat\",service=\"chat\"}") == 1);
}

TEST_CASE("websocket: the idle timeout and shutdown end a member with a close frame that says why") {
    {
        RunningServer rs(std::string(web_config) + "idle_timeout = 500ms\nwebsocket_ping = 1h\n");
        auto web = ws_member(web_endpoint(rs), "idler");
        const auto close = web->close_frame(5s);
        CHECK(close.close_code() == 1001);
        CHECK(close.close_reason() == "idle timeout");
    }
    RunningServer rs(std::string("[server]\nshutdown_grace = 200ms\n") + web_config);
    auto web = ws_member(web_endpoint(rs), "stayer");
    REQUIRE(rs.stop_and_wait());
    const auto close = web->close_frame(5s);
    CHECK(close.close_code() == 1001);
    CHECK(close.close_reason() == "server shutting down");
}

TEST_CASE("websocket: an IRC client on text.ircv3.net talks with a line user - binary.ircv3.net in binary frames") {
    RunningServer rs(web_config);
    const auto ep = web_endpoint(rs);
    WsClient irc(ep, "Sec-WebSocket-Protocol: text.ircv3.net\r\n");
    REQUIRE(irc.status() == 101);
    CHECK(irc.header("Sec-WebSocket-Protocol") == "text.ircv3.net");
    irc.send_text("NICK webirc");
    irc.send_text("USER webirc 0 * :Web IRC\r\n");
    CHECK(irc.text() == ":coserve 001 webirc :Welcome to the coserve IRC network, webirc");
    while (irc.text() != ":coserve 422 webirc :MOTD File is missing") {
    }
    irc.send_text("JOIN #lobby");
    CHECK(irc.text() == ":webirc!webirc@coserve JOIN #lobby");
    while (!irc.text().starts_with(":coserve 366 ")) {
    }
    auto nc = line_member(rs, "ncat");
    const auto joined = irc.text();
    CHECK(joined.starts_with(":guest"));
    CHECK(joined.ends_with("@coserve JOIN #lobby"));
    CHECK(irc.text().ends_with("@coserve NICK ncat"));
    nc->send_line("hi irc");
    CHECK(irc.text() == ":ncat!ncat@coserve PRIVMSG #lobby :hi irc");
    irc.send_text("PRIVMSG #lobby :hi line");
    CHECK(nc->line() == "<webirc> hi line");
    irc.send_text("PRIVMSG #lobby :" + std::string(600, 'x'));
    CHECK(irc.text() == ":coserve 417 webirc :Input line was too long");
    irc.send_text("QUIT :done");
    CHECK(irc.text() == "ERROR :Closing Link: webirc (Quit: done)");
    CHECK(irc.close_frame().close_code() == 1000);
    CHECK(nc->line() == "* webirc left (done)");

    WsClient binary(ep, "Sec-WebSocket-Protocol: binary.ircv3.net, text.ircv3.net\r\n");
    CHECK(binary.header("Sec-WebSocket-Protocol") == "binary.ircv3.net");
    binary.send_frame(2, "NICK bin");
    binary.send_frame(2, "USER bin 0 * :b");
    const auto f = binary.frame();
    CHECK(f.opcode == 2);
    CHECK(f.payload == ":coserve 001 bin :Welcome to the coserve IRC network, bin");
}

TEST_CASE("websocket: 1000 WebSocket members in one room get every line of every other member exactly once, in order", "[e2e]") {
    RunningServer rs(std::string(web_config) + "max_per_source = 0\nmax_connections = 2000\nrate = 0\nhistory = 0\n"
                     "max_clients = 2000\nmax_queue = 10000\nwebsocket_ping = 1h\n");
    const auto ep = web_endpoint(rs);
    constexpr int n = 1000, lines = 2;
    std::vector<std::unique_ptr<WsClient>> clients;
    std::vector<std::string> nicks;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<WsClient>(ep);
        REQUIRE(c->status() == 101);
        const auto welcome = c->text(30s);
        REQUIRE(welcome.starts_with("* welcome to #lobby, you are "));
        nicks.push_back(welcome.substr(29, welcome.find(' ', 29) - 29));
        clients.push_back(std::move(c));
    }
    std::map<std::string, int> index;
    for (int i = 0; i < n; ++i) index[nicks[static_cast<std::size_t>(i)]] = i;
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < lines; ++k) clients[static_cast<std::size_t>(i)]->send_text(std::to_string(k));
    const auto count = count_bulk(n, lines, [&](int i) -> std::optional<std::pair<int, int>> {
        const auto t = clients[static_cast<std::size_t>(i)]->text(60s);
        if (!t.starts_with("<")) return std::nullopt;  // joins
        const auto close = t.find("> ");
        const auto from = index.find(t.substr(1, close - 1));
        if (from == index.end()) throw std::runtime_error("a line from no member: " + t);
        return std::pair{from->second, std::stoi(t.substr(close + 2))};
    });
    CHECK(count.wrong == 0);
    CHECK(count.own == 0);
    CHECK(still_talking(clients) == 0);
}
