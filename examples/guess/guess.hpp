// guess: a number-guessing game over TCP lines. Each connection plays its own
// games (a Game, living in its session); the instance keeps everyone's scores
// (a Board, shared by its connections).
#pragma once

#include <coserve/service.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace guess {

extern const coserve::ServiceType service;  // "guess"

struct Rules {
    int max = 100;   // numbers from 1 to max
    int tries = 7;   // guesses per number
};

// Everyone's scores. Atomics: connections on different threads update it.
struct Board {
    std::atomic<std::uint64_t> won{0}, lost{0};
    std::atomic<int> best{0};  // fewest tries of any win (0: none yet)
    void record_win(int tries) noexcept;
};

// One connection's games.
class Game {
public:
    Game(const Rules& rules, Board& board, std::uint64_t seed);
    std::string greeting() const;
    // The reply to one line: a guess, NEW or SCORE.
    std::string answer(std::string_view line);

private:
    std::string new_number();

    const Rules& rules_;
    Board& board_;
    std::mt19937_64 random_;
    int secret_ = 0;
    int tries_left_ = 0;
    std::uint64_t won_ = 0, lost_ = 0;
};

}  // namespace guess
