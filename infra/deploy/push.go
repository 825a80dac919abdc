package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/acrauth"
)

// defaultPrefix is the repository path Palisade's images are pushed under,
// so they sit apart in a registry shared with other workloads.
const defaultPrefix = "palisade"

// pushOptions say where image files go.
type pushOptions struct {
	Registry string // login server
	Prefix   string
	Insecure bool // plain HTTP (a loopback test registry)
	Files    []string
	Keychain authn.Keychain
	Log      zerolog.Logger
}

// repository is where image name lives in registry.
func repository(registry, prefix, image string) string {
	return path.Join(registry, prefix, image)
}

// pushAll pushes each image file and prints "NAME<TAB>REPOSITORY@DIGEST".
func pushAll(ctx context.Context, opts pushOptions, stdout io.Writer) error {
	for _, f := range opts.Files {
		title, ref, err := pushFile(ctx, opts, f)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s\t%s\n", title, ref); err != nil {
			return err
		}
	}
	return nil
}

var tagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// pushFile pushes one image file by its version tag and returns its name
// and digest reference. The registry stores the index, manifests and blobs
// byte for byte, so the digest is the one `make images` printed.
func pushFile(ctx context.Context, opts pushOptions, file string) (string, name.Digest, error) {
	idx, cleanup, err := readLayout(file)
	if err != nil {
		return "", name.Digest{}, err
	}
	defer cleanup()
	im, err := idx.IndexManifest()
	if err != nil {
		return "", name.Digest{}, fmt.Errorf("%s: %w", file, err)
	}
	title := im.Annotations[labelTitle]
	if title == "" {
		return "", name.Digest{}, fmt.Errorf("%s: %w: the image index has no %s annotation", file, ErrLayout, labelTitle)
	}
	tag := tagChars.ReplaceAllString(im.Annotations[labelVersion], "-")
	if tag == "" || tag[0] == '.' || tag[0] == '-' || len(tag) > 128 {
		tag = "latest"
	}
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	t, err := name.NewTag(repository(opts.Registry, opts.Prefix, title)+":"+tag, nopts...)
	if err != nil {
		return "", name.Digest{}, fmt.Errorf("%s: %w", file, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", name.Digest{}, fmt.Errorf("%s: %w", file, err)
	}
	opts.Log.Info().Str("image", title).Str("to", t.String()).Str("digest", d.String()).Msg("pushing")
	if err := remote.WriteIndex(t, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(opts.Keychain)); err != nil {
		return "", name.Digest{}, fmt.Errorf("push %s to %s: %w", file, t, err)
	}
	return title, t.Context().Digest(d.String()), nil
}

// registryKeychain authenticates to Azure Container Registry with an Entra
// ID token (az login, a managed identity or AZURE_* variables: the default
// Azure credential) and to any other registry from the Docker config file.
func registryKeychain(registry string) authn.Keychain {
	if !acrauth.IsACR(registry) {
		return authn.DefaultKeychain
	}
	return &acrKeychain{}
}

// acrKeychain shares one exchanger, which reuses its ACR refresh tokens,
// across every request of a push.
type acrKeychain struct {
	mu sync.Mutex
	e  *acrauth.Exchanger
}

func (k *acrKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if !acrauth.IsACR(r.RegistryStr()) {
		return authn.DefaultKeychain.Resolve(r)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.e == nil {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("credential for %s (run az login): %w", r.RegistryStr(), err)
		}
		k.e = &acrauth.Exchanger{Credential: cred}
	}
	return k.e.Authenticator(r.RegistryStr()), nil
}
