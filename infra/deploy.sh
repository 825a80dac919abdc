#!/usr/bin/env bash
# infra/deploy.sh: package Palisade and deploy it to Azure.
#
#   infra/deploy.sh package   zip dist/app (made by `make app`) into dist/palisade.zip
#   infra/deploy.sh deploy    tofu apply, publish the zip, install the sensor
#                             chart in every protected AKS cluster
#   infra/deploy.sh destroy   uninstall the sensor chart and tofu destroy
#
# Needs: az (logged in: az login; az account set -s SUBSCRIPTION), tofu (or
# TOFU=terraform) with registry access, helm, kubectl, jq, zip.
# Settings (environment):
#   PALISADE_TF_DIR   Terraform root (default infra/terraform/examples/main)
#   PALISADE_TFVARS   variables file (default $PALISADE_TF_DIR/terraform.tfvars)
#   PALISADE_CHART    sensor chart (default infra/helm/palisade-sensor)
#   PALISADE_SENSOR_IMAGE  sensor image repository:tag for the chart (optional)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
app=$root/dist/app
zip=$root/dist/palisade.zip
tf_dir=${PALISADE_TF_DIR:-$root/infra/terraform/examples/main}
tfvars=${PALISADE_TFVARS:-$tf_dir/terraform.tfvars}
chart=${PALISADE_CHART:-$root/infra/helm/palisade-sensor}
tofu=${TOFU:-tofu}

die() {
	echo "deploy.sh: $*" >&2
	exit 1
}
need() { for c in "$@"; do command -v "$c" >/dev/null || die "$c is required"; done; }

package() {
	need zip
	[ -x "$app/palisade" ] && [ -f "$app/host.json" ] || die "$app is incomplete: run make app first"
	# The Function App runs Linux on x86-64: a binary built for another
	# platform (make app on a Mac) would never start.
	local magic machine
	magic=$(od -An -N7 -tx1 "$app/palisade" 2>/dev/null | tr -d ' \n' || true)
	machine=$(od -An -j18 -N2 -tx1 "$app/palisade" 2>/dev/null | tr -d ' \n' || true)
	[ "$magic" = 7f454c46020101 ] && [ "$machine" = 3e00 ] ||
		die "$app/palisade is not a Linux x86-64 executable: build it with GOOS=linux GOARCH=amd64"
	rm -f "$zip"
	# Zip the folder's content (no top folder); zip keeps the executable bit
	# the Functions host needs to start the custom handler.
	(cd "$app" && zip -q -r -X "$zip" .)
	echo "packaged $zip ($(du -h "$zip" | cut -f1))"
}

tf() { "$tofu" -chdir="$tf_dir" "$@"; }
tf_apply() { tf apply -input=false -auto-approve -var-file="$tfvars" "$@"; }
out() { tf output -raw "$1"; }

publish() {
	local rg fn
	rg=$(out resource_group_name)
	fn=$(out function_app_name)
	echo "publishing $zip to $fn"
	az functionapp deployment source config-zip --resource-group "$rg" --name "$fn" --src "$zip" --timeout 600 >/dev/null
}

install_sensor() {
	local ids client_id ns sa fqdn hub id rg name
	[ -d "$chart" ] || die "sensor chart $chart not found"
	ids=$(tf output -json aks_cluster_ids)
	client_id=$(out sensor_client_id)
	ns=$(tf output -json sensor_service_account | jq -r .namespace)
	sa=$(tf output -json sensor_service_account | jq -r .name)
	fqdn=$(out eventhubs_namespace_fqdn)
	hub=$(out runtime_eventhub)
	for id in $(jq -r '.[]' <<<"$ids"); do
		rg=$(cut -d/ -f5 <<<"$id")
		name=$(cut -d/ -f9 <<<"$id")
		echo "installing palisade-sensor in $name"
		az aks get-credentials --resource-group "$rg" --name "$name" --overwrite-existing --only-show-errors
		args=(
			--namespace "$ns" --create-namespace
			--set-string "serviceAccount.name=$sa"
			--set-string "workloadIdentity.clientId=$client_id"
			--set-string "eventHubs.namespace=$fqdn"
			--set-string "eventHubs.name=$hub"
			--set-string "cluster.id=$id"
		)
		if [ -n "${PALISADE_SENSOR_IMAGE:-}" ]; then
			args+=(--set-string "image.repository=${PALISADE_SENSOR_IMAGE%:*}" --set-string "image.tag=${PALISADE_SENSOR_IMAGE##*:}")
		fi
		helm upgrade --install palisade-sensor "$chart" "${args[@]}" --wait --timeout 10m
	done
}

deploy() {
	need az jq helm kubectl "$tofu"
	[ -f "$zip" ] || die "$zip not found: run make package first"
	[ -f "$tfvars" ] || die "$tfvars not found: copy $tf_dir/terraform.tfvars.example and edit it"
	az account show >/dev/null || die "not logged in: run az login"
	tf init -input=false
	if ! tf output -raw function_app_name >/dev/null 2>&1; then
		# First deployment: Event Grid refuses a subscription to a function
		# that does not exist yet, so publish before subscribing.
		tf_apply -var enable_event_subscriptions=false
		publish
		tf_apply
	else
		tf_apply
		publish
	fi
	install_sensor
	echo "Palisade is deployed: https://$(out function_app_hostname)/api/"
}

destroy() {
	need az jq helm kubectl "$tofu"
	local id
	for id in $(tf output -json aks_cluster_ids | jq -r '.[]'); do
		az aks get-credentials --resource-group "$(cut -d/ -f5 <<<"$id")" --name "$(cut -d/ -f9 <<<"$id")" --overwrite-existing --only-show-errors
		helm uninstall palisade-sensor --namespace "$(tf output -json sensor_service_account | jq -r .namespace)" --ignore-not-found
	done
	tf destroy -input=false -auto-approve -var-file="$tfvars"
}

case ${1:-} in
package) package ;;
deploy) deploy ;;
destroy) destroy ;;
*) die "usage: infra/deploy.sh package|deploy|destroy" ;;
esac
