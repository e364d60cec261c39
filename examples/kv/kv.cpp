#include "kv.hpp"

#include <coserve/lines.hpp>

#include <map>
#include <mutex>

namespace kv {
namespace {

const std::string usage = "ERR usage: SET KEY VALUE | GET KEY | DEL KEY | STATS (KEY 1-64 bytes)";

class Store final : public coserve::Service {
public:
    Store(std::size_t max_keys, std::size_t max_value, std::size_t max_line)
        : max_keys_(max_keys), max_value_(max_value), max_line_(max_line) {}

    // Per-connection state lives in the session's coroutine: here, a count.
    boost::asio::awaitable<void> serve(coserve::Connection& c) override {
        std::size_t requests = 0;
        co_await coserve::serve_lines(c, coserve::Duration::zero(), [&](std::string_view line, std::string& reply) {
            ++requests;
            reply = answer(line, requests);
        });
    }

    // One datagram is one request; the same store answers TCP and UDP.
    std::size_t datagram(std::span<const char> in, const boost::asio::ip::udp::endpoint&,
                         std::span<char> out) override {
        return coserve::answer_datagram(in, out, max_line_,
                                        [this](std::string_view line, std::string& reply) { reply = answer(line, 0); });
    }

    // `requests`: this connection's so far, for STATS (0 over UDP).
    std::string answer(std::string_view line, std::size_t requests) {
        const auto word = [&line] {
            while (line.starts_with(' ')) line.remove_prefix(1);
            const auto end = line.find(' ');
            const auto w = line.substr(0, end);
            line.remove_prefix(end == std::string_view::npos ? line.size() : end + 1);
            return std::string(w);
        };
        const std::string cmd = word(), key = word();
        if (cmd == "STATS" && key.empty()) {
            std::lock_guard lock(mutex_);
            return "STATS keys " + std::to_string(data_.size()) + " connection_requests " + std::to_string(requests);
        }
        if (key.empty() || key.size() > 64) return usage;
        std::lock_guard lock(mutex_);
        if (cmd == "GET") {
            auto it = data_.find(key);
            return it == data_.end() ? "NOT_FOUND" : "VALUE " + it->second;
        }
        if (cmd == "DEL") return data_.erase(key) ? "DELETED" : "NOT_FOUND";
        if (cmd == "SET") {
            if (line.size() > max_value_) return "ERR value longer than " + std::to_string(max_value_) + " bytes";
            if (!data_.contains(key) && data_.size() >= max_keys_) return "ERR full (" + std::to_string(max_keys_) + " keys)";
            data_[key] = std::string(line);
            return "STORED";
        }
        return usage;
    }

private:
    const std::size_t max_keys_, max_value_, max_line_;
    std::mutex mutex_;  // connections may run on several threads
    std::map<std::string, std::string> data_;
};

}  // namespace

std::unique_ptr<coserve::Service> make_store(std::size_t max_keys, std::size_t max_value, std::size_t max_line) {
    return std::make_unique<Store>(max_keys, max_value, max_line);
}

std::string answer(coserve::Service& store, std::string_view line) {
    return static_cast<Store&>(store).answer(line, 0);
}

const coserve::ServiceType service{
    .name = "kv",
    .create = [](coserve::Section& s, const coserve::InstanceOptions& options) {
        const auto max_keys = static_cast<std::size_t>(s.integer("max_keys", 10000, 1, 10'000'000));
        const auto max_value = static_cast<std::size_t>(s.integer("max_value", 1024, 1, 1 << 20));
        return make_store(max_keys, max_value, options.max_line);
    }};  // TCP and UDP

}  // namespace kv
