# `make valgrind`: every unit test and a representative set of integration tests (eventsd, its
# workers and eventsd-pub) under valgrind memcheck; fails on memory errors and on definite or
# indirect leaks. test/valgrind.sh says what runs and why; test/valgrind.supp holds the only
# suppressions (third-party one-time state). About 5-6 minutes on 2 cores.
# The Makefile includes this file (-include test/valgrind.mk); standalone:
#   make -f Makefile -f test/valgrind.mk valgrind
.PHONY: valgrind valgrind-deps

valgrind-deps: db-deps
	test/install-deps.sh valgrind

valgrind: valgrind-deps
	$(MAKE) all $(TESTS)
	test/with-servers.sh test/valgrind.sh $(BUILD)
