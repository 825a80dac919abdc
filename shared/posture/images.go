package posture

import (
	"context"
	"fmt"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// ImageVulns is what the store knows of one image digest.
type ImageVulns struct {
	Scanned bool     // the digest has been scanned
	Open    int      // open findings at or above the threshold
	Sample  []string // a few of their vulnerability ids
}

// VulnSource answers the vulnerability checks from scan results.
type VulnSource interface {
	// ImageVulns reports the open findings of digest at or above min.
	ImageVulns(ctx context.Context, digest string, min model.Severity) (ImageVulns, error)
	// RegistryImages calls fn for each active image of a registry host.
	RegistryImages(ctx context.Context, loginServer string, fn func(model.Image) error) error
}

// StoreVulns answers from the scan results stored through vulnstore.
type StoreVulns struct{ Store store.Store }

var _ VulnSource = StoreVulns{}

// sampleSize bounds the vulnerability ids quoted in a message.
const sampleSize = 5

// ImageVulns implements VulnSource: an image counts as scanned when its
// summary is active (not failed, unsupported or deleted).
func (s StoreVulns) ImageVulns(ctx context.Context, digest string, min model.Severity) (ImageVulns, error) {
	img, err := vulnstore.Lookup(ctx, s.Store, digest)
	if err != nil {
		return ImageVulns{}, err
	}
	if !img.Found || img.Image.Status != model.ImageActive {
		return ImageVulns{}, nil
	}
	e, err := vulnstore.OpenFindings(ctx, s.Store, digest, min)
	if err != nil {
		return ImageVulns{}, err
	}
	v := ImageVulns{Scanned: true, Open: e.Total(), Sample: e.VulnIDs}
	if len(v.Sample) > sampleSize {
		v.Sample = v.Sample[:sampleSize]
	}
	return v, nil
}

// RegistryImages implements VulnSource.
func (s StoreVulns) RegistryImages(ctx context.Context, loginServer string, fn func(model.Image) error) error {
	f := vulnstore.ImageFilter{Registry: strings.ToLower(loginServer), Status: model.ImageActive}
	if err := vulnstore.EachImage(ctx, s.Store, f, fn); err != nil {
		return fmt.Errorf("images of %s: %w", loginServer, err)
	}
	return nil
}
