#include "kv.hpp"

#include <coserve/lines.hpp>

#include <map>
#include <mutex>

namespace kv {
namespace {

class Store final : public coserve::Service {
public:
    Store(std::size_t max_keys, std::size_t max_value) : max_keys_(max_keys), max_value_(max_value) {}

    boost::asio::awaitable<void> serve(coserve::Connection& c) override {
        co_await coserve::serve_lines(c, coserve::Duration::zero(),
                                      [this](std::string_view line, std::string& reply) { reply = answer(line); });
    }

    std::string answer(std::string_view line) {
        const auto word = [&line] {
            while (line.starts_with(' ')) line.remove_prefix(1);
            const auto end = line.find(' ');
            const auto w = line.substr(0, end);
            line.remove_prefix(end == std::string_view::npos ? line.size() : end + 1);
            return std::string(w);
        };
        const std::string cmd = word(), key = word();
        if (key.empty() || key.size() > 64) return "ERR usage: SET KEY VALUE | GET KEY | DEL KEY (KEY 1-64 bytes)";
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
        return "ERR usage: SET KEY VALUE | GET KEY | DEL KEY (KEY 1-64 bytes)";
    }

private:
    const std::size_t max_keys_, max_value_;
    std::mutex mutex_;  // connections may run on several threads
    std::map<std::string, std::string> data_;
};

}  // namespace

std::unique_ptr<coserve::Service> make_store(std::size_t max_keys, std::size_t max_value) {
    return std::make_unique<Store>(max_keys, max_value);
}

std::string answer(coserve::Service& store, std::string_view line) {
    return static_cast<Store&>(store).answer(line);
}

const coserve::ServiceType service{
    "kv",
    [](coserve::Section& s, const coserve::InstanceOptions&) {
        const auto max_keys = static_cast<std::size_t>(s.integer("max_keys", 10000, 1, 10'000'000));
        const auto max_value = static_cast<std::size_t>(s.integer("max_value", 1024, 1, 1 << 20));
        return make_store(max_keys, max_value);
    },
    true, false};

}  // namespace kv
