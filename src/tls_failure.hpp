// Internal: why a TLS handshake failed, as counted in /metrics (tls.cpp).
#pragma once

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <string_view>

namespace coserve::detail {

enum class TlsFailure { timeout, plaintext, version, no_client_cert, bad_client_cert, cipher, peer_alert, closed, other };
inline constexpr std::size_t tls_failure_count = 9;
std::string_view tls_failure_name(TlsFailure f) noexcept;
TlsFailure classify_tls_failure(const boost::system::error_code& ec) noexcept;

}  // namespace coserve::detail
