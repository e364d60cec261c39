#include "guess.hpp"

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace guess {

void Board::record_win(int tries) noexcept {
    ++won;
    int best_now = best.load();
    while ((best_now == 0 || tries < best_now) && !best.compare_exchange_weak(best_now, tries)) {
    }
}

Game::Game(const Rules& rules, Board& board, std::uint64_t seed) : rules_(rules), board_(board), random_(seed) {
    new_number();
}

std::string Game::greeting() const {
    return "guess my number from 1 to " + std::to_string(rules_.max) + "; you have " + std::to_string(rules_.tries) +
           " tries (NEW: another number, SCORE: the scores)";
}

std::string Game::new_number() {
    secret_ = std::uniform_int_distribution<int>(1, rules_.max)(random_);
    tries_left_ = rules_.tries;
    return "a new number from 1 to " + std::to_string(rules_.max) + ", " + std::to_string(rules_.tries) + " tries";
}

std::string Game::answer(std::string_view line) {
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    std::string word(line);
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::toupper(c); });
    if (word == "SCORE") {
        const int best = board_.best.load();
        return "you: won " + std::to_string(won_) + " lost " + std::to_string(lost_) + "; everyone: won " +
               std::to_string(board_.won.load()) + " lost " + std::to_string(board_.lost.load()) + " best " +
               (best ? std::to_string(best) + " tries" : std::string("-"));
    }
    if (word == "NEW") {
        ++lost_;
        ++board_.lost;
        const int was = secret_;
        return "it was " + std::to_string(was) + "; " + new_number();
    }
    int n = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
    if (line.empty() || ec != std::errc() || end != line.data() + line.size() || n < 1 || n > rules_.max)
        return "ERR a whole number from 1 to " + std::to_string(rules_.max) + ", NEW or SCORE";
    --tries_left_;
    if (n == secret_) {
        const int used = rules_.tries - tries_left_;
        ++won_;
        board_.record_win(used);
        return "correct, in " + std::to_string(used) + (used == 1 ? " try! " : " tries! ") + new_number();
    }
    if (tries_left_ == 0) {
        ++lost_;
        ++board_.lost;
        const int was = secret_;
        return "no tries left: it was " + std::to_string(was) + "; " + new_number();
    }
    return std::string(n < secret_ ? "higher" : "lower") + " (" + std::to_string(tries_left_) +
           (tries_left_ == 1 ? " try left)" : " tries left)");
}

namespace {

class Guess final : public coserve::Service {
public:
    Guess(Rules rules, std::uint64_t seed) : rules_(rules), seed_(seed) {}

    boost::asio::awaitable<void> serve(coserve::Connection& c) override {
        // Per-connection state: this session's Game. seed 0: a random one each.
        Game game(rules_, board_, seed_ ? seed_ + games_started_++ : std::random_device{}());
        const std::string hello = game.greeting() + "\r\n";
        co_await c.write(boost::asio::buffer(hello));
        co_await coserve::serve_lines(c, coserve::Duration::zero(),
                                      [&game](std::string_view line, std::string& reply) { reply = game.answer(line); });
    }

    void metrics(coserve::MetricsWriter& out) const override {
        out.add("guess_games_total", "counter", "Numbers guessed or given up", static_cast<double>(board_.won.load()),
                "result=\"won\"");
        out.add("guess_games_total", "counter", "Numbers guessed or given up", static_cast<double>(board_.lost.load()),
                "result=\"lost\"");
    }

private:
    const Rules rules_;
    const std::uint64_t seed_;
    std::atomic<std::uint64_t> games_started_{0};
    Board board_;  // shared by the instance's connections
};

}  // namespace

const coserve::ServiceType service{
    .name = "guess",
    .create = [](coserve::Section& s, const coserve::InstanceOptions&) -> std::unique_ptr<coserve::Service> {
        Rules rules;
        rules.max = static_cast<int>(s.integer("max", 100, 2, 1'000'000'000));
        rules.tries = static_cast<int>(s.integer("tries", 7, 1, 100));
        const auto seed = static_cast<std::uint64_t>(s.integer("seed", 0, 0, 1'000'000'000));  // 0: random
        return std::make_unique<Guess>(rules, seed);
    },
    .tcp = true,
    .udp = false,
};

}  // namespace guess
