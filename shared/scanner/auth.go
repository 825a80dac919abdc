package scanner

import (
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/acrauth"
	"github.com/palisade-sec/palisade/shared/config"
)

// OptionsFromConfig builds scanner Options from the scan settings. cred
// (may be nil) is the Entra ID credential used for *.azurecr.io when
// PALISADE_REGISTRY_ENTRA_ID is true. Registry credentials go only to the
// registries in PALISADE_REGISTRIES; others are pulled with the docker
// keychain (pipeline mode) or anonymously.
func OptionsFromConfig(c config.Scan, cred azcore.TokenCredential, log zerolog.Logger) Options {
	var ex *acrauth.Exchanger
	if c.UseEntraID && cred != nil {
		ex = &acrauth.Exchanger{Credential: cred}
	}
	return Options{
		CacheDir:       c.CacheDir,
		DBRepositories: c.DBRepositories,
		SkipDBUpdate:   c.SkipDBUpdate,
		DemoFallback:   c.DemoDBFallback,
		MaxBytes:       c.MaxBytes,
		Timeout:        c.Timeout,
		Logger:         log,
		Insecure:       func(r string) bool { return slices.Contains(c.InsecureRegistries, r) },
		Auth: func(registry string) authn.Authenticator {
			allowed := slices.Contains(c.Registries, registry)
			switch {
			case allowed && c.RegistryUsername != "":
				return authn.FromConfig(authn.AuthConfig{Username: c.RegistryUsername, Password: c.RegistryPassword})
			case allowed && ex != nil && acrauth.IsACR(registry):
				return ex.Authenticator(registry)
			}
			reg, err := name.NewRegistry(registry)
			if err != nil {
				return authn.Anonymous
			}
			a, err := authn.DefaultKeychain.Resolve(reg)
			if err != nil {
				return authn.Anonymous
			}
			return a
		},
	}
}
