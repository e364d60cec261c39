// chat in the browser: what coserved answers to each HTTP request on a
// `websocket` listener. Pure (no sockets): the session (websocket_session.cpp)
// reads the request with Boost.Beast and writes what answer() decides.
//
// GET / is the page, /chat.js and /chat.css its script and stylesheet (built
// into the daemon: web/*, embedded at build time); GET /chat with a WebSocket
// upgrade from an allowed Origin becomes a chat connection. Every response
// carries Content-Security-Policy: default-src 'self'.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/span_body.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coserve::services::chat::web {

namespace http = boost::beast::http;

// What a WebSocket connection speaks: chat lines, or IRC (IRCv3's
// text.ircv3.net and binary.ircv3.net).
enum class Subprotocol : unsigned char { line, irc_text, irc_binary };
// The first of the client's offers (Sec-WebSocket-Protocol, a comma-separated
// list) that coserved speaks; none of them: the line protocol.
Subprotocol choose(std::string_view offered);
std::string_view name(Subprotocol s);  // "" for line

// `origin` in the form browsers send (scheme://host[:port], scheme and host
// in lower case, no default port, no path), or nullopt if it is not an
// http or https origin.
std::optional<std::string> normal_origin(std::string_view origin);
// May a page from `origin` open a chat connection? Yes for no Origin at all
// (not a browser: it could send anything), for the page's own origin (the
// scheme of the listener and the Host it was asked for), and for the
// configured ones; no for any other, "null" included.
bool origin_allowed(const std::optional<std::string_view>& origin, std::string_view host, bool tls,
                    const std::vector<std::string>& allowed);

struct Answer {
    enum class Kind : unsigned char { file, upgrade, refuse };
    Kind kind = Kind::refuse;
    http::status status = http::status::not_found;
    std::string_view type;  // Content-Type
    std::string_view body;  // a file, or a refusal's one-line text
    Subprotocol subprotocol = Subprotocol::line;
};

// `origins`: websocket_origins, normalized (normal_origin).
Answer answer(const http::request_header<>& request, bool tls, const std::vector<std::string>& origins);
// For a request Beast could not read: 431 when its header was too long, else 400.
Answer unreadable(bool too_long);

// The response for a file or a refusal; HEAD gets the headers alone.
http::response<http::span_body<const char>> response(const Answer& a, bool head, bool keep_alive);

// The page's files (web_assets.cpp, generated from web/).
extern const std::string_view page_html, page_script, page_style;

}  // namespace coserve::services::chat::web
