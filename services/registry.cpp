// The built-in service types, from services.def.
#include <coserve/service.hpp>

#include <array>

namespace coserve::services {
#define COSERVE_SERVICE(name) extern const ServiceType name##_service;
#include "services.def"
#undef COSERVE_SERVICE
}  // namespace coserve::services

namespace coserve {
namespace {
#define COSERVE_SERVICE(name) &services::name##_service,
constexpr std::array builtin{
#include "services.def"
};
#undef COSERVE_SERVICE
}  // namespace

std::span<const ServiceType* const> service_types() {
    return builtin;
}

const ServiceType* find_service_type(std::string_view name) {
    for (const auto* t : builtin)
        if (t->name == name) return t;
    return nullptr;
}

}  // namespace coserve
