package scanner

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	fixtures "github.com/aquasecurity/bolt-fixtures"
	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
)

//go:embed demodb/*.yaml
var demoFixtures embed.FS

// demoUpdatedAt dates the built-in demo DB; it changes only when its
// advisories do.
var demoUpdatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildFixtureDB writes a vulnerability DB into dir (trivy.db and
// metadata.json, schema version 2) from bolt-fixtures YAML files: buckets of
// advisories keyed by source package ("debian 12" → package → CVE), the
// "vulnerability" bucket of details and the "data-source" bucket. Tests use
// it for small DBs; the demo fallback uses it for the built-in demo DB.
func BuildFixtureDB(dir string, updatedAt time.Time, yamlFiles ...string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("build fixture DB: %w", err)
	}
	path := trivydb.Path(dir)
	_ = os.Remove(path)
	loader, err := fixtures.New(path, yamlFiles)
	if err != nil {
		return fmt.Errorf("build fixture DB %s: %w", path, err)
	}
	if err := loader.Load(); err != nil {
		_ = loader.Close()
		return fmt.Errorf("build fixture DB %s: load fixtures: %w", path, err)
	}
	if err := loader.Close(); err != nil {
		return fmt.Errorf("build fixture DB %s: %w", path, err)
	}
	meta := metadata.Metadata{
		Version:      trivydb.SchemaVersion,
		NextUpdate:   updatedAt.Add(24 * time.Hour),
		UpdatedAt:    updatedAt,
		DownloadedAt: updatedAt,
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("build fixture DB: %w", err)
	}
	if err := os.WriteFile(metadata.Path(dir), b, 0o600); err != nil {
		return fmt.Errorf("build fixture DB: %w", err)
	}
	return nil
}

// buildDemoDB writes the built-in demo DB into dir from the embedded YAML.
func buildDemoDB(dir string) error {
	tmp, err := os.MkdirTemp("", "palisade-demo-fixtures-")
	if err != nil {
		return fmt.Errorf("build demo DB: %w", err)
	}
	defer os.RemoveAll(tmp)
	entries, err := demoFixtures.ReadDir("demodb")
	if err != nil {
		return fmt.Errorf("build demo DB: %w", err)
	}
	var files []string
	for _, e := range entries {
		b, err := demoFixtures.ReadFile("demodb/" + e.Name())
		if err != nil {
			return fmt.Errorf("build demo DB: %w", err)
		}
		p := filepath.Join(tmp, e.Name())
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("build demo DB: %w", err)
		}
		files = append(files, p)
	}
	return BuildFixtureDB(dir, demoUpdatedAt, files...)
}
