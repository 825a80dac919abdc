#!/usr/bin/env bash
# infra/check.sh: check the Terraform under infra/terraform offline.
#
#   tofu fmt -check      on every .tf file
#   tofu validate        on the module and the example, against the real
#                        azurerm provider schema
#   trivy config         misconfiguration checks, when a trivy binary is
#                        given (TRIVY=/path/to/trivy), on PATH, or built
#                        into the cache (PALISADE_INFRA_TRIVY=build)
#
# OpenTofu and the azurerm provider are built from the Go module proxy, once,
# into $PALISADE_INFRA_CACHE (default ~/.cache/palisade-infra); later runs reuse
# them. The provider is used through a CLI configuration with dev_overrides,
# so no registry is contacted.
set -euo pipefail

TOFU_MODULE=github.com/opentofu/opentofu
TOFU_VERSION=v1.12.6
AZURERM_MODULE=github.com/hashicorp/terraform-provider-azurerm
AZURERM_VERSION=v1.44.1-0.20260824201233-fae580791926 # azurerm 5.2.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PALISADE_INFRA_CACHE:-$HOME/.cache/palisade-infra}
tofu=$cache/tofu-$TOFU_VERSION/tofu
provider_dir=$cache/azurerm-$AZURERM_VERSION
provider=$provider_dir/terraform-provider-azurerm

# Scratch folders, removed on exit.
scratch=()
cleanup() { [ ${#scratch[@]} -eq 0 ] || rm -rf "${scratch[@]}"; }
trap cleanup EXIT
mktmp() { mktemp -d "${TMPDIR:-/tmp}/palisade-infra.XXXXXX"; }

# The repository's GOEXPERIMENT (jsonv2, for Trivy) and GOFLAGS are not meant
# for these third-party builds.
gobuild() { env -u GOEXPERIMENT GOFLAGS=-buildvcs=false nice -n 10 "$@"; }

build_tofu() {
	[ -x "$tofu" ] && return
	echo "building OpenTofu $TOFU_VERSION (once) ..." >&2
	local src tmp
	# go install refuses OpenTofu (its go.mod has a replace directive): build
	# inside a writable copy of the module instead.
	src=$(cd /tmp && env -u GOEXPERIMENT go mod download -json "$TOFU_MODULE@$TOFU_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "check.sh: cannot download $TOFU_MODULE@$TOFU_VERSION" >&2; exit 1; }
	tmp=$(mktmp)
	scratch+=("$tmp")
	cp -r "$src/." "$tmp/src"
	chmod -R u+w "$tmp/src"
	(cd "$tmp/src" && gobuild go build -trimpath -ldflags="-s -w" -o "$tmp/tofu" ./cmd/tofu)
	mkdir -p "$(dirname "$tofu")"
	mv "$tmp/tofu" "$tofu"
}

build_provider() {
	[ -x "$provider" ] && return
	echo "building terraform-provider-azurerm $AZURERM_VERSION (once, ~15 minutes) ..." >&2
	local tmp
	tmp=$(mktmp)
	scratch+=("$tmp")
	(cd /tmp && GOBIN=$tmp gobuild go install -trimpath -ldflags="-s -w" "$AZURERM_MODULE@$AZURERM_VERSION")
	mkdir -p "$provider_dir"
	mv "$tmp/terraform-provider-azurerm" "$provider"
}

build_tofu
build_provider

export TF_CLI_CONFIG_FILE=$cache/tofurc
cat >"$TF_CLI_CONFIG_FILE" <<EOF
provider_installation {
  dev_overrides {
    "hashicorp/azurerm" = "$provider_dir"
  }
  direct {}
}
EOF
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1

status=0

echo "== tofu fmt -check"
if ! "$tofu" fmt -check -recursive -diff "$root/infra/terraform"; then
	echo "tofu fmt: the files above need \`tofu fmt -recursive infra/terraform\`" >&2
	status=1
fi

# Validate in a scratch copy so no .terraform folder lands in the checkout.
work=$(mktmp)
scratch+=("$work")
mkdir -p "$work/infra"
cp -r "$root/infra/terraform" "$work/infra/"
[ -d "$root/infra/sentinel" ] && cp -r "$root/infra/sentinel" "$work/infra/"

for dir in modules/palisade examples/main; do
	echo "== tofu validate infra/terraform/$dir"
	d=$work/infra/terraform/$dir
	# tofu get links local modules only; tofu init is not used: it would look
	# the provider up in the registry in spite of dev_overrides.
	if ! "$tofu" -chdir="$d" get -no-color >"$work/get.log" 2>&1; then
		cat "$work/get.log" >&2
		status=1
		continue
	fi
	"$tofu" -chdir="$d" validate -no-color || status=1
done

# Trivy: $TRIVY, else trivy on PATH, else one built earlier into the cache;
# PALISADE_INFRA_TRIVY=build builds it there from the version in go.mod.
trivy_version=$(cd "$root" && go list -m -f '{{.Version}}' github.com/aquasecurity/trivy 2>/dev/null || true)
cached_trivy=$cache/trivy-$trivy_version/trivy
trivy=${TRIVY:-$(command -v trivy || true)}
if [ -z "$trivy" ] && [ -n "$trivy_version" ]; then
	if [ ! -x "$cached_trivy" ] && [ "${PALISADE_INFRA_TRIVY:-}" = build ]; then
		echo "building Trivy $trivy_version (once) ..." >&2
		mkdir -p "$(dirname "$cached_trivy")"
		# Trivy needs the jsonv2 experiment on Go 1.26; no -trimpath, so the
		# packages the scanner build compiled already come from the build cache.
		(cd "$root" && GOEXPERIMENT=jsonv2 GOFLAGS=-buildvcs=false nice -n 10 \
			go build -ldflags="-s -w" -o "$cached_trivy.tmp" github.com/aquasecurity/trivy/cmd/trivy)
		mv "$cached_trivy.tmp" "$cached_trivy"
	fi
	[ -x "$cached_trivy" ] && trivy=$cached_trivy
fi
if [ -n "$trivy" ]; then
	echo "== trivy config infra/terraform"
	# Accepted findings carry a #trivy:ignore comment with the reason.
	"$trivy" config --quiet --skip-check-update --exit-code 1 "$root/infra/terraform" || status=1
else
	echo "== trivy config: skipped (set TRIVY=/path/to/trivy, or PALISADE_INFRA_TRIVY=build to build it once)"
fi

exit $status
