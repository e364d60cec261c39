// The service types a program knows: those it registered (the built-in
// ones through coserve::services::register_builtin(), its own through
// register_service(), plugins as coserved loads them).
#include <coserve/service.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace coserve {
namespace {

std::vector<const ServiceType*>& registry() {
    static std::vector<const ServiceType*> types;
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
