// Plugins that a host must refuse, one per BAD_* definition (tests/CMakeLists.txt
// builds each as its own module); with none defined, a good one ("probe").
#include <coserve/plugin.hpp>

#include <memory>
#include <stdexcept>

namespace {

#if defined(BAD_UNDEFINED)
extern "C" void coserve_test_no_such_function();  // defined nowhere: dlopen(RTLD_NOW) fails
#endif

struct Oops {};  // an exception type that lives in the plugin

std::unique_ptr<coserve::Service> make(coserve::Section&, const coserve::InstanceOptions&) {
#if defined(BAD_UNDEFINED)
    coserve_test_no_such_function();
#elif defined(BAD_FACTORY_THROWS)
    throw std::invalid_argument("stoi");
#endif
    return std::make_unique<coserve::Service>();
}

#if defined(BAD_BUILTIN)
[[maybe_unused]] const coserve::ServiceType type{"echo", make};
#elif defined(BAD_NO_SIDE)
[[maybe_unused]] const coserve::ServiceType type{"probe", make, false, false};
#elif defined(BAD_NAME)
[[maybe_unused]] const coserve::ServiceType type{"pro be", make};
#else
[[maybe_unused]] const coserve::ServiceType type{"probe", make};
#endif

[[maybe_unused]] const coserve_plugin_descriptor* descriptor(std::uint32_t magic, std::uint32_t api,
                                                             std::uint32_t boost, std::uint32_t flags,
                                                             const coserve::ServiceType* t) {
    static coserve_plugin_descriptor d{};
    d = {magic, api, boost, flags, COSERVE_VERSION_STRING, t ? t->name.data() : "probe", t};
    return &d;
}

}  // namespace

#define ENTRY extern "C" __attribute__((visibility("default"))) const coserve_plugin_descriptor* coserve_plugin_entry()
#if defined(BAD_NO_ENTRY)
extern "C" __attribute__((visibility("default"))) int coserve_something_else() { return 0; }
#elif defined(BAD_NULL)
ENTRY { return nullptr; }
#elif defined(BAD_MAGIC)
ENTRY { return descriptor(0x7f454c46, COSERVE_PLUGIN_API_VERSION, BOOST_VERSION, COSERVE_PLUGIN_ABI_FLAGS, &type); }
#elif defined(BAD_API)
ENTRY { return descriptor(COSERVE_PLUGIN_MAGIC, COSERVE_PLUGIN_API_VERSION + 1, BOOST_VERSION, COSERVE_PLUGIN_ABI_FLAGS, &type); }
#elif defined(BAD_BOOST)
ENTRY { return descriptor(COSERVE_PLUGIN_MAGIC, COSERVE_PLUGIN_API_VERSION, 107400, COSERVE_PLUGIN_ABI_FLAGS, &type); }
#elif defined(BAD_FLAGS)
ENTRY { return descriptor(COSERVE_PLUGIN_MAGIC, COSERVE_PLUGIN_API_VERSION, BOOST_VERSION, COSERVE_PLUGIN_ABI_FLAGS ^ 1u, &type); }
#elif defined(BAD_THROWS)
ENTRY { throw Oops{}; }
#elif defined(BAD_MALFORMED)
ENTRY { return descriptor(COSERVE_PLUGIN_MAGIC, COSERVE_PLUGIN_API_VERSION, BOOST_VERSION, COSERVE_PLUGIN_ABI_FLAGS, nullptr); }
#else
COSERVE_PLUGIN(type)
#endif
