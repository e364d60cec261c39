// Internal: TLS with OpenSSL through Asio's ssl::context: loading and
// checking the certificate, key and CA files, and naming why a handshake failed.
#pragma once

#include <coserve/config.hpp>

#include "tls_failure.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coserve {

// Loaded once, read by any thread; sessions hold a reference to the context
// they began with, so a reload that loads a new one does not touch them.
class TlsContext {
public:
    // What went wrong, and with which key (tls_cert, tls_key, ...).
    struct Error : std::runtime_error {
        Error(std::string key, const std::string& message) : std::runtime_error(message), key(std::move(key)) {}
        std::string key;
    };
    // Reads and checks the files. Throws Error.
    static std::shared_ptr<const TlsContext> load(const TlsSettings& settings);

    boost::asio::ssl::context& context() const { return context_; }
    const TlsSettings& settings() const noexcept { return settings_; }
    const std::string& subject() const noexcept { return subject_; }  // of the certificate, RFC 2253
    std::time_t not_after() const noexcept { return not_after_; }
    // "subject CN=x, expires 2027-03-01 12:00:00 UTC"
    std::string describe() const;
    // Empty, or the warning for a certificate that expired or expires within 14 days.
    std::string expiry_warning(std::time_t now) const;

private:
    explicit TlsContext(const TlsSettings& settings);
    mutable boost::asio::ssl::context context_;  // OpenSSL's SSL_CTX is thread-safe once set up
    TlsSettings settings_;
    std::string subject_;
    std::time_t not_after_ = 0;
};

namespace detail {

std::string format_utc(std::time_t t);  // "2027-03-01 12:00:00 UTC"
// The subject (RFC 2253) of the peer's certificate if it sent one and it was verified; else empty.
std::string verified_peer_subject(SSL* ssl);

}  // namespace detail

}  // namespace coserve
