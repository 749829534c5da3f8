# The README's test command is `make test`: it builds what the tests need on a fresh
# machine (etcd servers, Debian's etcd 3.4) and runs every module's tests with -race.

ETCD_VERSIONS := 3.5.21 3.6.16 3.7.3
BIN := $(CURDIR)/.bin
ETCD_BINS := $(foreach v,$(ETCD_VERSIONS),$(BIN)/etcd-$(v)) $(BIN)/etcdctl-3.6.16
# Modules whose tests run: the library at the root, then nested test modules.
TEST_MODULES := . interop integration faults
GO_TEST_FLAGS ?= -race -count=1
# Which etcd the suite uses by default, and which it is repeated against.
ETCD_DEFAULT := $(BIN)/etcd-3.6.16
ETCD_OTHERS := /usr/bin/etcd $(BIN)/etcd-3.5.21 $(BIN)/etcd-3.7.3

# The integration package's Docker backend runs this image. The default is built
# here FROM scratch with the etcd above, since CI reaches no image registry; set
# ETCD_IMAGE=gcr.io/etcd-development/etcd:v3.6.16 to test the official one.
ETCD_IMAGE ?= etcdgw-local/etcd:v3.6.16
# testcontainers' reaper image cannot be pulled on CI; Terminate cleans up anyway.
TEST_ENV := ETCD_BIN=$(ETCD_DEFAULT) ETCDGW_ETCD_IMAGE=$(ETCD_IMAGE) TESTCONTAINERS_RYUK_DISABLED=true \
	FAULTS_SUMMARY=$(BIN)/faults-summary.txt

.PHONY: test etcd etcd34 docker-engine etcd-image test-versions bench soak vet clean

etcd: $(ETCD_BINS) etcd34

$(BIN)/etcd-%: tools/etcd/v%/go.mod tools/etcd/v%/main.go
	@mkdir -p $(BIN)
	cd tools/etcd/v$* && CGO_ENABLED=0 go build -trimpath -o $@ .

# etcdctl for the interop tests (`etcdctl lock`, `etcdctl elect`).
$(BIN)/etcdctl-%: tools/etcdctl/v%/go.mod tools/etcdctl/v%/main.go
	@mkdir -p $(BIN)
	cd tools/etcdctl/v$* && CGO_ENABLED=0 go build -trimpath -o $@ .

# Debian's etcd-server package is etcd 3.4.23; it starts nothing on install.
etcd34:
	@test -x /usr/bin/etcd || { \
	  command -v apt-get >/dev/null || { echo "need /usr/bin/etcd (etcd 3.4): install Debian's etcd-server" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; }

# A Docker engine: the one that answers, or (on CI) Debian's, started here.
docker-engine:
	@tools/docker/engine $(BIN)/dockerd.pid

etcd-image: $(ETCD_DEFAULT) docker-engine
	@case "$(ETCD_IMAGE)" in etcdgw-local/*) \
	  mkdir -p $(BIN)/image && cp $(ETCD_DEFAULT) $(BIN)/image/etcd && \
	  DOCKER_BUILDKIT=0 docker build -q -t $(ETCD_IMAGE) -f tools/docker/Dockerfile $(BIN)/image >/dev/null && \
	  echo "== built image $(ETCD_IMAGE)";; esac

test: etcd etcd-image
	@set -e; for m in $(TEST_MODULES); do \
	  echo "== tests of module $$m on etcd 3.6.16"; \
	  (cd $$m && $(TEST_ENV) go test $(GO_TEST_FLAGS) ./...); \
	done
	@cat $(BIN)/faults-summary.txt
	$(MAKE) test-versions

# The gateway suite again on every other pinned version.
test-versions: etcd
	@set -e; for b in $(ETCD_OTHERS); do \
	  echo "== gateway suite on $$b"; \
	  ETCD_BIN=$$b go test $(GO_TEST_FLAGS) ./gateway/...; \
	done

bench: etcd
	ETCD_BIN=$(ETCD_DEFAULT) go test -run '^$$' -bench . -benchmem ./gateway/

# The fault-injection suite for longer: SOAK is each workload's duration.
SOAK ?= 5m
soak: etcd etcd-image
	cd faults && $(TEST_ENV) go test -count=1 -timeout 0 -v -run . . -soak=$(SOAK)

vet:
	@set -e; for m in $(TEST_MODULES); do (cd $$m && go vet ./...); done

clean:
	rm -rf $(BIN)
