package infra

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// ModuleDir is the Terraform module, relative to the repository root.
const ModuleDir = "infra/terraform/modules/palisade"

// The locals of the module that make up the Function App's app settings
// (settings.tf).
const (
	localPalisade  = "palisade_settings"
	localPlatform  = "platform_settings"
	localNotAzure  = "settings_not_in_azure"
	localAppConfig = "app_settings"
)

// AppSettings is what the Terraform module gives the Function App.
type AppSettings struct {
	// Set holds every app setting name the module sets, each with its value
	// when the value is known without deploying (a literal, or built from
	// variable defaults), else with no entry in Values.
	Set map[string]bool
	// Values holds the values known before deployment.
	Values map[string]string
	// NotInAzure maps declared settings deliberately left unset to the reason.
	NotInAzure map[string]string
}

// Provides reports whether the app settings provide name: set directly, or as
// an identity-based connection (name__fullyQualifiedNamespace and so on,
// which the Functions host and Palisade read in place of a connection string).
func (a AppSettings) Provides(name string) bool {
	if a.Set[name] {
		return true
	}
	for k := range a.Set {
		if strings.HasPrefix(k, name+"__") {
			return true
		}
	}
	return false
}

// LoadAppSettings parses the .tf files of dir and returns the app settings of
// its azurerm_linux_function_app. It fails when the settings are not wired
// the way settings.tf documents: the Function App's app_settings must be
// local.app_settings, built from local.palisade_settings and
// local.platform_settings.
func LoadAppSettings(dir string) (AppSettings, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return AppSettings{}, fmt.Errorf("no .tf files in %s", dir)
	}
	locals := map[string]hclsyntax.Expression{}
	variables := map[string]cty.Value{}
	var appSettingsExpr hclsyntax.Expression
	var storageAccount bool
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return AppSettings{}, err
		}
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			return AppSettings{}, fmt.Errorf("parse %s: %w", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch {
			case b.Type == "locals":
				for name, a := range b.Body.Attributes {
					locals[name] = a.Expr
				}
			case b.Type == "variable" && len(b.Labels) == 1:
				if d, ok := b.Body.Attributes["default"]; ok {
					if v, diags := d.Expr.Value(nil); !diags.HasErrors() {
						variables[b.Labels[0]] = v
					}
				}
			case b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == "azurerm_linux_function_app":
				if a, ok := b.Body.Attributes["app_settings"]; ok {
					appSettingsExpr = a.Expr
				}
				_, storageAccount = b.Body.Attributes["storage_account_name"]
			}
		}
	}

	if appSettingsExpr == nil {
		return AppSettings{}, errors.New("no azurerm_linux_function_app with app_settings in " + dir)
	}
	if !refersTo(appSettingsExpr, "local", localAppConfig) {
		return AppSettings{}, fmt.Errorf("the Function App's app_settings must be local.%s", localAppConfig)
	}
	merged, ok := locals[localAppConfig]
	if !ok {
		return AppSettings{}, fmt.Errorf("local.%s is not defined", localAppConfig)
	}
	for _, l := range []string{localPalisade, localPlatform} {
		if !refersTo(merged, "local", l) {
			return AppSettings{}, fmt.Errorf("local.%s does not use local.%s", localAppConfig, l)
		}
	}

	a := AppSettings{Set: map[string]bool{}, Values: map[string]string{}, NotInAzure: map[string]string{}}
	ctx := evalContext(variables)
	for _, l := range []string{localPalisade, localPlatform} {
		items, err := objectItems(locals, l)
		if err != nil {
			return AppSettings{}, err
		}
		for name, expr := range items {
			if a.Set[name] {
				return AppSettings{}, fmt.Errorf("app setting %s is set twice", name)
			}
			a.Set[name] = true
			if v, ok := knownString(expr, ctx); ok {
				a.Values[name] = v
			}
		}
	}
	items, err := objectItems(locals, localNotAzure)
	if err != nil {
		return AppSettings{}, err
	}
	for name, expr := range items {
		reason, ok := knownString(expr, nil)
		if !ok || strings.TrimSpace(reason) == "" {
			return AppSettings{}, fmt.Errorf("local.%s.%s must give the reason as a string", localNotAzure, name)
		}
		a.NotInAzure[name] = reason
	}
	// Set by the azurerm provider from the resource's own arguments.
	if storageAccount {
		a.Set["AzureWebJobsStorage"] = true
	}
	a.Set["FUNCTIONS_WORKER_RUNTIME"] = true
	a.Set["FUNCTIONS_EXTENSION_VERSION"] = true
	return a, nil
}

// objectItems returns the entries of the object local name, by key.
func objectItems(locals map[string]hclsyntax.Expression, name string) (map[string]hclsyntax.Expression, error) {
	expr, ok := locals[name]
	if !ok {
		return nil, fmt.Errorf("local.%s is not defined", name)
	}
	obj, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil, fmt.Errorf("local.%s must be an object literal { NAME = value }", name)
	}
	out := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String {
			return nil, fmt.Errorf("local.%s: key at %s is not a plain name", name, item.KeyExpr.Range())
		}
		out[k.AsString()] = item.ValueExpr
	}
	return out, nil
}

// refersTo reports whether expr refers to root.attr (local.x, var.y).
func refersTo(expr hclsyntax.Expression, root, attr string) bool {
	for _, t := range expr.Variables() {
		if t.RootName() != root || len(t) < 2 {
			continue
		}
		if a, ok := t[1].(hcl.TraverseAttr); ok && a.Name == attr {
			return true
		}
	}
	return false
}

// knownString evaluates expr when it depends on nothing but variable
// defaults; values drawn from resources are known only after deployment.
func knownString(expr hclsyntax.Expression, ctx *hcl.EvalContext) (string, bool) {
	for _, t := range expr.Variables() {
		if t.RootName() != "var" {
			return "", false
		}
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || !s.IsKnown() || s.IsNull() {
		return "", false
	}
	return s.AsString(), true
}

// evalContext offers the variable defaults and the few functions settings.tf
// uses on them.
func evalContext(variables map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(variables)},
		Functions: map[string]function.Function{
			"tostring": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
				Type:   function.StaticReturnType(cty.String),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					return convert.Convert(args[0], cty.String)
				},
			}),
			"join": stdlib.JoinFunc,
			"sort": stdlib.SortFunc,
		},
	}
}

// ExampleDir is the root module infra/deploy.sh applies, relative to the
// repository root.
const ExampleDir = "infra/terraform/examples/main"

// Outputs returns the names of the outputs the .tf files of dir declare,
// sorted.
func Outputs(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	var names []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "output" && len(b.Labels) == 1 {
				names = append(names, b.Labels[0])
			}
		}
	}
	slices.Sort(names)
	return names, nil
}
