// chat in the browser: the answer to each HTTP request. See web.hpp.
#include "web.hpp"

#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <cctype>

namespace coserve::services::chat::web {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

Answer refuse(http::status status, std::string_view text) {
    return {Answer::Kind::refuse, status, "text/plain; charset=utf-8", text, Subprotocol::line};
}

}  // namespace

Subprotocol choose(std::string_view offered) {
    while (!offered.empty()) {
        const std::size_t comma = offered.find(',');
        const std::string_view one = trim(offered.substr(0, comma));
        offered.remove_prefix(comma == std::string_view::npos ? offered.size() : comma + 1);
        if (one == "text.ircv3.net") return Subprotocol::irc_text;
        if (one == "binary.ircv3.net") return Subprotocol::irc_binary;
    }
    return Subprotocol::line;
}

std::string_view name(Subprotocol s) {
    switch (s) {
    case Subprotocol::irc_text: return "text.ircv3.net";
    case Subprotocol::irc_binary: return "binary.ircv3.net";
    case Subprotocol::line: break;
    }
    return "";
}

std::optional<std::string> normal_origin(std::string_view origin) {
    const std::string o = lower(origin);
    std::string_view rest = o;
    std::string_view scheme;
    if (rest.starts_with("http://")) scheme = "http";
    else if (rest.starts_with("https://")) scheme = "https";
    else return std::nullopt;
    rest.remove_prefix(scheme.size() + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // as written by hand; browsers send none
    if (rest.empty() || rest.size() > 255) return std::nullopt;
    std::string_view host = rest, port;
    if (rest.front() == '[') {  // [v6]:port
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = rest.substr(0, close + 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':') return std::nullopt;
            port = rest.substr(close + 2);
            if (port.empty()) return std::nullopt;
        }
        if (!std::all_of(host.begin() + 1, host.end() - 1, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }))
            return std::nullopt;
    } else {
        const std::size_t colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
            if (port.empty()) return std::nullopt;
        }
        if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
            }))
            return std::nullopt;
    }
    if (!std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
        port.size() > 5)
        return std::nullopt;
    if ((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) port = {};
    std::string out(scheme);
    out.append("://").append(host);
    if (!port.empty()) out.append(":").append(port);
    return out;
}

bool origin_allowed(const std::optional<std::string_view>& origin, std::string_view host, bool tls,
                    const std::vector<std::string>& allowed) {
    if (!origin) return true;
    const auto o = normal_origin(*origin);
    if (!o) return false;
    std::string own(tls ? "https://" : "http://");
    own.append(host);
    if (const auto self = normal_origin(own); self && *self == *o) return true;
    return std::find(allowed.begin(), allowed.end(), *o) != allowed.end();
}

Answer answer(const http::request_header<>& request, bool tls, const std::vector<std::string>& origins) {
    if (request.method() != http::verb::get && request.method() != http::verb::head)
        return refuse(http::status::method_not_allowed, "only GET and HEAD are served here\n");
    std::string_view path = request.target();
    path = path.substr(0, path.find('?'));
    if (path == "/") return {Answer::Kind::file, http::status::ok, "text/html; charset=utf-8", page_html};
    if (path == "/chat.js") return {Answer::Kind::file, http::status::ok, "text/javascript; charset=utf-8", page_script};
    if (path == "/chat.css") return {Answer::Kind::file, http::status::ok, "text/css; charset=utf-8", page_style};
    if (path != "/chat") return refuse(http::status::not_found, "not found\n");
    if (!boost::beast::websocket::is_upgrade(request))
        return refuse(http::status::upgrade_required, "/chat is a WebSocket endpoint\n");
    std::optional<std::string_view> origin;
    if (const auto it = request.find(http::field::origin); it != request.end()) origin = it->value();
    const auto host = request.find(http::field::host);
    if (!origin_allowed(origin, host == request.end() ? std::string_view() : std::string_view(host->value()), tls, origins))
        return refuse(http::status::forbidden, "this Origin may not open a chat connection (websocket_origins)\n");
    Answer a{Answer::Kind::upgrade, http::status::switching_protocols, {}, {}, Subprotocol::line};
    if (const auto it = request.find(http::field::sec_websocket_protocol); it != request.end())
        a.subprotocol = choose(it->value());
    return a;
}

Answer unreadable(bool too_long) {
    return too_long ? refuse(http::status::request_header_fields_too_large, "request header too large\n")
                    : refuse(http::status::bad_request, "bad request\n");
}

http::response<http::span_body<const char>> response(const Answer& a, bool head, bool keep_alive) {
    http::response<http::span_body<const char>> r;
    r.version(11);
    r.result(a.status);
    r.set(http::field::server, "coserve");
    r.set(http::field::content_type, a.type);
    r.set("Content-Security-Policy", "default-src 'self'");
    r.set("X-Content-Type-Options", "nosniff");
    r.set(http::field::x_frame_options, "DENY");
    r.set("Referrer-Policy", "no-referrer");
    r.set(http::field::cache_control, "no-cache");
    if (a.status == http::status::method_not_allowed) r.set(http::field::allow, "GET, HEAD");
    if (a.status == http::status::upgrade_required) {
        r.set(http::field::upgrade, "websocket");
        r.set(http::field::connection, "Upgrade");
    }
    r.keep_alive(keep_alive);
    if (head) {
        r.content_length(a.body.size());
    } else {
        r.body() = {a.body.data(), a.body.size()};
        r.prepare_payload();
    }
    return r;
}

}  // namespace coserve::services::chat::web
