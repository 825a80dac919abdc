# Palisade build, run and test targets. Trivy v0.74 needs the jsonv2 experiment.
export GOEXPERIMENT := jsonv2
GO ?= go
BIN := bin
APP := dist/app
FUNCTIONS := $(patsubst functions/%/function.json,%,$(wildcard functions/*/function.json))

.PHONY: build run test bench app lint tidy clean test-deps

build:
	$(GO) build -o $(BIN)/palisade ./functions
	@if [ -d sensor ] && ls sensor/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/palisade-sensor ./sensor; fi

## run: the main job on one machine with no Azure (embedded store, local host emulation on :7071).
run: build
	$(BIN)/palisade dev

test-deps:
	@[ -d tests/node_modules ] || npm ci --prefix tests --no-audit --no-fund

test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 40m ./...

bench: test-deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

app: build
	rm -rf $(APP) && mkdir -p $(APP)
	cp host.json $(APP)/
	cp $(BIN)/palisade $(APP)/palisade
	for f in $(FUNCTIONS); do mkdir -p $(APP)/$$f && cp functions/$$f/function.json $(APP)/$$f/; done

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) dist
