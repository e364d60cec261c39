// The built-in services: one line each in services.def; their files are
// services/NAME.cpp (chat: services/chat/).
#include <coserve/services.hpp>
#include <coserve/service.hpp>

#include <mutex>

namespace coserve::services {

#define COSERVE_SERVICE(id) extern const ServiceType id##_service;
#include "services.def"
#undef COSERVE_SERVICE

void register_builtin() {
    static std::once_flag once;
    std::call_once(once, [] {
#define COSERVE_SERVICE(id) \
    if (!find_service_type(id##_service.name)) register_service(id##_service);
#include "services.def"
#undef COSERVE_SERVICE
    });
}

}  // namespace coserve::services
