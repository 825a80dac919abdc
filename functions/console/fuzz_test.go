package console

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzSafeNext: whatever a login form's next says, the login goes to a
// console page on this host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/api/console/images?x=1", "https://evil.example/", "//evil.example/api/console/", `/\evil.example`, "javascript:alert(1)", "/api/console/../../admin", "%2F%2Fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(got, Base+"/") || strings.HasPrefix(got, "//") || strings.Contains(got, `\`) {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
	})
}

// FuzzSession: no cookie value but one the key signed is a session, and a
// signed one is one until it expires.
func FuzzSession(f *testing.F) {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	a := auth{key: "s3cret", ttl: time.Hour, now: func() time.Time { return now }}
	good, _ := a.newSession()
	f.Add(good)
	f.Add("9999999999.AAAA")
	f.Add("")
	f.Add("1785585600.")
	f.Fuzz(func(t *testing.T, v string) {
		if a.validSession(v) && v != good {
			t.Fatalf("%q passes for a session", v)
		}
	})
}
