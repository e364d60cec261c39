// chat's WebSocket front-end: what coserved does with what Beast parses.
// The bytes as an HTTP request (Beast's parser): a request that parses gets
// an answer that is consistent (an upgrade only for GET /chat with a valid
// upgrade from an allowed or absent Origin, files only for GET and HEAD),
// and a response with the content policy; an upgrade goes through Beast's
// handshake on an in-memory stream with coserved's decorator, answered 101
// with the chosen subprotocol, or 400. The bytes as an origin: normalizing is
// idempotent. The bytes as chat text: the frames written for it parse back to
// its lines, text frames as valid UTF-8.
#include "check.hpp"

#include "chat/web.hpp"
#include "chat/websocket.hpp"

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <sstream>
#include <string>

namespace web = coserve::services::chat::web;
namespace ws = coserve::services::chat::ws;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

const std::vector<std::string> origins{"https://chat.example.org"};

bool valid_utf8(std::string_view s) {
    std::string copy;
    ws::append_valid_utf8(copy, s);
    return copy == s;
}

void check_request(std::string_view bytes) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    parser.eager(true);
    beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    (void)used;
    if (ec || !parser.is_done()) return;
    const auto& request = parser.get();
    for (const bool tls : {false, true}) {
        const auto a = web::answer(request, tls, origins);
        std::string_view path = request.target();
        path = path.substr(0, path.find('?'));
        const bool get = request.method() == http::verb::get, head = request.method() == http::verb::head;
        switch (a.kind) {
        case web::Answer::Kind::upgrade: {
            FUZZ_CHECK(get && path == "/chat" && beast::websocket::is_upgrade(request));
            if (const auto it = request.find(http::field::origin); it != request.end()) {
                const auto o = web::normal_origin(it->value());
                FUZZ_CHECK(o.has_value());
                const auto host = request.find(http::field::host);
                const auto own = web::normal_origin(std::string(tls ? "https://" : "http://") +
                                                    std::string(host == request.end() ? beast::string_view() : host->value()));
                FUZZ_CHECK((own && *o == *own) || *o == origins.front());
            }
            break;
        }
        case web::Answer::Kind::file:
            FUZZ_CHECK(get || head);
            FUZZ_CHECK(a.body == web::page_html || a.body == web::page_script || a.body == web::page_style);
            break;
        case web::Answer::Kind::refuse:
            FUZZ_CHECK(a.status == http::status::not_found || a.status == http::status::method_not_allowed ||
                       a.status == http::status::upgrade_required || a.status == http::status::forbidden);
            break;
        }
        if (a.kind != web::Answer::Kind::upgrade) {
            std::ostringstream out;
            out << web::response(a, head, request.keep_alive());
            const std::string text = out.str();
            FUZZ_CHECK(text.find("\r\nContent-Security-Policy: default-src 'self'\r\n") != std::string::npos);
            continue;
        }
        // Beast's handshake with coserved's decorator, on an in-memory stream.
        boost::asio::io_context ioc;
        beast::websocket::stream<beast::test::stream> stream(ioc);
        beast::test::stream peer(ioc);
        stream.next_layer().connect(peer);
        stream.set_option(beast::websocket::stream_base::decorator(
            [name = web::name(a.subprotocol)](beast::websocket::response_type& r) {
                r.set(http::field::server, "coserve");
                if (!name.empty()) r.set(http::field::sec_websocket_protocol, name);
            }));
        beast::error_code accept_ec;
        stream.accept(request, accept_ec);
        const std::string response = beast::buffers_to_string(peer.buffer().data());
        if (!accept_ec) {
            FUZZ_CHECK(response.starts_with("HTTP/1.1 101 "));
            FUZZ_CHECK((response.find("\r\nSec-WebSocket-Protocol: ") != std::string::npos) ==
                       (a.subprotocol != web::Subprotocol::line));
        } else {
            FUZZ_CHECK(response.empty() || response.starts_with("HTTP/1.1 400 ") || response.starts_with("HTTP/1.1 426 "));
        }
    }
}

// The lines of `text` as the server cuts them (LF or CRLF, empty ones skipped).
std::vector<std::string_view> lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (end != std::string_view::npos && line.ends_with('\r')) line.remove_suffix(1);
        if (!line.empty()) out.push_back(line);
    }
    return out;
}

void check_frames(std::string_view text) {
    const auto expected = lines(text);
    for (const bool binary : {false, true}) {
        std::string out;
        ws::append_frames(out, text, binary);
        std::string_view rest = out;
        std::size_t i = 0;
        while (!rest.empty()) {
            FUZZ_CHECK(rest.size() >= 2);
            const auto b0 = static_cast<unsigned char>(rest[0]), b1 = static_cast<unsigned char>(rest[1]);
            FUZZ_CHECK(b0 == (binary ? 0x82 : 0x81));  // FIN, never fragmented
            FUZZ_CHECK((b1 & 0x80) == 0);              // never masked
            std::uint64_t size = b1 & 0x7f;
            std::size_t at = 2;
            if (size == 126) {
                size = static_cast<std::uint64_t>(static_cast<unsigned char>(rest[2])) << 8 | static_cast<unsigned char>(rest[3]);
                at = 4;
                FUZZ_CHECK(size >= 126);  // the shortest form
            } else if (size == 127) {
                size = 0;
                for (std::size_t k = 2; k < 10; ++k) size = size << 8 | static_cast<unsigned char>(rest[k]);
                at = 10;
                FUZZ_CHECK(size > 0xffff);
            }
            FUZZ_CHECK(rest.size() >= at + size);
            const auto payload = rest.substr(at, size);
            FUZZ_CHECK(i < expected.size());
            if (binary) FUZZ_CHECK(payload == expected[i]);
            else FUZZ_CHECK(valid_utf8(payload) && (valid_utf8(expected[i]) ? payload == expected[i] : true));
            rest.remove_prefix(at + size);
            ++i;
        }
        FUZZ_CHECK(i == expected.size());
    }
    std::string close;
    ws::append_close(close, 1001, text);
    FUZZ_CHECK(close.size() <= 2 + 125 && static_cast<unsigned char>(close[1]) == close.size() - 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    check_request(bytes);
    if (const auto o = web::normal_origin(bytes)) FUZZ_CHECK(web::normal_origin(*o) == o);
    (void)web::choose(bytes);
    check_frames(bytes);
    return 0;
}
