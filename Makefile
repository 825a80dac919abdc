# Palisade build, run and test targets. Trivy v0.74 needs the jsonv2 experiment.
export GOEXPERIMENT := jsonv2
GO ?= go
BIN := bin
APP := dist/app
FUNCTIONS := $(patsubst functions/%/function.json,%,$(wildcard functions/*/function.json))

# Image metadata: the commit, and its time for every timestamp in the images
# (same commit, same digests).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: build run test bench app images lint tidy clean test-deps kube-apiserver browser infra-check package deploy

build:
	$(GO) build -o $(BIN)/palisade ./functions
	@if [ -d sensor ] && ls sensor/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/palisade-sensor ./sensor; fi
	$(GO) build -o $(BIN)/palisade-agent ./agent

## run: the main job on one machine with no Azure (embedded store, local host emulation on :7071).
run: build
	$(BIN)/palisade dev

test-deps:
	@[ -d tests/node_modules ] || npm ci --prefix tests --no-audit --no-fund

## kube-apiserver: the real Kubernetes API server (built once per machine into ~/.cache/palisade-kube,
## 10 to 50 minutes cold) and etcd, for the tests against it; test and bench need them, never skip them.
kube-apiserver:
	@tests/kubeapi/build.sh >/dev/null

## browser: the console's tests drive a headless Chromium (Debian's chromium package; .ci/run installs it).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
		{ echo "make: the console's browser tests need Chromium: apt-get install -y chromium" >&2; exit 1; }

test: test-deps kube-apiserver browser
	$(GO) vet ./...
	PALISADE_REQUIRE_KUBE=1 PALISADE_REQUIRE_BROWSER=1 $(GO) test -race -count=1 -timeout 40m ./...

bench: test-deps kube-apiserver
	PALISADE_REQUIRE_KUBE=1 $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## app: the folder `func start` runs and that is zipped for deployment (a Linux x86-64 binary).
app:
	rm -rf $(APP) && mkdir -p $(APP)
	cp host.json $(APP)/
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o $(APP)/palisade ./functions
	for f in $(FUNCTIONS); do mkdir -p $(APP)/$$f && cp functions/$$f/function.json $(APP)/$$f/; done

## images: OCI images of the binaries (infra/deploy/images.go lists them) for linux/amd64 and
## linux/arm64, one OCI image-layout tar each in dist/images, built without Docker, reproducibly.
images:
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./infra/deploy images -out dist/images -version '$(VERSION)' -revision '$(REVISION)'

## infra-check: tofu fmt -check and tofu validate against the real azurerm schema, and Trivy's misconfiguration checks, offline.
infra-check:
	PALISADE_INFRA_TRIVY=build infra/check.sh

package: app
	infra/deploy.sh package

## deploy: tofu apply, publish the app, push the images, install the sensor chart in every cluster (infra/deploy.sh).
deploy: package images
	infra/deploy.sh deploy

## lint: golangci-lint, pinned here.
lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run ./...

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) dist
