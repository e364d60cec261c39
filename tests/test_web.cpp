// Unit: chat's WebSocket front-end without sockets: the frames the server
// sends, UTF-8 in text frames, origins, subprotocols, and the answer to each
// HTTP request.
#include <catch2/catch.hpp>

#include "../services/chat/web.hpp"
#include "../services/chat/websocket.hpp"

#include <boost/beast/http/empty_body.hpp>

using namespace coserve::services::chat;
namespace http = boost::beast::http;

namespace {

std::string frames(std::string_view text, bool binary = false) {
    std::string out;
    ws::append_frames(out, text, binary);
    return out;
}

http::request<http::empty_body> get(std::string target, std::initializer_list<std::pair<std::string, std::string>> fields = {},
                                    http::verb verb = http::verb::get) {
    http::request<http::empty_body> r{verb, target, 11};
    r.set(http::field::host, "127.0.0.1:8080");
    for (const auto& [name, value] : fields) r.set(name, value);
    return r;
}

http::request<http::empty_body> upgrade(std::initializer_list<std::pair<std::string, std::string>> fields = {}) {
    auto r = get("/chat", fields);
    r.set(http::field::upgrade, "websocket");
    r.set(http::field::connection, "Upgrade");
    r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    r.set(http::field::sec_websocket_version, "13");
    return r;
}

}  // namespace

TEST_CASE("web: each line a frame, FIN and unmasked, with 7-bit, 16-bit and 64-bit lengths") {
    CHECK(frames("<ann> hi\r\n") == std::string("\x81\x08<ann> hi"));
    CHECK(frames("a\r\nbc\n\r\n") == std::string("\x81\x01" "a" "\x81\x02" "bc"));  // empty lines skipped
    CHECK(frames("x\r\n", true) == std::string("\x82\x01x"));
    const std::string mid(300, 'm'), big(70000, 'b');
    CHECK(frames(mid + "\r\n") == std::string("\x81\x7e\x01\x2c", 4) + mid);
    CHECK(frames(big + "\r\n") == std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10) + big);
    CHECK(frames("no ending") == std::string("\x81\x09no ending"));
}

TEST_CASE("web: text frames carry valid UTF-8 - invalid bytes become U+FFFD, binary frames keep them") {
    const auto valid = [](std::string_view s) {
        std::string out;
        ws::append_valid_utf8(out, s);
        return out;
    };
    CHECK(valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") == "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK(valid("a\xff" "b") == "a\xef\xbf\xbd" "b");
    CHECK(valid("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");          // overlong
    CHECK(valid("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
    CHECK(valid("\xf4\x90\x80\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // past U+10FFFF
    CHECK(valid("cut \xe2\x82") == "cut \xef\xbf\xbd\xef\xbf\xbd");
    CHECK(frames("\xff\r\n") == std::string("\x81\x03\xef\xbf\xbd"));
    CHECK(frames("\xff\r\n", true) == std::string("\x82\x01\xff"));
}

TEST_CASE("web: close frames carry the code and a reason cut to 123 bytes between characters - pings") {
    std::string out;
    ws::append_close(out, 1001, "idle timeout");
    CHECK(out == std::string("\x88\x0e\x03\xe9idle timeout"));
    out.clear();
    ws::append_close(out, 1000, std::string(122, 'a') + "\xc3\xa9");  // 124 bytes: the é does not fit
    CHECK(out.size() == 2 + 2 + 122);
    out.clear();
    ws::append_ping(out, "coserve");
    CHECK(out == std::string("\x89\x07" "coserve"));
}

TEST_CASE("web: origins are compared as browsers send them") {
    CHECK(web::normal_origin("HTTPS://Chat.Example.ORG") == "https://chat.example.org");
    CHECK(web::normal_origin("http://example.org:80") == "http://example.org");
    CHECK(web::normal_origin("https://example.org:443/") == "https://example.org");
    CHECK(web::normal_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
    CHECK(web::normal_origin("http://[::1]:8080") == "http://[::1]:8080");
    CHECK_FALSE(web::normal_origin("null"));
    CHECK_FALSE(web::normal_origin("ftp://example.org"));
    CHECK_FALSE(web::normal_origin("http://example.org/path"));
    CHECK_FALSE(web::normal_origin("http://"));
    CHECK_FALSE(web::normal_origin("http://a b"));
    CHECK_FALSE(web::normal_origin("http://host:"));
    CHECK_FALSE(web::normal_origin("http://host:123456"));
    const std::vector<std::string> allowed{"https://chat.example.org"};
    CHECK(web::origin_allowed(std::nullopt, "127.0.0.1:8080", false, {}));  // not a browser
    CHECK(web::origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", false, {}));
    CHECK_FALSE(web::origin_allowed("https://127.0.0.1:8080", "127.0.0.1:8080", false, {}));  // another scheme
    CHECK(web::origin_allowed("https://127.0.0.1:8443", "127.0.0.1:8443", true, {}));
    CHECK_FALSE(web::origin_allowed("http://evil.example", "127.0.0.1:8080", false, {}));
    CHECK_FALSE(web::origin_allowed("null", "127.0.0.1:8080", false, {}));
    CHECK(web::origin_allowed("https://Chat.Example.org", "127.0.0.1:8080", false, allowed));
    CHECK_FALSE(web::origin_allowed("https://chat.example.org.evil.example", "127.0.0.1:8080", false, allowed));
}

TEST_CASE("web: the subprotocol is the first offer coserved speaks") {
    CHECK(web::choose("") == web::Subprotocol::line);
    CHECK(web::choose("chat, superchat") == web::Subprotocol::line);
    CHECK(web::choose("text.ircv3.net") == web::Subprotocol::irc_text);
    CHECK(web::choose("binary.ircv3.net, text.ircv3.net") == web::Subprotocol::irc_binary);
    CHECK(web::choose("x ,  text.ircv3.net ,binary.ircv3.net") == web::Subprotocol::irc_text);
    CHECK(web::name(web::Subprotocol::line).empty());
}

TEST_CASE("web: what each request gets") {
    using K = web::Answer::Kind;
    const std::vector<std::string> none;
    auto a = web::answer(get("/"), false, none);
    CHECK(a.kind == K::file);
    CHECK(a.type == "text/html; charset=utf-8");
    CHECK(a.body == web::page_html);
    CHECK(web::answer(get("/?room=dev"), false, none).body == web::page_html);
    CHECK(web::answer(get("/chat.js"), false, none).body == web::page_script);
    CHECK(web::answer(get("/chat.css"), false, none).type == "text/css; charset=utf-8");
    CHECK(web::answer(get("/nope"), false, none).status == http::status::not_found);
    CHECK(web::answer(get("/", {}, http::verb::post), false, none).status == http::status::method_not_allowed);
    CHECK(web::answer(get("/", {}, http::verb::head), false, none).kind == K::file);
    CHECK(web::answer(get("/chat"), false, none).status == http::status::upgrade_required);
    a = web::answer(upgrade({{"Origin", "http://127.0.0.1:8080"}}), false, none);
    CHECK(a.kind == K::upgrade);
    CHECK(a.subprotocol == web::Subprotocol::line);
    CHECK(web::answer(upgrade({{"Origin", "http://evil.example"}}), false, none).status == http::status::forbidden);
    CHECK(web::answer(upgrade({{"Sec-WebSocket-Protocol", "text.ircv3.net"}}), false, none).subprotocol ==
          web::Subprotocol::irc_text);
    // The page's script, its style and no inline script: the page works under its own policy.
    CHECK(web::page_html.find("<script src=\"/chat.js\"") != std::string_view::npos);
    CHECK(web::page_html.find("<script>") == std::string_view::npos);
    CHECK(web::page_html.find(" style=") == std::string_view::npos);
    CHECK(web::page_script.find("innerHTML") == std::string_view::npos);
    const auto r = web::response(a, false, true);
    CHECK(r["Content-Security-Policy"] == "default-src 'self'");
    const auto head = web::response(web::answer(get("/"), false, none), true, true);
    CHECK(head[http::field::content_length] == std::to_string(web::page_html.size()));
    CHECK(head.body().size() == 0);
}
