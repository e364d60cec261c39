# Thin wrapper over CMake presets. `make run` and `make test` install what is
# missing first (scripts/install-deps).
.PHONY: all deps build run check test test-deploy tsan fuzz bench deb clean

FUZZ_SECONDS ?= 300

all: build

deps:
	@scripts/install-deps

build: deps
	cmake --preset release
	cmake --build --preset release

run: build
	./build/release/coserved --config config/coserved.ini

# The fast tier for the edit-build-test loop (about two minutes): the unit
# tests (no sockets) and the integration tests (in-process servers on
# loopback) on the ASan+UBSan Debug build. `make test` is the whole suite.
check: deps
	cmake --preset debug
	cmake --build --preset debug
	ctest --preset debug -L 'unit|integration'

# The suite: first the .deb, built by debhelper (a packager's plain CMake
# build: no presets, Debian's flags, warnings not errors), so that it cannot
# break unnoticed; then unit, integration and end-to-end tests on the
# ASan+UBSan Debug build; the deployment paths (test-deploy below); the
# Release library installed into a scratch prefix and used from outside the
# tree (CMake package, pkg-config; the examples built, tested and run against
# it, also as plugins in coserved); the Release daemon (GCC's optimizer finds
# warnings, errors here, that Debug does not) under valgrind memcheck end to
# end, a 60 s soak, and a few seconds of the benchmark suite (built and run,
# not judged); the suite again under ThreadSanitizer with 4 event-loop
# threads; every fuzz target for 30 s.
test: deps
	@rm -f build/stages.txt
	scripts/stage deb $(MAKE) --no-print-directory deb
	scripts/stage debug-build sh -c 'cmake --preset debug && cmake --build --preset debug'
	scripts/stage debug-suite ctest --preset debug
	scripts/stage deploy $(MAKE) --no-print-directory test-deploy
	scripts/stage release sh -c 'cmake --preset release && cmake --build --preset release --target coserved coserve \
	  coserve_shared coserve_services coserve_services_shared coserve-soak coserve-bench epoll_echo'
	scripts/stage install tests/e2e_install.sh build/release
	scripts/stage valgrind tests/e2e_valgrind.sh build/release/coserved
	scripts/stage soak scripts/soak 60
	scripts/stage bench scripts/bench --quick --servers c-epoll,coserved
	scripts/stage tsan $(MAKE) --no-print-directory tsan
	scripts/stage fuzz $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

# Where users run it (needs root, as CI has): the .deb checked by lintian and
# unpacked; the .deb installed with apt in Debian 12 booted under systemd
# (systemd-nspawn); the image built from docker/Dockerfile by buildah and run;
# the compose files checked. Needs `make deb` and the debug build first.
test-deploy: deps
	tests/e2e_package.sh "$$(ls build/deb/coserved_*.deb)" build/debug
	tests/e2e_systemd.sh "$$(ls build/deb/coserved_*.deb)" || [ $$? -eq 77 ]
	tests/e2e_image.sh || [ $$? -eq 77 ]

# The whole suite again under ThreadSanitizer, every in-process server on 4 threads.
tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan
	ctest --preset tsan
	COSERVE_TEST_THREAD_MODEL=per-thread ctest --preset tsan -L 'unit|integration'

# Every libFuzzer target for FUZZ_SECONDS (clang; see fuzz/CMakeLists.txt).
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz
	scripts/fuzz $(FUZZ_SECONDS)

# The full comparison with the peers (about 15 minutes; see docs/benchmarks.md).
bench:
	@scripts/install-deps --bench
	cmake --preset release
	cmake --build --preset release
	cmake --build --preset release --target asio-floor
	scripts/bench

# build/deb/coserved_<version>_<arch>.deb, by debhelper (scripts/build-deb, debian/)
deb: deps
	scripts/build-deb

clean:
	rm -rf build
