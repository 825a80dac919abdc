// Package infra ties the Azure deployment (infra/terraform) to the code: its
// tests check that every setting the handler declares in shared/config and
// every setting or connection a functions/*/function.json refers to is
// provided by the Function App's app settings in the Terraform module. It
// also lists the outputs of the root module infra/deploy.sh applies, which
// the deployment tests hold their recorded `tofu output -json` to.
package infra
