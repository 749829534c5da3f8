# The README's test command is `make test`: it builds what the tests need on a fresh
# machine (etcd servers, Debian's etcd 3.4, a Docker engine and image), checks the
# code (go vet, staticcheck) and runs every module's tests with -race.
#
# Without Docker: `make test DOCKER=0` runs the whole suite but the integration
# package's Docker backend (its tests run on the Local backend alone) and builds no
# image. CI runs the default, DOCKER=1.

# Versions are pinned in one place, which the Go tests read too.
include tools/versions.env

BIN := $(CURDIR)/.bin
ETCD_VERSIONS := $(ETCD_DEFAULT) $(ETCD_OTHERS)
ETCD_BINS := $(foreach v,$(ETCD_VERSIONS),$(BIN)/etcd-$(v)) $(BIN)/etcdctl-$(ETCD_DEFAULT)
# Modules whose tests run: the library at the root, then nested test modules.
TEST_MODULES := . interop integration faults bench
GO_TEST_FLAGS ?= -race -count=1
# Which etcd the suite uses by default, and which it is repeated against.
ETCD_MAIN := $(BIN)/etcd-$(ETCD_DEFAULT)
ETCD_REPEAT := /usr/bin/etcd $(foreach v,$(ETCD_OTHERS),$(BIN)/etcd-$(v))

# The integration package's Docker backend runs this image. The default is built
# here FROM scratch with the etcd above, since CI reaches no image registry; set
# ETCD_IMAGE=gcr.io/etcd-development/etcd:v$(ETCD_DEFAULT) to test the official one.
ETCD_IMAGE ?= etcdgw-local/etcd:v$(ETCD_DEFAULT)
# testcontainers' reaper image cannot be pulled on CI; Terminate cleans up anyway.
TEST_ENV := ETCD_BIN=$(ETCD_MAIN) ETCDGW_ETCD_IMAGE=$(ETCD_IMAGE) TESTCONTAINERS_RYUK_DISABLED=true \
	FAULTS_SUMMARY=$(BIN)/faults-summary.txt

DOCKER ?= 1
ifeq ($(DOCKER),0)
TEST_NEEDS := etcd
TEST_ENV += ETCDGW_BACKEND=local ETCDGW_TEST_BACKENDS=local
else
TEST_NEEDS := etcd etcd-image
endif

.PHONY: demo test check fmt release-check mutants mutants-apply fuzz etcd debs docker-engine etcd-image test-versions bench bench-micro soak vet staticcheck clean

etcd: $(ETCD_BINS) debs

$(BIN)/etcd-%: tools/etcd/v%/go.mod tools/etcd/v%/main.go
	@mkdir -p $(BIN)
	cd tools/etcd/v$* && CGO_ENABLED=0 go build -trimpath -o $@ .

# etcdctl for the interop tests (`etcdctl lock`, `etcdctl elect`).
$(BIN)/etcdctl-%: tools/etcdctl/v%/go.mod tools/etcdctl/v%/main.go
	@mkdir -p $(BIN)
	cd tools/etcdctl/v$* && CGO_ENABLED=0 go build -trimpath -o $@ .

# Debian's packages the tests need: etcd-server (etcd $(ETCD_DEBIAN); it starts
# nothing on install) and python3-etcd3gw (the Python client whose locks the
# interop tests meet), installed together when either is missing.
debs:
	@missing=""; \
	test -x /usr/bin/etcd || missing="$$missing etcd-server"; \
	/usr/bin/python3 -c 'import etcd3gw' 2>/dev/null || missing="$$missing python3-etcd3gw"; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null || { echo "need Debian's$$missing" >&2; exit 1; }; \
	  echo "== installing Debian's$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# A Docker engine: the one that answers, or (on CI) Debian's, started here.
docker-engine:
	@tools/docker/engine $(BIN)/dockerd.pid

etcd-image: $(ETCD_MAIN) docker-engine
	@case "$(ETCD_IMAGE)" in etcdgw-local/*) \
	  mkdir -p $(BIN)/image && cp $(ETCD_MAIN) $(BIN)/image/etcd && \
	  DOCKER_BUILDKIT=0 docker build -q -t $(ETCD_IMAGE) -f tools/docker/Dockerfile $(BIN)/image >/dev/null && \
	  echo "== built image $(ETCD_IMAGE)";; esac

test: check release-check $(TEST_NEEDS)
	@if [ "$(DOCKER)" = 0 ]; then echo "== DOCKER=0: the integration package's Docker backend is not tested"; fi
	@set -e; for m in $(TEST_MODULES); do \
	  echo "== tests of module $$m on etcd $(ETCD_DEFAULT)"; \
	  (cd $$m && $(TEST_ENV) go test $(GO_TEST_FLAGS) ./...); \
	done
	@cat $(BIN)/faults-summary.txt
	$(MAKE) test-versions

# The gateway suite again on every other pinned version.
test-versions: etcd
	@set -e; for b in $(ETCD_REPEAT); do \
	  echo "== gateway suite on $$b"; \
	  ETCD_BIN=$$b go test $(GO_TEST_FLAGS) ./gateway/...; \
	done

# Static checks of every module (gofmt, go vet, staticcheck; tools/ only pins
# server builds), and that every mutant's patch still applies to the code.
check: fmt vet staticcheck mutants-apply

fmt:
	@out=$$(git ls-files -co --exclude-standard -- '*.go' | xargs gofmt -l); \
	  if [ -n "$$out" ]; then echo "gofmt would change:" $$out >&2; exit 1; fi

vet:
	@set -e; for m in $(TEST_MODULES); do echo "== go vet $$m"; (cd $$m && go vet ./...); done

staticcheck:
	@set -e; for m in $(TEST_MODULES); do echo "== staticcheck $$m"; \
	  (cd $$m && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...); done

mutants-apply:
	@tools/mutants --check

# The fault suite must kill every mutant of faults/mutants/list (small deliberate
# bugs), each within its short run; RUNS=3 runs the list three times in a row.
RUNS ?= 1
mutants: $(ETCD_MAIN)
	ETCD_BIN=$(ETCD_MAIN) tools/mutants $(RUNS)

# Each fuzz target for FUZZTIME (make test runs their seed corpora, as go test
# does); a failing input lands in the package's testdata/fuzz, to commit with
# the fix.
FUZZTIME ?= 30s
FUZZ_TARGETS := gateway:FuzzReplyError gateway:FuzzStreamDecoder gateway:FuzzAPIPathFor gateway:FuzzPrefixEnd \
	gateway:FuzzFastDecode cmd/etcdgw:FuzzCommandLine cmd/etcdgw:FuzzTxnSyntax
fuzz: $(ETCD_MAIN)
	@set -e; for t in $(FUZZ_TARGETS); do p=$${t%%:*}; f=$${t#*:}; echo "== $$p $$f for $(FUZZTIME)"; \
	  ETCD_BIN=$(ETCD_MAIN) go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./$$p/; done

# A release resolves for a user (tools/release-check; releasing is tools/release).
release-check:
	@tools/release-check

# The main job, runnable: a 3-member cluster on loopback, three replicas of
# examples/worker that elect a leader and share a work queue, a replica and the
# Raft leader killed midway, a timeline and a checked summary. Needs only Go
# and this repository (it builds the pinned etcd).
demo: $(ETCD_MAIN)
	@ETCD_BIN=$(ETCD_MAIN) go run ./examples/demo

# etcdgw and clientv3 side by side on the same etcd (bench/main.go): the
# markdown table goes to stdout and docs/bench.md, the plot to docs/bench.svg.
BENCH_ROUNDS ?= 5
BENCH_DUR ?= 3s
BENCH_ONLY ?= kv,lock,election,queue,mem
bench: etcd
	cd bench && ETCD_BIN=$(ETCD_MAIN) go run . -rounds $(BENCH_ROUNDS) -dur $(BENCH_DUR) -only $(BENCH_ONLY) \
	  -md ../docs/bench.md -svg ../docs/bench.svg

# The gateway package's own Go benchmarks (allocations, encoding).
bench-micro: etcd
	ETCD_BIN=$(ETCD_MAIN) go test -run '^$$' -bench . -benchmem ./gateway/

# The fault-injection suite for longer: SOAK is each workload's duration.
SOAK ?= 5m
soak: $(TEST_NEEDS)
	cd faults && $(TEST_ENV) go test -count=1 -timeout 0 -v -run . . -soak=$(SOAK)

clean:
	rm -rf $(BIN)
