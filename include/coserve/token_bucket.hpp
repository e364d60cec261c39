// A token bucket: `rate.per_second` tokens a second, at most `rate.burst`
// held, full at the start. The rate is passed to each call rather than
// stored, so a table of buckets that share one rate (a per-source table)
// stays small. Not thread-safe: one owner, or the owner's lock.
#pragma once

#include <coserve/config.hpp>

#include <algorithm>
#include <chrono>

namespace coserve {

class TokenBucket {
public:
    using clock = std::chrono::steady_clock;

    TokenBucket() = default;
    TokenBucket(const Rate& rate, clock::time_point now) : tokens_(rate.burst), refill_(now) {}

    // Takes a token if one is there; false (and nothing taken) if not.
    bool take(const Rate& rate, clock::time_point now) noexcept {
        refill(rate, now);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    // How long after `now` a token will be there (zero: one is there now).
    clock::duration wait(const Rate& rate, clock::time_point now) noexcept {
        refill(rate, now);
        if (tokens_ >= 1 || rate.per_second <= 0) return clock::duration::zero();
        const std::chrono::duration<double> seconds((1 - tokens_) / rate.per_second);
        return std::chrono::ceil<clock::duration>(seconds);
    }

private:
    void refill(const Rate& rate, clock::time_point now) noexcept {
        if (now > refill_) tokens_ = std::min(rate.burst, tokens_ + std::chrono::duration<double>(now - refill_).count() * rate.per_second);
        refill_ = std::max(refill_, now);
    }

    double tokens_ = 0;
    clock::time_point refill_{};
};

}  // namespace coserve
