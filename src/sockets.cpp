// The server's sockets: binding (all or nothing at start), sockets from the
// service manager (systemd socket activation), and instances assembled from
// bound sockets.
#include "server_impl.hpp"

#include <coserve/log.hpp>

#include <boost/asio/ip/v6_only.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace coserve {

namespace {

template <class Protocol>
typename Protocol::endpoint to_asio(const Endpoint& e, bool v6) {
    if (e.any) return {v6 ? Protocol::v6() : Protocol::v4(), e.port};
    return {e.address, e.port};
}

[[noreturn]] void bind_failed(const std::string& where, const Endpoint& e, const char* step,
                              const boost::system::error_code& ec) {
    std::string hint;
    if (ec == boost::asio::error::access_denied && e.port < 1024)
        hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    throw BindError(where + " " + e.to_string() + ": cannot " + step + ": " + ec.message() + hint);
}

// Opens a socket for `e`: a wildcard means [::] accepting IPv4 too, or
// 0.0.0.0 where the host has no IPv6.
template <class Socket, class Protocol>
typename Protocol::endpoint open_for(Socket& s, const std::string& where, const Endpoint& e) {
    boost::system::error_code ec;
    auto ep = to_asio<Protocol>(e, true);
    s.open(ep.protocol(), ec);
    if (ec && e.any) {
        ep = to_asio<Protocol>(e, false);
        s.open(ep.protocol(), ec);
    }
    if (ec) bind_failed(where, e, "open a socket", ec);
    if (ep.address().is_v6()) s.set_option(asio::ip::v6_only(!e.any), ec);
    return ep;
}

}  // namespace

BoundSockets::~BoundSockets() {
    for (auto& [k, s] : tcps) ::close(s.fd);
    for (auto& [k, s] : udps) ::close(s.fd);
}

void BoundSockets::bind_tcp(asio::io_context& ioc, const std::string& instance, std::string_view kind, const Endpoint& e) {
    const std::string where = "[" + instance + "] " + std::string(kind);
    tcp::acceptor a(ioc);
    const auto ep = open_for<tcp::acceptor, tcp>(a, where, e);
    boost::system::error_code ec;
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (a.bind(ep, ec); ec) bind_failed(where, e, "bind", ec);
    if (a.listen(asio::socket_base::max_listen_connections, ec); ec) bind_failed(where, e, "listen", ec);
    const auto bound = a.local_endpoint();
    tcps.emplace(detail::socket_key(instance, kind, e), Tcp{a.release(), bound});
}

void BoundSockets::bind_udp(asio::io_context& ioc, const std::string& instance, const Endpoint& e) {
    const std::string where = "[" + instance + "] udp";
    udp::socket s(ioc);
    const auto ep = open_for<udp::socket, udp>(s, where, e);
    boost::system::error_code ec;
    if (s.bind(ep, ec); ec) bind_failed(where, e, "bind", ec);
    const auto bound = s.local_endpoint();
    udps.emplace(detail::socket_key(instance, "udp", e), Udp{s.release(), bound});
}

std::unique_ptr<Instance> Server::Impl::assemble(const InstanceConfig& ic, BoundSockets& pool) {
    auto inst = std::make_unique<Instance>(ic, *state);
    for (const auto& l : detail::listeners(ic.options, true)) {
        auto node = pool.tcps.extract(detail::socket_key(ic.name, l.kind, l.endpoint));
        tcp::acceptor& a = inst->acceptors.emplace_back(state->control);
        a.assign(node.mapped().bound.protocol(), node.mapped().fd);
        inst->tcp_bound.push_back(node.mapped().bound);
        inst->kinds.push_back(l.kind);
    }
    for (const auto& e : ic.options.udp) {
        auto node = pool.udps.extract(detail::socket_key(ic.name, "udp", e));
        udp::socket& s = inst->udp_sockets.emplace_back(state->control);
        s.assign(node.mapped().bound.protocol(), node.mapped().fd);
        inst->udp_bound.push_back(node.mapped().bound);
    }
    return inst;
}

namespace {

bool same_endpoint(const Endpoint& configured, const asio::ip::address& address, unsigned short port) {
    if (configured.port != port) return false;
    if (configured.any) return address.is_unspecified();
    return configured.address == address;
}

}  // namespace

// Sockets from systemd go into the pool under the key of the configured
// endpoint they are bound to, so nothing binds those endpoints again.
void Server::Impl::adopt_inherited(BoundSockets& pool) {
    for (const auto& s : options.inherited) {
        const auto dash = s.name.rfind('-');
        const std::string instance = dash == std::string::npos ? "" : s.name.substr(0, dash);
        const std::string proto = dash == std::string::npos ? "" : s.name.substr(dash + 1);
        const InstanceConfig* ic = nullptr;
        for (const auto& c : config.instances)
            if (c.name == instance && c.options.enabled) ic = &c;
        // The kinds this instance listens with: tcp, tls, a front-end's NAME and NAME_tls, udp.
        std::vector<detail::Listener> candidates;
        if (ic)
            for (const bool stream : {true, false})
                for (auto& l : detail::listeners(ic->options, stream))
                    if (l.kind == proto) candidates.push_back(std::move(l));
        const bool known_kind = proto == "tcp" || proto == "tls" || proto == "udp" || !candidates.empty();
        if (!ic || !known_kind)
            throw BindError("socket activation: FileDescriptorName=" + s.name +
                            " names no enabled instance (expected INSTANCE-tcp, INSTANCE-tls, INSTANCE-udp or a "
                            "front-end's INSTANCE-irc, INSTANCE-irc_tls)");
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw BindError("socket activation: " + s.name + ": getsockname: " + std::strerror(errno));
        tcp::endpoint bound;
        std::memcpy(bound.data(), &ss, std::min<std::size_t>(len, bound.capacity()));
        bound.resize(len);
        const Endpoint* match = nullptr;
        for (const auto& l : candidates)
            if (same_endpoint(l.endpoint, bound.address(), bound.port())) match = &l.endpoint;
        if (!match)
            throw BindError("socket activation: " + s.name + " is bound to " + log::format_endpoint(bound) + ", which [" +
                            instance + "] " + proto + " does not list");
        const auto key = detail::socket_key(instance, proto, *match);
        // The pool gets a duplicate: the inherited descriptor itself stays
        // open for the life of the process, whatever a reload does.
        const bool stream = proto != "udp";
        if (stream) pool.tcps.emplace(key, BoundSockets::Tcp{::dup(s.fd), bound});
        else pool.udps.emplace(key, BoundSockets::Udp{::dup(s.fd), udp::endpoint(bound.address(), bound.port())});
        (stream ? inherited_tcp : inherited_udp)[match->to_string()] = {s.fd, bound};
        COSERVE_LOG(Severity::info, instance, "") << proto << " " << log::format_endpoint(bound)
                                                  << ": from the service manager (" << s.name << ")";
    }
}

void Server::Impl::bind_all() {
    BoundSockets pool;
    adopt_inherited(pool);
    for (const auto& ic : config.instances) {
        if (!ic.options.enabled) continue;
        for (const auto& l : detail::listeners(ic.options, true))
            if (!pool.tcps.contains(detail::socket_key(ic.name, l.kind, l.endpoint)))
                pool.bind_tcp(*ioc, ic.name, l.kind, l.endpoint);
        for (const auto& e : ic.options.udp)
            if (!pool.udps.contains(detail::socket_key(ic.name, "udp", e))) pool.bind_udp(*ioc, ic.name, e);
    }
    for (const auto& ic : config.instances)
        if (ic.options.enabled) instances.push_back(assemble(ic, pool));
    refresh_udp_ports();
    if (!config.metrics.http.empty() || !config.metrics.https.empty()) {
        const auto ic = detail::metrics_instance_config(config.metrics, metrics_source);
        BoundSockets metrics_pool;
        for (const auto& l : detail::listeners(ic.options, true)) metrics_pool.bind_tcp(*ioc, ic.name, l.kind, l.endpoint);
        metrics_endpoint = assemble(ic, metrics_pool);
    }
}

}  // namespace coserve
