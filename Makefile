# Makefile for the clinical extension (PGXS).
#
#   make            build clinical.so and the install script
#   make install    install into the server that pg_config names
#   make test       install missing packages, build with -Werror, install, and run
#                   every test (pg_regress, pgTAP, integration) in a throwaway cluster
#   make demo       the same installation path, then a narrated tour
#   make bench      benchmarks, each against its peer (see docs/benchmarks.md)

EXTENSION   = clinical
# One version source: the control file.
EXTVERSION := $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" clinical.control)

MODULE_big  = clinical
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from one SQL file per
# part under src/sql/ (in file-name order). Upgrade scripts of released versions
# live in src/sql/upgrade/ and are shipped as they are.
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
DATA_built  = clinical--$(EXTVERSION).sql
DATA        = $(sort $(wildcard src/sql/upgrade/clinical--*--*.sql))

REGRESS     = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=.

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -Isrc -DCLINICAL_VERSION='"$(EXTVERSION)"'
PG_CFLAGS   = -std=gnu99 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
ifeq ($(WERROR),1)
PG_CFLAGS  += -Werror
endif
SHLIB_LINK  = -lhiredis -lcrypto

EXTRA_CLEAN = clinical--$(EXTVERSION).sql results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the version is compiled in: rebuild what uses it when the control file changes
src/version.o: clinical.control

clinical--$(EXTVERSION).sql: $(SQL_PARTS) clinical.control
	cat $(SQL_PARTS) > $@

.PHONY: test demo bench deps

# Packages the build, the tests and the demo need (Debian 12).
deps:
	@bash test/deps.sh

test:
	@bash test/run.sh

demo:
	@bash test/demo.sh

bench:
	@bash bench/run.sh $(BENCH)
