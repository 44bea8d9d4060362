# libFuzzer harnesses (test/fuzz/fuzz_<target>.c), built with clang into build-fuzz/.
# Included at the end of the Makefile: PKGS, LIB_SRC and LDLIBS come from there.
#
#   make fuzz          runs every harness FUZZ_SECONDS (default 60) and prints, per target,
#                      executions, exec/s, corpus size and crashes; fails if one crashed
#   make fuzz-check    the same with FUZZ_SECONDS default 15: the short pass for `make check`
#                      (about 1 minute on 2 cores, harnesses run FUZZ_JOBS at a time)
#   make fuzz-build    only builds build-fuzz/fuzz_<target>
#   make fuzz-clean    removes build-fuzz/ (its work corpora and crash artifacts too)
#   FUZZ_TARGETS="config template" make fuzz   runs only those
#
# Seeds are read from test/fuzz/corpus/<target>/ (committed, never written during a run); what
# libFuzzer finds goes to build-fuzz/corpus/<target>/, crashes to build-fuzz/artifacts/<target>/,
# logs to build-fuzz/logs/<target>.log. Replay one input: build-fuzz/fuzz_<target> FILE.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_ALL     := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)
# The project sources the harnesses exercise, instrumented for coverage (from LIB_SRC, so a
# file another engineer is still writing never breaks this build).
FUZZ_SRC     := $(filter proto/%.c daemon/config.c daemon/config_metrics.c daemon/config_triggers.c \
                         daemon/log.c \
                         daemon/spool.c daemon/json_msgpack.c workers/template.c \
                         workers/worker_event.c workers/name_template.c workers/graphite_name.c \
                         workers/graphite_rollup.c,$(LIB_SRC))
FUZZ_OBJ     := $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libeventsd-fuzz.a
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# pkg-config runs once, and only when a fuzz target is built
FUZZ_PKG_CFLAGS = $(eval FUZZ_PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(FUZZ_PKG_CFLAGS)
FUZZ_CFLAGS   = -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iproto -Idaemon -Iworkers \
                -Itest/fuzz $(FUZZ_PKG_CFLAGS)

.PHONY: fuzz fuzz-check fuzz-build fuzz-deps fuzz-clean

fuzz-deps:
	@test/install-deps.sh clang libclang-rt-14-dev

# build-fuzz/.gitignore keeps the build products out of `git status`
$(FUZZ_BUILD)/.gitignore:
	@mkdir -p $(@D)
	@echo '*' > $@

$(FUZZ_BUILD)/%.o: %.c | fuzz-deps $(FUZZ_BUILD)/.gitignore
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_LIB) | fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DSRC_DIR='"$(CURDIR)"' -fsanitize=fuzzer $(FUZZ_SAN) -MMD -MP \
	    -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	test/fuzz.sh -b $(FUZZ_BUILD) -t $(or $(FUZZ_SECONDS),60) $(FUZZ_TARGETS)

fuzz-check: fuzz-build
	test/fuzz.sh -b $(FUZZ_BUILD) -t $(or $(FUZZ_SECONDS),15) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BINS:=.d)
