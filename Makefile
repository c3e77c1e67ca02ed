# tern — top-level build.
#
# Sources are discovered, not listed: every lib/**/*.cpp goes into libtern.a,
# every daemon folder with a main.cpp becomes build/<folder>, every
# tests/unit/**/*.cpp goes into build/unit-tests, every tests/fuzz/*.cpp
# becomes a standalone fuzz runner.  Adding a file never needs a Makefile edit.
#
#   make                 build everything into build/
#   make check           unit + fuzz smoke + end-to-end tests; last line "N passed, N failed"
#   make check SANITIZE=1  the same, built with ASan + UBSan into build-asan/
#   make run / stop      run the whole stack from the checkout (run/, loopback high ports)
#   make install         DESTDIR=, PREFIX= (FHS layout), UNITDIR= (systemd unit directory)
#   make deb             Debian package into build-deb/pkg/ (dpkg-buildpackage), checked by lintian
#   make clean

SHELL := /bin/bash
CXX ?= g++
ifeq ($(origin CXX),default)
CXX := g++
endif

ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# GCC 12 reports false -Wmaybe-uninitialized inside <regex> and <variant> under ASan.
SAN_WARN := -Wno-maybe-uninitialized
else
BUILD ?= build
SAN_FLAGS :=
SAN_WARN :=
endif

CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror -pthread $(SAN_FLAGS) $(SAN_WARN)
CPPFLAGS += -I. -MMD -MP
# Full RELRO, as the Debian package links (debian/rules: hardening=+all):
# the symbol table is resolved at start and read-only after, and no
# request pays a lazy symbol lookup.
LDFLAGS += -Wl,-z,relro,-z,now -pthread $(SAN_FLAGS)
LDLIBS := -levent_openssl -levent_pthreads -levent -lssl -lcrypto -llmdb -lldns -lcrypt -lz

DEPS_STAMP := $(BUILD)/.deps-installed

LIB_SRCS := $(shell find lib -name '*.cpp' 2>/dev/null | sort)
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)
LIBTERN := $(BUILD)/libtern.a

DAEMON_DIRS := $(sort $(patsubst %/main.cpp,%,$(wildcard */main.cpp)))
PROGRAMS := $(DAEMON_DIRS:%=$(BUILD)/%)

UNIT_SRCS := $(shell find tests/unit -name '*.cpp' 2>/dev/null | sort)
UNIT_OBJS := $(UNIT_SRCS:%.cpp=$(BUILD)/obj/%.o)
UNIT_BIN := $(BUILD)/unit-tests

FUZZ_SRCS := $(filter-out tests/fuzz/standalone_main.cpp,$(wildcard tests/fuzz/*.cpp))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.cpp=$(BUILD)/fuzz/%)

PREFIX ?= /usr
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var

.PHONY: all programs deps check unit-check run stop install deb clean
.SECONDARY:
all: $(PROGRAMS) $(UNIT_BIN) $(FUZZ_BINS)
programs: $(PROGRAMS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps
	@scripts/install-deps
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(LIBTERN): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# One rule per daemon folder: its objects + libtern.a.
define program_rule
$(BUILD)/$(1): $(patsubst %.cpp,$(BUILD)/obj/%.o,$(wildcard $(1)/*.cpp)) $(LIBTERN)
	$$(CXX) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach d,$(DAEMON_DIRS),$(eval $(call program_rule,$(d))))

$(UNIT_BIN): $(UNIT_OBJS) $(LIBTERN)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/standalone_main.o $(LIBTERN)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check: all
	@BUILD=$(BUILD) python3 tests/run

run: all
	@scripts/dev-run start $(BUILD)

stop:
	@scripts/dev-run stop $(BUILD)

install: programs
	scripts/install-tree "$(DESTDIR)" "$(PREFIX)" "$(SYSCONFDIR)" "$(LOCALSTATEDIR)" "$(BUILD)" $(UNITDIR)

# The Debian package (debian/; programs built with dpkg-buildflags into
# build-deb/): build-deb/pkg/tern_VERSION_ARCH.deb, then lintian.
DEB_VERSION = $(shell dpkg-parsechangelog -S Version 2>/dev/null)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
deb: $(DEPS_STAMP)
	@TERN_PACKAGING=1 scripts/install-deps
	@mkdir -p build-deb/pkg
	dpkg-buildpackage -b -us -uc -J2 \
	    --buildinfo-file=build-deb/pkg/tern_$(DEB_VERSION)_$(DEB_ARCH).buildinfo \
	    --changes-file=build-deb/pkg/tern_$(DEB_VERSION)_$(DEB_ARCH).changes \
	    --buildinfo-option=-ubuild-deb/pkg --changes-option=-ubuild-deb/pkg
	lintian --fail-on error build-deb/pkg/tern_$(DEB_VERSION)_$(DEB_ARCH).deb

clean:
	rm -rf build build-asan build-deb

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
