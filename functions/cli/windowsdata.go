package cli

import (
	"context"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/scanner"
)

// windowsSource is the Windows advisory data of `palisade scan`: kept in
// files under the cache directory (msrc/), so that pipeline runs sharing
// the cache download each monthly document once.
func windowsSource(c config.Scan, m config.MSRC) *msrc.Source {
	return msrc.NewSource(msrc.DirStore{Dir: filepath.Join(c.CacheDir, "msrc")}, settings.MSRC(m))
}

// withWindowsData completes the result of a Windows image: the scan
// matched it against the Windows data kept in the cache; when there is none,
// or it is stale, the data is fetched now (only Windows images need it;
// not with --skip-db-update, which is offline) and the inventory matched
// again, which reads no layer.
func withWindowsData(ctx context.Context, s *scanner.Scanner, res *scanner.Result, offline bool, log zerolog.Logger) error {
	if !scanner.IsWindows(res.Image) || offline {
		return nil
	}
	w := s.PrepareWindows(ctx)
	if w.Stale && w.Version != "" {
		log.Warn().Str("windows_data", w.Version).Strs("problems", w.Problems).
			Msg("the Windows advisory data is stale or incomplete; the image is matched against what is held")
	}
	m, err := s.Match(ctx, res.Image, res.Inventory)
	if err != nil {
		return err
	}
	res.Image, res.Findings = m.Image, m.Findings
	return nil
}
