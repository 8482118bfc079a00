# tlsgate — the README's commands. CMake does the building; this file is the front door.
BUILD   ?= build
ASAN    ?= build-asan
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
HOME_DIR ?= $(CURDIR)/var
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)

.PHONY: all bootstrap build run test unit asan bench format clean valgrind install

all: build

bootstrap:
	@sh scripts/bootstrap.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The binary, the systemd unit, the configuration file (kept when there is one) and the man
# pages, through CMake's install rules (the Debian package, debian/rules, uses the same).
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

# The main job on the embedded default store (var/ in this checkout unless TLSGATE_HOME is set).
run: build
	@TLSGATE_HOME=$${TLSGATE_HOME:-$(HOME_DIR)} sh scripts/run.sh $(BUILD)/tlsgate

test: build
	cd $(BUILD) && ctest $(CTEST_FLAGS)
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory valgrind
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

$(ASAN)/CMakeCache.txt:
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: bootstrap $(ASAN)/CMakeCache.txt
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

# Memory leaks of the command-line paths, checked by valgrind.
valgrind: build
	sh tests/leak/valgrind.sh $(BUILD)/tlsgate

bench: build
	sh bench/store.sh $(BUILD)/tlsgate

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c

clean:
	rm -rf $(BUILD) $(ASAN)
	rm -rf $(FUZZ_BUILD)

# Fuzz targets (tests/fuzz/README.md): libFuzzer + ASan + UBSan on the decoders, built with
# clang in $(FUZZ_BUILD); each runs FUZZ_SECONDS; any crash, leak or timeout fails.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 20
.PHONY: fuzz
fuzz: bootstrap
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_JOBS=$(JOBS) sh tests/fuzz/run.sh $(FUZZ_SECONDS)
