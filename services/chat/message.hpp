// chat: a line stored once and shared by every recipient's queue.
//
// A Message is one line as sent on the wire (its line ending included), or
// several lines said in a row by one member (`lines` counts them against a
// recipient's max_queue). It is immutable once published and
// reference-counted (boost::intrusive_ptr, one atomic per reference); the
// pool recycles it, so the data path allocates nothing in the steady state.
// Ring is the bounded queue that holds the references (a member's outbox, a
// room's history).
#pragma once

#include <boost/intrusive_ptr.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace coserve::services::chat {

class MessagePool;

struct Message {
    std::atomic<std::uint32_t> refs{0};
    MessagePool* pool = nullptr;
    std::string text;
    std::uint32_t lines = 1;  // what it counts in a member's queue (a batch of join notices: 1)
    // The same lines as WebSocket frames ([0] text, [1] binary), made once,
    // by the first WebSocket recipient (Delivery::framed), and shared by the
    // others; each holds a reference, given back when this one is recycled.
    std::atomic<Message*> framed[2] = {nullptr, nullptr};
};

inline void intrusive_ptr_release(Message* m) noexcept;

// Thread-safe; outlives every Message it hands out.
class MessagePool {
public:
    MessagePool() = default;
    MessagePool(const MessagePool&) = delete;
    ~MessagePool() {
        for (auto* m : free_) delete m;
    }

    Message* acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!free_.empty()) {
                Message* m = free_.back();
                free_.pop_back();
                m->lines = 1;
                return m;
            }
        }
        auto* m = new Message;
        m->pool = this;
        return m;
    }

    void recycle(Message* m) {
        // No reference to `m` is left, so no thread touches its slots: a
        // load, not an exchange (most messages never had a WebSocket reader).
        for (auto& slot : m->framed)
            if (Message* twin = slot.load(std::memory_order_acquire)) {
                slot.store(nullptr, std::memory_order_relaxed);
                intrusive_ptr_release(twin);
            }
        if (m->text.capacity() <= 8192) {
            std::lock_guard lock(mutex_);
            if (free_.size() < max_free) {
                free_.push_back(m);
                return;
            }
        }
        delete m;
    }

private:
    static constexpr std::size_t max_free = 4096;
    std::mutex mutex_;
    std::vector<Message*> free_;
};

inline void intrusive_ptr_add_ref(Message* m) noexcept {
    m->refs.fetch_add(1, std::memory_order_relaxed);
}

inline void intrusive_ptr_release(Message* m) noexcept {
    if (m->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) m->pool->recycle(m);
}

using MessageRef = boost::intrusive_ptr<Message>;

// A bounded ring, grown on demand up to its bound. Not thread-safe.
template <class T>
class Ring {
public:
    explicit Ring(std::size_t bound) : bound_(bound) {}
    bool full() const noexcept { return size_ == bound_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push(T value) {  // precondition: !full()
        if (size_ == slots_.size()) grow();
        slots_[(head_ + size_) % slots_.size()] = std::move(value);
        ++size_;
    }
    T pop() {  // precondition: !empty()
        T value = std::move(slots_[head_]);
        head_ = (head_ + 1) % slots_.size();
        --size_;
        return value;
    }
    const T& at(std::size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < size_; ++i) f(slots_[(head_ + i) % slots_.size()]);
    }

private:
    void grow() {
        std::vector<T> bigger(std::min(bound_, std::max<std::size_t>(16, slots_.size() * 2)));
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::size_t bound_;
    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace coserve::services::chat
