# Thin wrapper over CMake presets. `make run` and `make test` install what is
# missing first (scripts/install-deps).
.PHONY: all deps build run test deb clean

all: build

deps:
	@scripts/install-deps

build: deps
	cmake --preset release
	cmake --build --preset release

run: build
	./build/release/coserved --config config/coserved.ini

test: deps
	cmake --preset debug
	cmake --build --preset debug
	ctest --preset debug

# build/release/coserved_<version>_amd64.deb
deb: build
	cd build/release && cpack -G DEB

clean:
	rm -rf build
