// The INI loader: any text either loads or throws ConfigError (nothing else),
// and the effective keys it reports (as --check-config prints them), written
// back as INI, load to the same effective keys. Inputs naming a plugin are
// skipped.
#include "check.hpp"

#include <coserve/config.hpp>
#include <coserve/services.hpp>

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    coserve::services::register_builtin();  // sections name the built-in services
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // `plugin = PATH` would dlopen() whatever file the input names; plugin
    // loading has its own tests (tests/test_plugins.cpp).
    if (text.find("plugin") != std::string_view::npos) return 0;
    coserve::Config config;
    try {
        config = coserve::load_config_text(text, "fuzz.ini");
    } catch (const coserve::ConfigError&) {
        return 0;
    }
    std::string again;
    for (const auto& inst : config.instances) {
        again += "[" + inst.name + "]\nservice = " + inst.service_type + "\n";
        for (const auto& [key, value] : inst.effective)
            if (value != "(none)") again += key + " = " + value + "\n";  // an empty list is shown as (none)
    }
    coserve::Config reloaded;
    try {
        reloaded = coserve::load_config_text(again, "fuzz.ini");
    } catch (const coserve::ConfigError& e) {
        std::fprintf(stderr, "the effective keys do not load again: %s\n%s", e.what(), again.c_str());
        std::abort();
    }
    FUZZ_CHECK(reloaded.instances.size() == config.instances.size());
    for (std::size_t i = 0; i < config.instances.size(); ++i) {
        FUZZ_CHECK(reloaded.instances[i].name == config.instances[i].name);
        FUZZ_CHECK(reloaded.instances[i].effective == config.instances[i].effective);
    }
    return 0;
}
