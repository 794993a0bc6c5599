# eventpipe: the two everyday targets are `make run` and `make test`.
GO        ?= go
BIN       := bin/eventpipe
DATA_DIR  ?= .eventpipe
# -p 2: the suites start real servers; more parallel packages than cores
# only make them slower.
TEST_FLAGS ?= -race -count=1 -p 2 -timeout 30m
# The packages whose tests run a second time with the store in ClickHouse
# cluster mode (storetest.ModeEnv; the end-to-end suites through dev mode's
# store, devtest.Options), to give the same answers as one server.
CLUSTER_TEST_PKGS := ./internal/store/clickhouse/ ./internal/tiers/retention/ ./internal/tiers/quota/ ./test/eventquery/ ./test/conformance/

.PHONY: all build image tools run test test-cluster verify verify-codegen generate fmt deps deps-chdb bench bench-writer bench-writer-cluster bench-apiserver bench-eventquery bench-exporter bench-webhook bench-audit bench-activity bench-ui bench-jscluster ui-vendor clean

all: build

deps:
	@scripts/install-deps.sh

# The in-process ClickHouse 26.7 (libchdb.so, ~540 MB) that the store's
# modern-server tests run the same SQL on; see docs/architecture.md,
# "ClickHouse versions".
deps-chdb:
	@scripts/install-chdb.sh

build:
	$(GO) build -o $(BIN) ./cmd/eventpipe

IMAGE           ?= bin/eventpipe-image.tar
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64

## image: the container image as one tarball, $(IMAGE), for docker load, podman
## load or crane push, built without a container daemon (IMAGE_PLATFORMS,
## VERSION and IMAGE_TAG override the defaults; see hack/image).
image:
	$(GO) run ./hack/image --platform $(IMAGE_PLATFORMS) --output $(IMAGE) $(if $(VERSION),--version $(VERSION)) $(if $(IMAGE_TAG),--tag $(IMAGE_TAG))

## tools: build the real test peers (kube-apiserver, kubectl) into .tools/bin.
tools:
	@scripts/build-test-tools.sh

## run: everything in one process with demo data (Ctrl-C stops it).
run: deps build
	$(BIN) dev --data-dir $(DATA_DIR)

## test: the whole suite, against real ClickHouse and JetStream servers.
test: deps deps-chdb tools
	@echo "make test: go test $(TEST_FLAGS) ./... (builds with the race detector first; see docs/testing.md for what takes long)" >&2
	@start=$$(date +%s); $(GO) test $(TEST_FLAGS) ./...; rc=$$?; \
	echo "make test: the store's tests again on a 2 shards x 2 replicas ClickHouse cluster ($(CLUSTER_TEST_PKGS))" >&2; \
	EVENTPIPE_TEST_CLICKHOUSE=cluster $(GO) test $(TEST_FLAGS) $(CLUSTER_TEST_PKGS) || rc=1; \
	echo "make test: go test took $$(( $$(date +%s) - start ))s" >&2; exit $$rc

## test-cluster: the store's tests in ClickHouse cluster mode only (docs/clickhouse-cluster.md).
test-cluster: deps deps-chdb
	EVENTPIPE_TEST_CLICKHOUSE=cluster $(GO) test $(TEST_FLAGS) $(CLUSTER_TEST_PKGS)

## ui-vendor: fetch the web UI's vendored npm files (uPlot) again with npm pack,
## check the package's integrity and rewrite internal/ui/static/vendor/SHA256SUMS.
ui-vendor:
	@scripts/ui-vendor.sh

## verify: formatting, vet, tidy modules, generated code up to date.
verify: verify-codegen
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@tmp=$$(mktemp -d); cp go.mod go.sum $$tmp/; $(GO) mod tidy; \
	if ! cmp -s go.mod $$tmp/go.mod || ! cmp -s go.sum $$tmp/go.sum; then \
	  echo "go.mod/go.sum were not tidy: 'go mod tidy' changed them (left changed; commit them)"; diff $$tmp/go.mod go.mod; exit 1; fi

## generate: regenerate generated code (OpenAPI definitions).
generate:
	hack/update-codegen.sh

verify-codegen:
	hack/verify-codegen.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench-writer: the writer path, JetStream -> ClickHouse (see bench/README.md).
bench-writer: deps
	$(GO) test ./bench/writer -run '^$$' -bench BenchmarkWriterPath -benchtime 500000x -count 6 -timeout 60m

## bench-writer-cluster: the writer draining a backlog into one ClickHouse server vs a 2x2 cluster (docs/clickhouse-cluster.md).
bench-writer-cluster: deps
	$(GO) test ./bench/writer -run '^$$' -bench BenchmarkWriterCluster -benchtime 100000x -count 3 -timeout 60m

## bench-apiserver: eventpipe vs kube-apiserver + etcd: creates/s, list and watch latency (see bench/README.md).
bench-apiserver: deps tools
	$(GO) test ./bench/apiserver -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m

## bench-eventquery: EventQuery, facets and native list latency over a generated
## history (EVENTQUERY_BENCH_EVENTS, default 10M; see bench/README.md).
bench-eventquery: deps
	$(GO) test ./bench/eventquery -run '^$$' -bench . -benchtime 1x -count 1 -timeout 120m -v

## bench-jscluster: creates through the API with EVENTS at 1 and 3 replicas on a
## 3-node JetStream cluster, side by side (see bench/README.md).
bench-jscluster: deps
	$(GO) test ./bench/jscluster -run '^$$' -bench BenchmarkCreates -benchtime 1x -count 1 -timeout 30m

## bench-exporter: `eventpipe export` from a real kube-apiserver into JetStream: list and watch events/s (see bench/README.md).
bench-exporter: deps tools
	$(GO) test ./bench/exporter -run '^$$' -bench . -benchtime 20000x -count 6 -timeout 60m

## bench-webhook: NDJSON batches to /ingest/v1/events end to end into ClickHouse (see bench/README.md).
bench-webhook: deps
	$(GO) test ./bench/webhook -run '^$$' -bench BenchmarkWebhookIngest -benchtime 200000x -count 6 -timeout 60m

## bench-audit: audit.k8s.io/v1 EventLists to /ingest/v1/audit end to end into ClickHouse (see bench/README.md).
bench-audit: deps
	$(GO) test ./bench/webhook -run '^$$' -bench BenchmarkAuditIngest -benchtime 200000x -count 6 -timeout 60m

## bench-activity: activity processor throughput, all built-in policies (see bench/README.md).
bench-activity:
	$(GO) test ./bench/activity -run '^$$' -bench . -benchtime 200000x -count 6 -timeout 60m

## bench-ui: the web UI's first view (timeline + facets + first page) in chromium
## over a generated 60-day history (UI_BENCH_EVENTS, default 10M; see bench/README.md).
bench-ui: deps
	$(GO) test ./bench/ui -run '^$$' -bench . -benchtime 1x -count 1 -timeout 120m -v

bench: bench-writer bench-apiserver

clean:
	rm -rf bin
