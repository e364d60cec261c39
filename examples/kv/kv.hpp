// A key-value store over lines: SET KEY VALUE, GET KEY, DEL KEY, STATS, over
// TCP and UDP. One store per instance, shared by its connections and
// datagrams; `max_keys` and `max_value` bound it.
#pragma once

#include <coserve/service.hpp>

#include <string>
#include <string_view>

namespace kv {

extern const coserve::ServiceType service;  // "kv"

// The reply to one request line, as the service sends it (without CRLF);
// `store` is the instance's service (for tests: make_store).
std::string answer(coserve::Service& store, std::string_view line);
std::unique_ptr<coserve::Service> make_store(std::size_t max_keys, std::size_t max_value,
                                             std::size_t max_line = 8192);

}  // namespace kv
