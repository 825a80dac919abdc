package intel

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// Fetch downloads (or reads) the feeds at opts.KEVURL and opts.EPSSURL
// for one use, without keeping them: `palisade scan` annotates its
// findings with them. A location "" leaves that feed out. A feed that
// cannot be had or does not decode is nil, and its status says why; Fetch
// itself does not fail. A feed is stale when it is missing, or (EPSS) when
// its scores are older than opts.MaxAge. The minimum sizes of Options are
// not applied: a mirror or a file given on purpose may be small.
func Fetch(ctx context.Context, opts Options) (*Feeds, Status) {
	opts.defaults()
	now := opts.Now().UTC()
	fs := &Feeds{}
	st := Status{KEV: FeedStatus{FeedState: FeedState{Feed: model.FeedKEV, URL: opts.KEVURL}}, EPSS: FeedStatus{FeedState: FeedState{Feed: model.FeedEPSS, URL: opts.EPSSURL}}}
	if opts.KEVURL != "" {
		var k *KEV
		err := Open(ctx, opts.Client, opts.KEVURL, func(r io.Reader) (err error) {
			k, err = DecodeKEV(r, opts.MaxKEVBytes)
			return err
		})
		if err == nil {
			var content []byte
			content, err = kevContent(k)
			st.KEV.Hash, st.KEV.Version, st.KEV.Date, st.KEV.Entries = contentHash(content), k.CatalogVersion, k.Released, len(k.Entries)
		}
		fs.KEV = fetched(&st.KEV.FeedState, k, err, now)
	}
	if opts.EPSSURL != "" {
		var e *EPSS
		err := Open(ctx, opts.Client, opts.EPSSURL, func(r io.Reader) (err error) {
			e, err = DecodeEPSS(r, opts.MaxEPSSBytes)
			return err
		})
		if err == nil {
			// The hash of the scores as published, without writing
			// them out again: model version, date and size.
			st.EPSS.Hash = contentHash(fmt.Appendf(nil, "%s %s %d", e.ModelVersion, e.ScoreDate.Format(time.RFC3339), e.Len()))
			st.EPSS.Version, st.EPSS.Date, st.EPSS.Entries = e.ModelVersion, e.ScoreDate, e.Len()
		}
		fs.EPSS = fetched(&st.EPSS.FeedState, e, err, now)
	}
	st.KEV = fetchedStatus(st.KEV.FeedState, now, opts.MaxAge)
	st.EPSS = fetchedStatus(st.EPSS.FeedState, now, opts.MaxAge)
	return fs, st
}

// fetched records one download in fs and returns the feed, or nil when it
// failed.
func fetched[T any](fs *FeedState, feed *T, err error, now time.Time) *T {
	fs.LastAttempt = now
	if err != nil {
		fs.Hash, fs.Problem = "", err.Error()
		return nil
	}
	fs.FetchedAt, fs.CheckedAt = now, now
	return feed
}

// fetchedStatus says what a fetched feed means now.
func fetchedStatus(fs FeedState, now time.Time, maxAge time.Duration) FeedStatus {
	st := FeedStatus{FeedState: fs}
	switch {
	case fs.URL == "":
		st.Reasons = append(st.Reasons, "no location given")
	case !fs.Held():
		st.Reasons = append(st.Reasons, "could not be had: "+fs.Problem)
	case fs.Feed == model.FeedEPSS && now.Sub(fs.Date) > maxAge:
		st.Reasons = append(st.Reasons, fmt.Sprintf("the scores are of %s, older than %s", fs.Date.UTC().Format(dateLayout), maxAge))
	}
	st.Stale = len(st.Reasons) > 0
	return st
}
