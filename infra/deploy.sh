#!/usr/bin/env bash
# infra/deploy.sh: package Palisade and deploy it to Azure.
#
#   infra/deploy.sh [--dry-run] package   zip dist/app (made by `make app`) into dist/palisade.zip
#   infra/deploy.sh [--dry-run] deploy    tofu apply, publish the zip, push the images built
#                                         by `make images` to the deployment's registry, and
#                                         install the chart (sensor and agent) by image digest
#                                         in every protected AKS cluster
#   infra/deploy.sh [--dry-run] destroy   uninstall the sensor chart and tofu destroy
#
# --dry-run prints every command that would change something, one a line
# starting with "+ ", instead of running it. It still reads the Terraform
# outputs (`tofu output -json`, or the file PALISADE_TF_OUTPUTS names) and
# writes the chart values files the helm commands name, so what a deployment
# would install can be read, and rendered with `helm template -f FILE`.
#
# Needs go; for a real run also az (logged in: az login; az account set -s
# SUBSCRIPTION), tofu (or TOFU=terraform), helm, kubelogin and zip.
# Settings (environment):
#   PALISADE_TF_DIR         Terraform root (default infra/terraform/examples/main)
#   PALISADE_TFVARS         variables file (default $PALISADE_TF_DIR/terraform.tfvars)
#   PALISADE_TF_OUTPUTS     --dry-run only: a `tofu output -json` file to use instead of the
#                           state's outputs
#   PALISADE_CHART          sensor chart (default infra/helm/palisade-sensor)
#   PALISADE_IMAGES_DIR     images made by `make images` (default dist/images)
#   PALISADE_DEPLOY_DIR     outputs, values files and kubeconfigs written here (default dist/deploy)
#   PALISADE_SENSOR_IMAGE   sensor image REPO:TAG or REPO@sha256:… to install instead of
#                           the one built here (which is then not pushed)
#   PALISADE_AGENT_IMAGE    the same for the agent image
#   PALISADE_SENSOR_VALUES  your own values file, given to helm after the generated one
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
app=$root/dist/app
zip=$root/dist/palisade.zip
tf_dir=${PALISADE_TF_DIR:-$root/infra/terraform/examples/main}
tfvars=${PALISADE_TFVARS:-$tf_dir/terraform.tfvars}
chart=${PALISADE_CHART:-$root/infra/helm/palisade-sensor}
images_dir=${PALISADE_IMAGES_DIR:-$root/dist/images}
deploy_dir=${PALISADE_DEPLOY_DIR:-$root/dist/deploy}
tofu=${TOFU:-tofu}
go=${GO:-go}
tool=$deploy_dir/palisade-deploy
outputs=$deploy_dir/outputs.json
release=palisade-sensor
kubeconfig= # set by credentials

dry_run=0
if [ "${1:-}" = --dry-run ]; then
	dry_run=1
	shift
fi

die() {
	echo "deploy.sh: $*" >&2
	exit 1
}
need() { for c in "$@"; do command -v "$c" >/dev/null || die "$c is required"; done; }

# Outputs recorded elsewhere would go stale at the first apply.
[ -z "${PALISADE_TF_OUTPUTS:-}" ] || [ "$dry_run" = 1 ] || die "PALISADE_TF_OUTPUTS is for --dry-run only"

# run runs a command that changes something; a dry run prints it instead.
run() {
	if [ "$dry_run" = 1 ]; then
		printf '+'
		printf ' %q' "$@"
		printf '\n'
	else
		"$@"
	fi
}

# run_in is run inside a directory.
run_in() {
	local dir=$1
	shift
	if [ "$dry_run" = 1 ]; then
		printf '+ cd %q &&' "$dir"
		printf ' %q' "$@"
		printf '\n'
	else
		(cd "$dir" && "$@")
	fi
}

# missing stops a real run when a file is not there; a dry run goes on.
missing() {
	if [ "$dry_run" = 1 ]; then
		echo "deploy.sh: (dry run) $*" >&2
	else
		die "$@"
	fi
}

package() {
	[ "$dry_run" = 1 ] || need zip
	if [ -x "$app/palisade" ] && [ -f "$app/host.json" ]; then
		# The Function App runs Linux on x86-64: a binary built for another
		# platform (make app on a Mac) would never start.
		local magic machine
		magic=$(od -An -N7 -tx1 "$app/palisade" 2>/dev/null | tr -d ' \n' || true)
		machine=$(od -An -j18 -N2 -tx1 "$app/palisade" 2>/dev/null | tr -d ' \n' || true)
		[ "$magic" = 7f454c46020101 ] && [ "$machine" = 3e00 ] ||
			die "$app/palisade is not a Linux x86-64 executable: build it with GOOS=linux GOARCH=amd64"
	else
		missing "$app is incomplete: run make app first"
	fi
	run rm -f "$zip"
	# Zip the folder's content (no top folder); zip keeps the executable bit
	# the Functions host needs to start the custom handler.
	run_in "$app" zip -q -r -X "$zip" .
	[ "$dry_run" = 1 ] || echo "packaged $zip ($(du -h "$zip" | cut -f1))"
}

# The Go half of this script (infra/deploy): reads the Terraform outputs,
# pushes images, writes values files. Built every time: it is quick once
# cached, and always matches the checkout.
build_tool() {
	mkdir -p "$deploy_dir"
	(cd "$root" && "$go" build -o "$tool" ./infra/deploy)
}

tf() { run "$tofu" -chdir="$tf_dir" "$@"; }
tf_apply() { tf apply -input=false -auto-approve -var-file="$tfvars" "$@"; }

# read_outputs saves the outputs (read-only: a dry run reads them too).
read_outputs() {
	if [ -n "${PALISADE_TF_OUTPUTS:-}" ]; then
		cp "$PALISADE_TF_OUTPUTS" "$outputs"
	else
		(umask 077 && "$tofu" -chdir="$tf_dir" output -json >"$outputs") ||
			{ [ "$dry_run" = 1 ] && echo '{}' >"$outputs"; }
	fi
}
out() { "$tool" output -outputs "$outputs" "$1"; }
have_output() { out "$1" >/dev/null 2>&1; }

publish() {
	echo "publishing $zip" >&2
	run az functionapp deployment source config-zip --resource-group "$(out resource_group_name)" \
		--name "$(out function_app_name)" --src "$zip" --timeout 600 --output none
}

# push_images pushes every image `make images` built; the registry keeps
# their digests.
push_images() {
	local files=() f
	for f in "$images_dir"/*.tar; do
		[ -e "$f" ] || continue
		# An overriding image is not the one built here.
		if [ -n "${PALISADE_SENSOR_IMAGE:-}" ] && [ "$(basename "$f")" = palisade-sensor.tar ]; then
			continue
		fi
		if [ -n "${PALISADE_AGENT_IMAGE:-}" ] && [ "$(basename "$f")" = palisade-agent.tar ]; then
			continue
		fi
		files+=("$f")
	done
	if [ ${#files[@]} -eq 0 ]; then
		echo "deploy.sh: no image in $images_dir to push (make images builds them)" >&2
		return
	fi
	run "$tool" push -registry "$(out image_registry_login_server)" "${files[@]}"
}

# credentials writes a kubeconfig for one cluster, apart from ~/.kube/config,
# that authenticates with the az login (kubelogin: Entra ID clusters).
credentials() {
	local key=$1 sub=$2 rg=$3 name=$4
	kubeconfig=$deploy_dir/kubeconfig-$key
	run az aks get-credentials --subscription "$sub" --resource-group "$rg" --name "$name" \
		--file "$kubeconfig" --overwrite-existing --only-show-errors
	run kubelogin convert-kubeconfig --login azurecli --kubeconfig "$kubeconfig"
}

install_sensor() {
	[ -d "$chart" ] || die "sensor chart $chart not found"
	local list=$deploy_dir/clusters.tsv key sub rg name ns values extra=()
	# One values file per cluster, from the outputs and the image digest.
	"$tool" values -outputs "$outputs" -images "$images_dir" -out "$deploy_dir" >"$list"
	[ -z "${PALISADE_SENSOR_VALUES:-}" ] || extra=(-f "$PALISADE_SENSOR_VALUES")
	# The list is read on fd 3: az and helm must not eat it from stdin.
	while IFS=$'\t' read -r key sub rg name ns values <&3; do
		echo "installing $release in $name with $values" >&2
		credentials "$key" "$sub" "$rg" "$name"
		run helm upgrade --install "$release" "$chart" --kubeconfig "$kubeconfig" \
			--namespace "$ns" --create-namespace -f "$values" "${extra[@]}" --wait --timeout 10m
	done 3<"$list"
}

deploy() {
	if [ "$dry_run" = 1 ]; then need "$go"; else need az helm kubelogin "$tofu" "$go"; fi
	[ -f "$zip" ] || missing "$zip not found: run make package first"
	[ -f "$tfvars" ] || missing "$tfvars not found: copy $tf_dir/terraform.tfvars.example and edit it"
	build_tool
	[ "$dry_run" = 1 ] || az account show --output none || die "not logged in: run az login"
	tf init -input=false
	read_outputs
	if ! have_output function_app_name; then
		[ "$dry_run" = 0 ] || die "dry run: no Terraform outputs yet; deploy once, or set PALISADE_TF_OUTPUTS to a \`tofu output -json\` file"
		# First deployment: Event Grid refuses a subscription to a function
		# that does not exist yet, so publish before subscribing.
		tf_apply -var enable_event_subscriptions=false
		read_outputs
		publish
		tf_apply
	else
		tf_apply
		publish
	fi
	read_outputs
	push_images
	install_sensor
	echo "Palisade is deployed: https://$(out function_app_hostname)/api/" >&2
}

destroy() {
	if [ "$dry_run" = 1 ]; then need "$go"; else need az helm kubelogin "$tofu" "$go"; fi
	build_tool
	read_outputs
	local list=$deploy_dir/clusters.tsv key sub rg name ns
	if ! "$tool" clusters -outputs "$outputs" >"$list"; then
		echo "deploy.sh: no cluster to uninstall the sensor from" >&2
		: >"$list"
	fi
	while IFS=$'\t' read -r key sub rg name ns <&3; do
		credentials "$key" "$sub" "$rg" "$name"
		run helm uninstall "$release" --kubeconfig "$kubeconfig" --namespace "$ns" --ignore-not-found
	done 3<"$list"
	tf destroy -input=false -auto-approve -var-file="$tfvars"
}

case ${1:-} in
package) package ;;
deploy) deploy ;;
destroy) destroy ;;
*) die "usage: infra/deploy.sh [--dry-run] package|deploy|destroy" ;;
esac
