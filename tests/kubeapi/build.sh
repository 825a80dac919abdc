#!/usr/bin/env bash
# tests/kubeapi/build.sh: make sure a real kube-apiserver and etcd are on this
# machine for the tests that run against a real Kubernetes API server.
#
#   kube-apiserver   built from k8s.io/kubernetes $KUBE_VERSION, once, into
#                    $PALISADE_KUBE_CACHE (default ~/.cache/palisade-kube);
#                    later runs reuse it (about 13 CPU-minutes cold: 53
#                    minutes on two cores busy with other builds; under a
#                    minute when the Go build cache still holds the packages)
#   etcd             Debian's etcd-server package, installed with apt-get
#                    when no etcd is on PATH
#
# The k8s.io/kubernetes module cannot be built with `go install`: its go.mod
# replaces every k8s.io/* staging module with ./staging/..., which the module
# zip leaves out. The build happens in a writable copy of the module with the
# replace block, vendor/ and go.work dropped and the published staging modules
# of the same release required instead.
#
# Prints the path of the binary on its last line.
set -euo pipefail

KUBE_MODULE=k8s.io/kubernetes
KUBE_VERSION=v1.37.2
STAGING_VERSION=v0.37.2 # the k8s.io/* staging modules published with $KUBE_VERSION

cache=${PALISADE_KUBE_CACHE:-$HOME/.cache/palisade-kube}
bin=$cache/kube-apiserver-$KUBE_VERSION/kube-apiserver

log() { echo "kubeapi/build.sh: $*" >&2; }

# Scratch folder, removed on exit.
tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT

ensure_etcd() {
	command -v etcd >/dev/null && return
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "etcd is not on PATH: install Debian's etcd-server package (apt-get install etcd-server)"
		exit 1
	fi
	log "installing etcd-server with apt-get ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends etcd-server >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends etcd-server >/dev/null; }
	# The package starts a system etcd on 2379; the tests start their own on free ports.
	if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
		systemctl stop etcd || true
	fi
	command -v etcd >/dev/null || { log "etcd-server installed but etcd is not on PATH"; exit 1; }
}

# The repository's GOEXPERIMENT (jsonv2, for Trivy) and GOFLAGS are not meant
# for this third-party build; GOFLAGS=-mod=mod lets go fill in the go.sum
# lines of the staging modules, which the original go.sum lacks.
gobuild() { env -u GOEXPERIMENT -u GOWORK GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 "$@"; }

build_apiserver() {
	[ -x "$bin" ] && return
	log "building kube-apiserver $KUBE_VERSION (once, 10 to 50 minutes on two cores) ..."
	local src start mods m ldflags
	start=$(date +%s)
	src=$(cd /tmp && env -u GOEXPERIMENT go mod download -json "$KUBE_MODULE@$KUBE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { log "cannot download $KUBE_MODULE@$KUBE_VERSION"; exit 1; }
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/palisade-kube.XXXXXX")
	cp -r "$src/." "$tmp/src"
	chmod -R u+w "$tmp/src"
	cd "$tmp/src"
	rm -rf vendor go.work go.work.sum
	# Every replace target is a staging module published as $STAGING_VERSION.
	mods=$(sed -n '/^replace (/,/^)/p' go.mod | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}')
	[ -n "$mods" ] || { log "no staging replace block in $KUBE_MODULE's go.mod"; exit 1; }
	local edits=()
	for m in $mods; do
		edits+=("-dropreplace=$m")
		# Only modules the root requires; the others are not in the build.
		if grep -Eq "^[[:space:]]+$m v0\.0\.0\$" go.mod; then
			edits+=("-require=$m@$STAGING_VERSION")
		fi
	done
	env -u GOEXPERIMENT go mod edit "${edits[@]}"
	ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION"
		ldflags+=" -X $pkg.gitMajor=$(echo "$KUBE_VERSION" | sed 's/^v\([0-9]*\)\..*/\1/')"
		ldflags+=" -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | sed 's/^v[0-9]*\.\([0-9]*\)\..*/\1/')"
		ldflags+=" -X $pkg.gitTreeState=clean"
		ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	done
	gobuild go build -trimpath -ldflags="$ldflags" -o "$tmp/kube-apiserver" ./cmd/kube-apiserver
	cd /
	mkdir -p "$(dirname "$bin")"
	mv "$tmp/kube-apiserver" "$bin.tmp"
	mv "$bin.tmp" "$bin"
	log "built $bin in $(($(date +%s) - start)) s ($(du -m "$bin" | cut -f1) MB)"
}

ensure_etcd
build_apiserver
echo "$bin"
