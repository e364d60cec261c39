#include "tls.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace coserve {

namespace asio = boost::asio;

namespace {

using Error = TlsContext::Error;

// OpenSSL's reason for the last failure, and the error queue emptied.
std::string openssl_reason() {
    const unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    const char* reason = ERR_reason_error_string(e);
    return reason ? reason : "OpenSSL error " + std::to_string(e);
}

// A file we can open, with its first bytes; the message names the key and the file.
std::string readable_file(const std::string& key, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(key, path + ": cannot read: " + std::strerror(errno));
    std::string head(4096, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    return head;
}

void require_pem(const std::string& key, const std::string& path, std::string_view what) {
    if (readable_file(key, path).find("-----BEGIN ") == std::string::npos)
        throw Error(key, path + ": not PEM (expected " + std::string(what) + " between -----BEGIN and -----END lines)");
}

void check_key_mode(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) throw Error("tls_key", path + ": cannot read: " + std::strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error("tls_key", path + ": permissions " + mode +
                                   " let group or others read or change the private key; chmod 600 it");
    }
}

std::string name_text(X509_NAME* name) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (!bio) return {};
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(bio);
    return out;
}

}  // namespace

TlsContext::TlsContext(const TlsSettings& settings) : context_(asio::ssl::context::tls_server), settings_(settings) {}

std::shared_ptr<const TlsContext> TlsContext::load(const TlsSettings& s) {
    ERR_clear_error();
    std::shared_ptr<TlsContext> t(new TlsContext(s));
    SSL_CTX* ctx = t->context_.native_handle();
    if (s.cert.empty()) throw Error("tls_cert", "is needed for TLS (a PEM file: the certificate, then its chain)");
    if (s.key.empty()) throw Error("tls_key", "is needed for TLS (a PEM file with the certificate's private key)");
    require_pem("tls_cert", s.cert, "a certificate");
    if (SSL_CTX_use_certificate_chain_file(ctx, s.cert.c_str()) != 1)
        throw Error("tls_cert", s.cert + ": no usable certificate: " + openssl_reason());
    check_key_mode(s.key);
    require_pem("tls_key", s.key, "a private key");
    if (SSL_CTX_use_PrivateKey_file(ctx, s.key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw Error("tls_key", s.key + ": no usable private key: " + openssl_reason());
    if (SSL_CTX_check_private_key(ctx) != 1)
        throw Error("tls_key", s.key + ": does not match the certificate in " + s.cert + " (" + openssl_reason() + ")");
    const int version = s.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, version);
    // A client that closes TCP without close_notify (ncat, many line
    // clients) ends its stream as a FIN does, and we can still send ours.
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // an idle connection holds no record buffers
    SSL_CTX_set_num_tickets(ctx, 1);
    if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, s.ciphers.c_str()) != 1)
        throw Error("tls_ciphers", "no cipher in " + s.ciphers + " is usable (" + openssl_reason() + ")");
    if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()) != 1)
        throw Error("tls_ciphersuites", "no TLS 1.3 cipher suite in " + s.ciphersuites + " is usable (" + openssl_reason() + ")");
    static const unsigned char session_context[] = "coserve";
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
    if (s.client_auth != TlsSettings::ClientAuth::none) {
        if (s.client_ca.empty()) throw Error("tls_client_ca", "is needed by tls_client_auth (the CAs client certificates come from)");
        require_pem("tls_client_ca", s.client_ca, "CA certificates");
        if (SSL_CTX_load_verify_locations(ctx, s.client_ca.c_str(), nullptr) != 1)
            throw Error("tls_client_ca", s.client_ca + ": no usable CA certificate: " + openssl_reason());
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca.c_str());
        if (!names) throw Error("tls_client_ca", s.client_ca + ": no usable CA certificate: " + openssl_reason());
        SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (s.client_auth == TlsSettings::ClientAuth::require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, nullptr);
    } else if (!s.client_ca.empty()) {
        throw Error("tls_client_ca", "is used only with tls_client_auth = optional or require");
    }
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) throw Error("tls_cert", s.cert + ": no certificate");
    t->subject_ = name_text(X509_get_subject_name(cert));
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) throw Error("tls_cert", s.cert + ": unreadable expiry date");
    t->not_after_ = timegm(&tm);
    ERR_clear_error();
    return t;
}

std::string TlsContext::describe() const {
    return "subject " + subject_ + ", expires " + detail::format_utc(not_after_);
}

std::string TlsContext::expiry_warning(std::time_t now) const {
    constexpr std::time_t day = 24 * 60 * 60;
    if (not_after_ <= now) return settings_.cert + ": the certificate expired on " + detail::format_utc(not_after_);
    if (not_after_ - now <= 14 * day)
        return settings_.cert + ": the certificate expires on " + detail::format_utc(not_after_) + " (in " +
               std::to_string((not_after_ - now + day - 1) / day) + " days)";
    return {};
}

namespace detail {

std::string format_utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string verified_peer_subject(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return {};
    return name_text(X509_get_subject_name(cert));
}

std::string_view tls_failure_name(TlsFailure f) noexcept {
    switch (f) {
        case TlsFailure::timeout: return "timeout";
        case TlsFailure::plaintext: return "plaintext";
        case TlsFailure::version: return "version";
        case TlsFailure::no_client_cert: return "no_client_certificate";
        case TlsFailure::bad_client_cert: return "bad_client_certificate";
        case TlsFailure::cipher: return "no_shared_cipher";
        case TlsFailure::peer_alert: return "peer_alert";
        case TlsFailure::closed: return "closed";
        case TlsFailure::other: break;
    }
    return "other";
}

TlsFailure classify_tls_failure(const boost::system::error_code& ec) noexcept {
    if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe)
        return TlsFailure::closed;
    if (ec.category() != asio::error::get_ssl_category()) return TlsFailure::other;
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    switch (reason) {
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_UNKNOWN_PROTOCOL:
            return TlsFailure::plaintext;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
            return TlsFailure::version;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return TlsFailure::no_client_cert;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return TlsFailure::bad_client_cert;
        case SSL_R_NO_SHARED_CIPHER:
            return TlsFailure::cipher;
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return TlsFailure::closed;
        default:
            break;
    }
    // Alerts the client sent (it refused our certificate, say): 1000 + the alert number.
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) return TlsFailure::peer_alert;
    return TlsFailure::other;
}

}  // namespace detail

}  // namespace coserve
