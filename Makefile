# Thin wrapper over CMake presets. `make run` and `make test` install what is
# missing first (scripts/install-deps).
.PHONY: all deps build run test tsan fuzz deb clean

FUZZ_SECONDS ?= 300

all: build

deps:
	@scripts/install-deps

build: deps
	cmake --preset release
	cmake --build --preset release

run: build
	./build/release/coserved --config config/coserved.ini

# The suite runs on the sanitized Debug build; the Release daemon is compiled
# too, because GCC's optimizer finds warnings (errors here) that Debug does not.
test: deps
	cmake --preset debug
	cmake --build --preset debug
	ctest --preset debug
	cmake --preset release
	cmake --build --preset release --target coserved

# The whole suite again under ThreadSanitizer, every in-process server on 4 threads.
tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan
	ctest --preset tsan

# Every libFuzzer target for FUZZ_SECONDS (clang; see fuzz/CMakeLists.txt).
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz
	scripts/fuzz $(FUZZ_SECONDS)

# build/release/coserved_<version>_amd64.deb
deb: build
	cd build/release && cpack -G DEB

clean:
	rm -rf build
