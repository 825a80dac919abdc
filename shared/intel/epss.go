package intel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// EPSS is one day's scores of FIRST's Exploit Prediction Scoring System,
// indexed by CVE: about 300,000 CVEs in 16 bytes each.
type EPSS struct {
	ModelVersion string    // e.g. "v2025.03.14"
	ScoreDate    time.Time // when the scores were computed
	keys         []uint64  // year<<32 | number, sorted
	vals         []epssVal // in the order of keys
}

type epssVal struct{ score, percentile float32 }

// Len is the number of CVEs scored.
func (e *EPSS) Len() int {
	if e == nil {
		return 0
	}
	return len(e.keys)
}

// Date is the score date as findings carry it (YYYY-MM-DD).
func (e *EPSS) Date() string { return e.ScoreDate.UTC().Format(dateLayout) }

// Lookup returns a CVE's score.
func (e *EPSS) Lookup(cve string) (model.EPSS, bool) {
	if e == nil {
		return model.EPSS{}, false
	}
	y, n, ok := model.ParseCVE(cve)
	if !ok {
		return model.EPSS{}, false
	}
	i, found := slices.BinarySearch(e.keys, cveKey(y, n))
	if !found {
		return model.EPSS{}, false
	}
	v := e.vals[i]
	return model.EPSS{Score: round5(v.score), Percentile: round5(v.percentile), Date: e.Date()}, true
}

// round5 gives back the five decimals the feed publishes, without float32
// noise.
func round5(f float32) float64 { return math.Round(float64(f)*1e5) / 1e5 }

func cveKey(year, number uint32) uint64 { return uint64(year)<<32 | uint64(number) }

func cveOfKey(k uint64) string {
	n := strconv.FormatUint(k&0xffffffff, 10)
	if len(n) < 4 {
		n = strings.Repeat("0", 4-len(n)) + n
	}
	return "CVE-" + strconv.FormatUint(k>>32, 10) + "-" + n
}

// EPSS feed's header line after the metadata comment.
const epssHeader = "cve,epss,percentile"

// DecodeEPSS reads the published daily CSV (gzip-compressed, as published,
// or plain), at most maxBytes of it once uncompressed (0: no bound): a
// comment line "#model_version:…,score_date:…", the header
// "cve,epss,percentile", then one row per CVE with a score and percentile
// between 0 and 1. A CVE listed twice, a malformed or short row, or a
// truncated compressed stream fails, naming the line.
func DecodeEPSS(r io.Reader, maxBytes int64) (*EPSS, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: EPSS scores: gzip: %v", ErrMalformed, err)
		}
		defer zr.Close()
		zr.Multistream(false)
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	var src io.Reader = br
	var lr *io.LimitedReader
	if maxBytes > 0 {
		// One byte past the bound is let through, so that a body cut by
		// the bound tells itself apart from one that ends there.
		lr = &io.LimitedReader{R: br, N: maxBytes + 1}
		src = lr
	}
	e, err := decodeEPSSLines(src)
	if lr != nil && lr.N <= 0 {
		return nil, fmt.Errorf("%w: EPSS scores: more than %d bytes", ErrTooLarge, maxBytes)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func decodeEPSSLines(r io.Reader) (*EPSS, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	bad := func(line int, format string, a ...any) error {
		return fmt.Errorf("%w: EPSS scores: line %d: %s", ErrMalformed, line, fmt.Sprintf(format, a...))
	}
	line := 0
	next := func() ([]byte, bool) {
		if !sc.Scan() {
			return nil, false
		}
		line++
		return bytes.TrimSuffix(sc.Bytes(), []byte("\r")), true
	}
	e := &EPSS{}
	first, ok := next()
	if !ok {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: EPSS scores: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: EPSS scores: empty", ErrMalformed)
	}
	if err := e.parseMeta(string(first)); err != nil {
		return nil, bad(1, "%v", err)
	}
	header, ok := next()
	if !ok || string(header) != epssHeader {
		return nil, bad(2, "want the header %q, got %q", epssHeader, header)
	}
	e.keys = make([]uint64, 0, 1<<18)
	e.vals = make([]epssVal, 0, 1<<18)
	sorted := true
	for {
		row, ok := next()
		if !ok {
			break
		}
		cve, rest, ok1 := bytes.Cut(row, []byte(","))
		score, pct, ok2 := bytes.Cut(rest, []byte(","))
		if !ok1 || !ok2 {
			return nil, bad(line, "want cve,epss,percentile, got %q", row)
		}
		y, n, ok := model.ParseCVE(string(cve))
		if !ok {
			return nil, bad(line, "%q is not a CVE id", cve)
		}
		s, err := unitFloat(score)
		if err != nil {
			return nil, bad(line, "%s: epss %v", cve, err)
		}
		p, err := unitFloat(pct)
		if err != nil {
			return nil, bad(line, "%s: percentile %v", cve, err)
		}
		k := cveKey(y, n)
		if l := len(e.keys); l > 0 && e.keys[l-1] >= k {
			sorted = false
		}
		e.keys = append(e.keys, k)
		e.vals = append(e.vals, epssVal{s, p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: EPSS scores: after line %d: %v", ErrMalformed, line, err)
	}
	if !sorted {
		e.sort()
	}
	for i := 1; i < len(e.keys); i++ {
		if e.keys[i] == e.keys[i-1] {
			return nil, fmt.Errorf("%w: EPSS scores: %s is listed twice", ErrMalformed, cveOfKey(e.keys[i]))
		}
	}
	return e, nil
}

// parseMeta reads "#model_version:v2025.03.14,score_date:2026-11-29T12:55:00Z".
func (e *EPSS) parseMeta(line string) error {
	meta, ok := strings.CutPrefix(line, "#")
	if !ok {
		return fmt.Errorf("want the comment line #model_version:…,score_date:…, got %q", truncate(line, 80))
	}
	for _, kv := range strings.Split(meta, ",") {
		k, v, _ := strings.Cut(kv, ":")
		switch strings.TrimSpace(k) {
		case "model_version":
			e.ModelVersion = strings.TrimSpace(v)
		case "score_date":
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("score_date %q is not an RFC 3339 time", v)
			}
			e.ScoreDate = t.UTC()
		}
	}
	if e.ModelVersion == "" {
		return fmt.Errorf("no model_version in %q", truncate(line, 80))
	}
	if e.ScoreDate.IsZero() {
		return fmt.Errorf("no score_date in %q", truncate(line, 80))
	}
	return nil
}

// unitFloat parses a probability: a number from 0 to 1.
func unitFloat(b []byte) (float32, error) {
	f, err := strconv.ParseFloat(string(b), 32)
	if err != nil || !(f >= 0 && f <= 1) { // NaN is neither
		return 0, fmt.Errorf("%q is not a number from 0 to 1", b)
	}
	return float32(f), nil
}

func (e *EPSS) sort() {
	idx := make([]int, len(e.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case e.keys[a] < e.keys[b]:
			return -1
		case e.keys[a] > e.keys[b]:
			return 1
		}
		return 0
	})
	keys := make([]uint64, len(idx))
	vals := make([]epssVal, len(idx))
	for i, j := range idx {
		keys[i], vals[i] = e.keys[j], e.vals[j]
	}
	e.keys, e.vals = keys, vals
}

// writeCSV writes the scores in the published CSV format, sorted by CVE:
// the stored form.
func (e *EPSS) writeCSV(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "#model_version:%s,score_date:%s\n%s\n", e.ModelVersion, e.ScoreDate.UTC().Format(time.RFC3339), epssHeader)
	buf := make([]byte, 0, 64)
	for i, k := range e.keys {
		buf = append(buf[:0], cveOfKey(k)...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, float64(e.vals[i].score), 'g', -1, 32)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, float64(e.vals[i].percentile), 'g', -1, 32)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
