// The service types: the built-in ones, from services.def, and those a
// program embedding the server registers.
#include <coserve/service.hpp>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

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

// The built-in types, then those registered by the program (register_service).
std::vector<const ServiceType*>& registry() {
    static std::vector<const ServiceType*> types(builtin.begin(), builtin.end());
    return types;
}
}  // namespace

std::span<const ServiceType* const> service_types() {
    return registry();
}

const ServiceType* find_service_type(std::string_view name) {
    for (const auto* t : registry())
        if (t->name == name) return t;
    return nullptr;
}

void register_service(const ServiceType& type) {
    if (type.name.empty() || !type.create) throw std::invalid_argument("register_service: a service type needs a name and a factory");
    if (find_service_type(type.name))
        throw std::invalid_argument("register_service: a service type named " + std::string(type.name) + " exists already");
    registry().push_back(&type);
}

}  // namespace coserve
