// hiredis' asynchronous API on the daemon's event loop: its read/write hooks
// become waits on a posix::stream_descriptor that does not own the socket
// (hiredis closes it), all on one strand.
#include "redis_link.hpp"

#include <coserve/config.hpp>
#include <coserve/log.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>
#include <stdexcept>

namespace coserve::detail {

namespace asio = boost::asio;

namespace {

bool parse_number(std::string_view s, long max, long& out) {
    if (s.empty() || s.size() > 6) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out >= 0 && out <= max;
}

}  // namespace

std::optional<RedisAddress> parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) return std::nullopt;
    url.remove_prefix(scheme.size());
    RedisAddress a;
    const auto slash = url.find('/');
    if (slash != std::string_view::npos) {
        long db = 0;
        if (!parse_number(url.substr(slash + 1), 65535, db)) return std::nullopt;
        a.db = static_cast<int>(db);
    }
    // HOST:PORT as an instance's endpoints are written (numeric, [IPv6]),
    // where the port may be left out (6379) and neither * nor port 0 is allowed.
    std::string hostport(url.substr(0, slash));
    if (hostport.find_first_of(" \t") != std::string::npos) return std::nullopt;  // parse_endpoint trims blanks
    if (hostport.ends_with(']') || hostport.find(':') == std::string::npos) hostport += ":6379";
    Endpoint e;
    try {
        e = parse_endpoint(hostport);
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
    if (e.any || e.port == 0) return std::nullopt;
    a.host = e.address.to_string();
    a.port = e.port;
    return a;
}

// One hiredis connection and the waits that drive it.
struct RedisLink::Conn : std::enable_shared_from_this<Conn> {
    Conn(std::weak_ptr<RedisLink> l, const asio::strand<asio::any_io_executor>& s) : link(std::move(l)), fd(s) {}
    ~Conn() {
        if (ac) redisAsyncFree(ac);  // only if the link was dropped without stop()
    }
    std::weak_ptr<RedisLink> link;
    redisAsyncContext* ac = nullptr;
    asio::posix::stream_descriptor fd;  // does not own the socket: hiredis closes it
    bool reading = false, writing = false;
    bool read_armed = false, write_armed = false;
};

namespace {

using Conn = RedisLink::Conn;

std::shared_ptr<RedisLink> link_of(const redisAsyncContext* ac) {
    auto* conn = static_cast<Conn*>(ac ? ac->data : nullptr);
    auto link = conn ? conn->link.lock() : nullptr;
    return link && !link->stopped() && link->current(conn) ? link : nullptr;
}

void arm(const std::shared_ptr<Conn>& c, bool read) {
    bool& armed = read ? c->read_armed : c->write_armed;
    if (armed || !c->ac) return;
    armed = true;
    c->fd.async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                     [c, read](boost::system::error_code ec) {
                         (read ? c->read_armed : c->write_armed) = false;
                         if (ec || !c->ac || !(read ? c->reading : c->writing)) return;
                         if (read) redisAsyncHandleRead(c->ac);
                         else redisAsyncHandleWrite(c->ac);
                         if (c->ac && (read ? c->reading : c->writing)) arm(c, read);
                     });
}

void add_read(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->reading = true;
    arm(c->shared_from_this(), true);
}
void del_read(void* p) { static_cast<Conn*>(p)->reading = false; }
void add_write(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->writing = true;
    arm(c->shared_from_this(), false);
}
void del_write(void* p) { static_cast<Conn*>(p)->writing = false; }

// hiredis is about to free the context and close the socket.
void cleanup(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->reading = c->writing = false;
    c->ac = nullptr;
    boost::system::error_code ignored;
    c->fd.cancel(ignored);
    if (c->fd.is_open()) c->fd.release();
    if (auto link = c->link.lock()) link->closed_after_stop();
}

void on_connect(const redisAsyncContext* ac, int status) {
    if (status == REDIS_OK) return;
    if (auto link = link_of(ac)) link->lost(ac->errstr);
}

void on_disconnect(const redisAsyncContext* ac, int status) {
    if (auto link = link_of(ac)) link->lost(status == REDIS_OK ? "closed" : ac->errstr);
}

RedisReply convert(const redisReply* r) {
    RedisReply out;
    if (!r) return out;
    out.ok = r->type != REDIS_REPLY_ERROR;
    switch (r->type) {
    case REDIS_REPLY_INTEGER: out.integer = r->integer; break;
    case REDIS_REPLY_NIL: out.nil = true; break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
        for (std::size_t i = 0; i < r->elements; ++i)
            if (r->element[i]->type == REDIS_REPLY_STRING) out.elements.emplace_back(r->element[i]->str, r->element[i]->len);
        break;
    default: break;
    }
    return out;
}

std::string_view str(const redisReply* r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string_view(r->str, r->len)
                                                                                   : std::string_view();
}

// Replies on the subscriber connection: confirmations and messages.
void on_subscriber_reply(redisAsyncContext* ac, void* r, void*) {
    auto* reply = static_cast<redisReply*>(r);
    auto link = link_of(ac);
    if (!link || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const auto kind = str(reply->element[0]);
    if (kind == "pmessage" && reply->elements == 4) {
        link->deliver(str(reply->element[2]), str(reply->element[3]));
    } else if (kind == "message") {
        link->deliver(str(reply->element[1]), str(reply->element[2]));
    } else if (kind == "psubscribe" && reply->element[2]->type == REDIS_REPLY_INTEGER &&
               static_cast<std::size_t>(reply->element[2]->integer) == link->patterns()) {
        link->ready_one();  // the last pattern is confirmed
    }
}

void on_first_reply(redisAsyncContext* ac, void* r, void*) {
    auto* reply = static_cast<redisReply*>(r);
    auto link = link_of(ac);
    if (!link || !reply) return;
    if (reply->type == REDIS_REPLY_ERROR) link->lost(std::string(reply->str, reply->len));
    else link->ready_one();
}

void on_setup_reply(redisAsyncContext* ac, void* r, void*) {  // AUTH, SELECT: only errors matter
    auto* reply = static_cast<redisReply*>(r);
    auto link = link_of(ac);
    if (link && reply && reply->type == REDIS_REPLY_ERROR) link->lost(std::string(reply->str, reply->len));
}

struct Pending {  // a command's callback, owned by hiredis until its reply
    std::weak_ptr<RedisLink> link;
    RedisLink::ReplyFn done;
};

void on_command_reply(redisAsyncContext*, void* r, void* p) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(p));
    auto link = pending->link.lock();
    if (link && !link->stopped()) pending->done(convert(static_cast<redisReply*>(r)));
}

// One command from its arguments (strings or string_views), binary-safe.
template <class Args>
int send_argv(redisAsyncContext* ac, redisCallbackFn* fn, void* data, const Args& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        const std::string_view v(a);
        argv.push_back(v.data());
        lens.push_back(v.size());
    }
    return redisAsyncCommandArgv(ac, fn, data, static_cast<int>(argv.size()), argv.data(), lens.data());
}

int send(redisAsyncContext* ac, redisCallbackFn* fn, void* data, std::initializer_list<std::string_view> args) {
    return send_argv(ac, fn, data, args);
}

}  // namespace

std::shared_ptr<RedisLink> RedisLink::create(asio::any_io_executor executor, Options options,
                                             std::vector<std::string> patterns, MessageFn on_message, StateFn on_state) {
    return std::shared_ptr<RedisLink>(
        new RedisLink(std::move(executor), std::move(options), std::move(patterns), std::move(on_message), std::move(on_state)));
}

RedisLink::RedisLink(asio::any_io_executor executor, Options options, std::vector<std::string> patterns,
                     MessageFn on_message, StateFn on_state)
    : strand_(asio::make_strand(executor)), options_(std::move(options)), patterns_(std::move(patterns)),
      on_message_(std::move(on_message)), on_state_(std::move(on_state)), timer_(strand_), tick_timer_(strand_) {}

RedisLink::~RedisLink() = default;

void RedisLink::start() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->connect(); });
}

void RedisLink::set_tick(std::chrono::milliseconds every, std::function<void()> fn) {
    tick_every_ = every;
    on_tick_ = std::move(fn);
}

void RedisLink::arm_tick() {
    if (!on_tick_ || tick_every_.count() <= 0) return;
    tick_timer_.expires_after(tick_every_);
    tick_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->stopped_ || !self->up_) return;
        if (self->on_tick_) self->on_tick_();
        self->arm_tick();
    });
}

void RedisLink::stop() {
    stopped_ = true;  // from here on no callback reaches the service
    asio::dispatch(strand_, [self = shared_from_this()] {
        self->timer_.cancel();
        self->tick_timer_.cancel();
        self->on_message_ = nullptr;
        self->on_state_ = nullptr;
        self->on_tick_ = nullptr;
        if (auto sub = std::move(self->sub_); sub && sub->ac) redisAsyncFree(sub->ac);
        if (self->up_ && self->cmd_ && self->cmd_->ac) {
            // What the sessions queued last (releasing their names) still goes
            // out: hiredis closes after the pending replies. A second at most.
            redisAsyncDisconnect(self->cmd_->ac);  // at once if nothing is pending
            if (self->cmd_ && self->cmd_->ac) {
                self->timer_.expires_after(std::chrono::seconds(1));
                self->timer_.async_wait([self](boost::system::error_code) { self->close_all(); });
            } else {
                self->close_all();
            }
        } else {
            self->close_all();
        }
    });
}

void RedisLink::closed_after_stop() {
    if (stopped_ && (!cmd_ || !cmd_->ac)) timer_.cancel();
}

void RedisLink::connect() {
    reconnect_scheduled_ = false;
    if (stopped_) return;
    for (auto* slot : {&sub_, &cmd_}) {
        redisAsyncContext* ac = redisAsyncConnect(options_.address.host.c_str(), options_.address.port);
        if (!ac || ac->err) {
            std::string why = ac ? ac->errstr : "out of memory";
            if (ac) redisAsyncFree(ac);
            lost(why);
            return;
        }
        auto c = std::make_shared<Conn>(weak_from_this(), strand_);
        c->ac = ac;
        boost::system::error_code ec;
        c->fd.assign(ac->c.fd, ec);
        ac->data = c.get();
        ac->ev.data = c.get();
        ac->ev.addRead = add_read;
        ac->ev.delRead = del_read;
        ac->ev.addWrite = add_write;
        ac->ev.delWrite = del_write;
        ac->ev.cleanup = cleanup;
        redisAsyncSetConnectCallback(ac, on_connect);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        *slot = std::move(c);
    }
    // The first commands: AUTH if configured, then the subscriptions on one
    // connection and SELECT + PING on the other; the confirmation of the
    // last pattern and the PING's answer make the link ready.
    for (auto* c : {sub_.get(), cmd_.get()})
        if (!options_.password.empty()) send(c->ac, on_setup_reply, nullptr, {"AUTH", options_.password});
    for (const auto& pattern : patterns_) send(sub_->ac, on_subscriber_reply, nullptr, {"PSUBSCRIBE", pattern});
    for (const auto& channel : channels_) send(sub_->ac, on_subscriber_reply, nullptr, {"SUBSCRIBE", channel});
    if (options_.address.db != 0) send(cmd_->ac, on_setup_reply, nullptr, {"SELECT", std::to_string(options_.address.db)});
    send(cmd_->ac, on_first_reply, nullptr, {"PING"});
}

void RedisLink::ready_one() {
    if (++ready_ < 2 || up_) return;
    up_ = true;
    backoff_ = std::chrono::milliseconds(100);
    COSERVE_LOG(Severity::info, options_.log_name, "")
        << "redis " << options_.address.host << ":" << options_.address.port << ": "
        << (was_up_ ? "link restored" : "connected");
    was_up_ = true;
    logged_down_ = false;
    if (on_state_) on_state_(true);
    if (on_tick_) on_tick_();
    arm_tick();
}

void RedisLink::deliver(std::string_view channel, std::string_view payload) {
    if (on_message_) on_message_(channel, payload);
}

// One of the connections failed or dropped: close both, report once, retry.
void RedisLink::lost(const std::string& why) {
    if (stopped_) return;
    up_ = false;
    ready_ = 0;
    tick_timer_.cancel();
    if (!logged_down_) {
        logged_down_ = true;
        COSERVE_LOG(Severity::warning, options_.log_name, "")
            << "redis " << options_.address.host << ":" << options_.address.port << ": link down (" << why
            << "); local delivery goes on, reconnecting with backoff";
        if (on_state_) on_state_(false);
    }
    // Close both on a later turn: this may run inside a hiredis callback.
    // Once per outage of the connections: the other may report it too.
    if (reconnect_scheduled_) return;
    reconnect_scheduled_ = true;
    asio::post(strand_, [self = shared_from_this()] {
        self->close_all();
        if (self->stopped_) return;
        ++self->reconnects_;
        self->timer_.expires_after(self->backoff_);
        self->backoff_ = std::min(self->backoff_ * 2, std::chrono::milliseconds(5000));
        self->timer_.async_wait([self](boost::system::error_code ec) {
            if (!ec && !self->stopped_ && !self->sub_ && !self->cmd_) self->connect();
        });
    });
}

void RedisLink::close_all() {
    for (auto* slot : {&sub_, &cmd_}) {
        auto c = std::move(*slot);  // no longer current: its callbacks go nowhere
        if (c && c->ac) redisAsyncFree(c->ac);
    }
    up_ = false;
    ready_ = 0;
}

void RedisLink::command(std::vector<std::string> argv, ReplyFn done) {
    asio::dispatch(strand_, [self = shared_from_this(), argv = std::move(argv), done = std::move(done)]() mutable {
        if (!self->up_ || !self->cmd_ || !self->cmd_->ac) {
            if (done && !self->stopped_) done(RedisReply{});
            return;
        }
        Pending* pending = done ? new Pending{self, std::move(done)} : nullptr;
        const int rc = send_argv(self->cmd_->ac, pending ? on_command_reply : nullptr, pending, argv);
        if (rc != REDIS_OK && pending) {
            std::unique_ptr<Pending> owned(pending);
            if (!self->stopped_) owned->done(RedisReply{});
        }
    });
}

void RedisLink::send_subscribe(const char* verb, const std::string& channel) {
    if (up_ && sub_ && sub_->ac) send(sub_->ac, on_subscriber_reply, nullptr, {verb, channel});
}

void RedisLink::subscribe(const std::string& channel) {
    asio::dispatch(strand_, [self = shared_from_this(), channel] {
        if (self->channels_.insert(channel).second) self->send_subscribe("SUBSCRIBE", channel);
    });
}

void RedisLink::unsubscribe(const std::string& channel) {
    asio::dispatch(strand_, [self = shared_from_this(), channel] {
        if (self->channels_.erase(channel)) self->send_subscribe("UNSUBSCRIBE", channel);
    });
}

}  // namespace coserve::detail
