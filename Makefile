# The two commands: `make run` and `make test`. Everything else is CMake.
# Quiet: a line per step, a failing step's output in full; V=1 shows everything.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
RELEASE_DIR := build/release
TEST_DIR := build/asan
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
PREFIX ?= /usr/local
V ?= 0
export V
STEP := @scripts/step.sh

.PHONY: all deps deps-run build run test deb install fuzz soak clean format bench

all: build

# What building and running need (`make run`, `make deb`, `make install`); the tests' tools come
# with `make test`.
deps-run:
	@scripts/install-deps.sh run

deps:
	@scripts/install-deps.sh test

# The Release build: `make run`, `make bench` (bench/run.sh configures it the same way), `make deb`,
# `make install` and the second integration run of `make test`.
RELEASE_CONF := -DCMAKE_BUILD_TYPE=Release -DPORTER_TESTS=OFF

build: deps-run
	$(STEP) "configure $(RELEASE_DIR)" cmake -S . -B $(RELEASE_DIR) $(RELEASE_CONF)
	$(STEP) "build $(RELEASE_DIR)" cmake --build $(RELEASE_DIR) -j $(JOBS)

run: build
	@scripts/make-cert.sh conf/tls
	@echo "porter: serving htdocs/ at http://127.0.0.1:8080 and https://127.0.0.1:8443 (Ctrl-C stops)"
	@exec $(RELEASE_DIR)/porter -c conf/porter.conf

# The Debian package of the Release build: binary, library, headers, pkg-config and CMake files,
# manual pages, systemd unit, logrotate, /etc/porter/porter.conf (cmake/package.cmake).
deb: build
	$(STEP) "package build/deb" cpack --config $(RELEASE_DIR)/CPackConfig.cmake -G DEB -B build/deb
	@echo "make deb: $$(ls build/deb/porter_*.deb)"

# Into PREFIX (/usr/local; with PREFIX=/usr the conf goes to /etc/porter, the web root to
# /var/www/porter); DESTDIR stages it elsewhere.
install: build
	$(STEP) "install into $(DESTDIR)$(PREFIX)" cmake --install $(RELEASE_DIR) --prefix $(PREFIX)

# Every test under ASan and UBSan, every test option on (an option left off in the cache must not
# turn a group of tests into none), then the integration tests once more against the Release
# porter that `make run` and `make bench` use: same tests, PORTER_TEST_BIN names the binary.
test: deps
	$(STEP) "configure $(TEST_DIR)" cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug \
	    -DPORTER_SANITIZE=ON -DPORTER_WERROR=ON -DPORTER_TESTS=ON -DPORTER_EXAMPLES=ON \
	    -DPORTER_FUZZ_TESTS=ON
	$(STEP) "build $(TEST_DIR)" cmake --build $(TEST_DIR) -j $(JOBS)
	@cd $(TEST_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure --no-tests=error --timeout 300 -j $(JOBS)
	$(STEP) "configure $(RELEASE_DIR)" cmake -S . -B $(RELEASE_DIR) $(RELEASE_CONF)
	$(STEP) "build $(RELEASE_DIR) (porter)" cmake --build $(RELEASE_DIR) -j $(JOBS) --target porter
	@echo "make test: the integration tests again, against $(RELEASE_DIR)/porter (Release)"
	@cd $(TEST_DIR) && PORTER_TEST_BIN=$(CURDIR)/$(RELEASE_DIR)/porter \
	    ctest --output-on-failure --no-tests=error --timeout 300 -j $(JOBS) -L integration

# Each fuzz target for FUZZ_SECONDS, one after the other; what they find stays in
# build/fuzz/work/TARGET/ (new inputs, and crash-* files to replay). docs/fuzzing.md.
fuzz: deps
	$(STEP) "configure $(FUZZ_DIR)" cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang \
	    -DCMAKE_BUILD_TYPE=Debug -DPORTER_FUZZ=ON -DPORTER_WERROR=ON -DPORTER_EXAMPLES=OFF
	$(STEP) "build $(FUZZ_DIR)" cmake --build $(FUZZ_DIR) -j $(JOBS)
	@failed=; for t in $(FUZZ_TARGETS); do \
	    sh tests/fuzz/run.sh $(FUZZ_DIR)/tests/fuzz/$$t tests/fuzz $(FUZZ_DIR)/work/$$t \
	        $(FUZZ_SECONDS) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi

# SOAK_MINUTES of mixed load with reloads, a worker kill, a backend restart and a log reopen
# against the Release porter (tests/soak/soak.py, docs/operations.md); not part of `make test`,
# which runs a 20-second version.
SOAK_MINUTES ?= 5
soak: build
	@PORTER_BIN=$(CURDIR)/$(RELEASE_DIR)/porter python3 tests/soak/soak.py --minutes $(SOAK_MINUTES)

bench:
	@bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
