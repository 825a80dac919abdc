package seed_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/seed"
)

// TestFill: every kind of data the console shows is there, and the planted
// strings are where they should be.
func TestFill(t *testing.T) {
	st, err := embedded.OpenWith(filepath.Join(t.TempDir(), "palisade.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	res := seed.Fill(t, st, seed.Options{Images: 60, Alerts: 400, XSS: true, Now: time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)})
	t.Logf("seeded in %s", time.Since(start))
	images, findings := 0, 0
	if err := vulnstore.EachImage(t.Context(), st, vulnstore.ImageFilter{}, func(img model.Image) error {
		images++
		fs, err := vulnstore.Findings(t.Context(), st, img.Digest)
		findings += len(fs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	statuses := map[string]int{}
	if err := detection.EachAlert(t.Context(), st, detection.AlertFilter{}, func(a model.Alert) error {
		alerts++
		statuses[a.Status]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var scores posture.Scores
	scores, err = posture.LoadScores(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	sensors := 0
	_ = detection.EachSensor(t.Context(), st, func(detection.SensorNode) error { sensors++; return nil })
	running := 0
	_ = posture.EachRunningImages(t.Context(), st, func(r model.RunningImages) error { running += len(r.Images); return nil })
	summaries := 0
	_ = vulnstore.EachSummary(t.Context(), st, func(model.ImageVulns) error { summaries++; return nil })
	remediations := 0
	_ = posture.EachRemediation(t.Context(), st, func(model.Remediation) error { remediations++; return nil })
	t.Logf("%d images, %d findings, %d alerts %v, %d clusters, %d sensors, %d running, %d summaries, %d remediations", images, findings, alerts, statuses, len(scores.Clusters), sensors, running, summaries, remediations)
	if images != 60 || findings < 300 || alerts < 200 || len(scores.Clusters) != 2 || sensors == 0 || running == 0 || summaries == 0 || remediations == 0 ||
		statuses[model.AlertDismissed] == 0 || statuses[model.AlertNew] == 0 {
		t.Error("some kind of data is missing")
	}
	if res.XSSDigest == "" || res.XSSAlert == "" {
		t.Errorf("planted strings: digest %q alert %q", res.XSSDigest, res.XSSAlert)
	}
}
