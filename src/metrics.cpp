// The metrics endpoint ([metrics] http): GET /metrics (Prometheus text
// format), /healthz and /instances (JSON), over HTTP/1.1 with Boost.Beast.
#include "metrics.hpp"

#include <coserve/log.hpp>

#include "listeners.hpp"
#include "tls.hpp"

#include <coserve/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/beast/http.hpp>

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>
#include <fstream>
#include <map>

namespace coserve::detail {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string escape_label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string json_string(std::string_view v) {
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Collects samples by family, so each family's HELP, TYPE and samples stay together.
class Families final : public MetricsWriter {
public:
    explicit Families(std::string labels = {}) : labels_(std::move(labels)) {}
    void with_labels(std::string labels) { labels_ = std::move(labels); }

    void add(std::string_view name, std::string_view type, std::string_view help, double value,
             std::string_view extra = {}) override {
        auto& f = families_[std::string("coserve_") + std::string(name)];
        if (f.type.empty()) {
            f.type = type;
            f.help = help;
        }
        std::string labels = labels_;
        if (!extra.empty()) labels += (labels.empty() ? "" : ",") + std::string(extra);
        f.samples += f.name_prefix(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + number(value) + "\n";
    }

    std::string text() const {
        std::string out;
        for (const auto& [name, f] : families_)
            out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n" + f.samples;
        return out;
    }

private:
    struct Family {
        std::string type, help, samples;
        static std::string name_prefix(std::string_view name) { return "coserve_" + std::string(name); }
    };
    std::string labels_;
    std::map<std::string, Family> families_;
};

long open_fds() {
    long n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        --n;  // the directory stream's own descriptor
    }
    return n;
}

double resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string metrics_text(const std::vector<std::unique_ptr<Instance>>& instances, const Instance* endpoint,
                         std::chrono::steady_clock::time_point started) {
    Families f;
    std::vector<const Instance*> all;
    for (const auto& inst : instances) all.push_back(inst.get());
    if (endpoint) all.push_back(endpoint);
    for (const Instance* inst : all) {
        const auto& k = inst->counters;
        f.with_labels("instance=\"" + escape_label(inst->config.name) + "\",service=\"" +
                      escape_label(inst->config.service_type) + "\"");
        f.add("connections_active", "gauge", "Open TCP connections.", static_cast<double>(k.active.load()));
        f.add("connections_total", "counter", "TCP connections accepted and served.", static_cast<double>(k.accepted.load()));
        if (inst->idle_restart)
            f.add("connections_parked", "gauge",
                  "Open TCP connections waiting for input without a coroutine (services with idle_restart).",
                  static_cast<double>(k.parked.load()));
        for (std::size_t r = 1; r < refusal_count; ++r) {
            const auto reason = std::string("reason=\"") + refusal_name(static_cast<Refusal>(r)) + "\"";
            const auto why = static_cast<Refusal>(r);
            if (refuses_connections(why))
                f.add("connections_rejected_total", "counter", "TCP connections closed at accept, by reason.",
                      static_cast<double>(k.refused[r].load()), reason);
            if (drops_datagrams(why))
                f.add("datagrams_dropped_total", "counter", "UDP datagrams dropped unanswered, by reason.",
                      static_cast<double>(k.dropped[r].load()), reason);
        }
        f.add("connections_closed_total", "counter", "TCP connections closed.", static_cast<double>(k.closed.load()));
        f.add("idle_timeouts_total", "counter", "TCP connections closed by idle_timeout.", static_cast<double>(k.idle_closed.load()));
        f.add("received_bytes_total", "counter", "Bytes read from closed TCP connections.", static_cast<double>(k.bytes_in.load()));
        f.add("sent_bytes_total", "counter", "Bytes written to closed TCP connections.", static_cast<double>(k.bytes_out.load()));
        f.add("datagrams_received_total", "counter", "UDP datagrams received.", static_cast<double>(k.datagrams_in.load()));
        f.add("datagrams_sent_total", "counter", "UDP replies sent.", static_cast<double>(k.datagrams_out.load()));
        f.add("errors_total", "counter", "Sessions and datagrams that failed with an error.", static_cast<double>(k.errors.load()));
        if (const auto tls = inst->tls()) {
            f.add("tls_handshakes_total", "counter", "TLS handshakes completed, by protocol version.",
                  static_cast<double>(k.tls_handshakes[0].load()), "version=\"TLSv1.2\"");
            f.add("tls_handshakes_total", "counter", "TLS handshakes completed, by protocol version.",
                  static_cast<double>(k.tls_handshakes[1].load()), "version=\"TLSv1.3\"");
            for (std::size_t r = 0; r < tls_failure_count; ++r)
                f.add("tls_handshake_failures_total", "counter", "TLS handshakes that failed, by reason.",
                      static_cast<double>(k.tls_failed[r].load()),
                      "reason=\"" + std::string(tls_failure_name(static_cast<TlsFailure>(r))) + "\"");
            f.add("tls_certificate_expiry_timestamp_seconds", "gauge",
                  "When the TLS certificate in use expires (Unix time).", static_cast<double>(tls->not_after()),
                  "file=\"" + escape_label(tls->settings().cert) + "\"");
        }
        inst->config.service->metrics(f);
    }
    f.with_labels({});
    f.add("uptime_seconds", "gauge", "Seconds since coserved started.",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    f.add("open_fds", "gauge", "Open file descriptors of the process.", static_cast<double>(open_fds()));
    f.add("resident_memory_bytes", "gauge", "Resident memory of the process.", resident_bytes());
    return f.text();
}

std::string instances_json(const std::vector<std::unique_ptr<Instance>>& instances) {
    std::string out = "[";
    for (const auto& inst : instances) {
        if (out.size() > 1) out += ",";
        // "tcp", "tls", then each front-end's listeners under their own key ("irc", "irc_tls").
        std::vector<std::pair<std::string, std::string>> lists{{"tcp", ""}, {"tls", ""}};
        for (std::size_t i = 0; i < inst->tcp_bound.size(); ++i) {
            auto it = std::find_if(lists.begin(), lists.end(), [&](const auto& l) { return l.first == inst->kinds[i]; });
            if (it == lists.end()) it = lists.insert(lists.end(), {inst->kinds[i], ""});
            it->second += (it->second.empty() ? "" : ",") + json_string(log::format_endpoint(inst->tcp_bound[i]));
        }
        std::string udp, stream;
        for (const auto& [kind, list] : lists) stream += ",\"" + kind + "\":[" + list + "]";
        for (const auto& ep : inst->udp_bound) udp += (udp.empty() ? "" : ",") + json_string(log::format_endpoint(ep));
        out += "{\"name\":" + json_string(inst->config.name) + ",\"service\":" + json_string(inst->config.service_type) +
               stream + ",\"udp\":[" + udp + "],\"connections\":" +
               std::to_string(inst->counters.active.load()) + ",\"accepted\":" +
               std::to_string(inst->counters.accepted.load()) + ",\"datagrams\":" +
               std::to_string(inst->counters.datagrams_in.load()) + "}";
    }
    return out + "]\n";
}

namespace {

// GET /metrics, /healthz and /instances over HTTP/1.1 with keep-alive, on a
// connection the framework accepted (its permits, limits and idle timeout
// apply). The request is parsed by Beast from what the connection reads;
// the response is written through the connection, so bytes are counted.
class MetricsService final : public Service {
public:
    explicit MetricsService(const MetricsSource& source) : source_(source) {}

    asio::awaitable<void> serve(Connection& c) override {
        std::string pending;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(4096);
            parser.header_limit(8192);
            if (!co_await read_request(c, parser, pending)) break;  // closed, or not HTTP: nothing to answer
            const auto& req = parser.get();
            const auto res = co_await respond(req);
            std::ostringstream out;
            out << res;
            const std::string text = out.str();
            co_await c.write(asio::buffer(text));
            if (!res.keep_alive()) break;
        }
        c.shutdown_send();
    }

private:
    // Feeds the parser from `pending` and then from the connection until a
    // request is complete; false at the client's close or a malformed request.
    static asio::awaitable<bool> read_request(Connection& c, http::request_parser<http::string_body>& parser,
                                              std::string& pending) {
        std::array<char, 4096> buf;
        while (!parser.is_done()) {
            beast::error_code ec;
            const auto used = pending.empty() ? 0 : parser.put(asio::buffer(pending), ec);
            if (ec && ec != http::error::need_more) co_return false;
            pending.erase(0, used);
            if (parser.is_done()) break;
            if (used > 0 && !pending.empty()) continue;
            const std::size_t n = co_await c.read_some(asio::buffer(buf));
            if (n == 0) co_return false;
            pending.append(buf.data(), n);
        }
        co_return true;
    }

    // On the source's executor: the session runs on a strand of its own.
    asio::awaitable<std::string> on_source(std::function<std::string()> const& f) const {
        co_return co_await asio::co_spawn(source_.executor, [&f]() -> asio::awaitable<std::string> { co_return f(); },
                                          asio::use_awaitable);
    }

    asio::awaitable<http::response<http::string_body>> respond(const http::request<http::string_body>& req) const {
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::server, "coserved");
        const std::string_view target(req.target().data(), req.target().size());
        const auto path = target.substr(0, target.find('?'));
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            res.result(http::status::method_not_allowed);
            res.set(http::field::allow, "GET, HEAD");
            res.body() = "method not allowed\n";
        } else if (path == "/metrics") {
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = co_await on_source(source_.metrics);
        } else if (path == "/healthz") {
            res.set(http::field::content_type, "text/plain");
            res.body() = "ok\n";
        } else if (path == "/instances") {
            res.set(http::field::content_type, "application/json");
            res.body() = co_await on_source(source_.instances);
        } else {
            res.result(http::status::not_found);
            res.body() = "not found\n";
        }
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        if (req.method() == http::verb::head) res.body().clear();
        co_return res;
    }

    const MetricsSource& source_;
};

}  // namespace

InstanceConfig metrics_instance_config(const MetricsConfig& config, const MetricsSource& source) {
    InstanceConfig ic;
    ic.name = "metrics";
    ic.service_type = "metrics";
    auto& o = ic.options;
    o.tcp = config.http;
    o.tls = config.https;
    o.tls_settings = config.tls_settings;
    ic.tls = config.tls;
    o.max_connections = config.max_connections;
    o.max_per_source = config.max_per_source;
    o.connect_rate = config.connect_rate;
    o.allow = config.allow;
    o.deny = config.deny;
    o.idle_timeout = config.idle_timeout;
    ic.service = std::make_shared<MetricsService>(source);
    return ic;
}

}  // namespace coserve::detail
