package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// FuzzTriageBody: any PATCH body is either refused with a 400 or gives a
// request that detection's check accepts or refuses with ErrTriageInvalid;
// an accepted one asks for a status a person may set.
func FuzzTriageBody(f *testing.F) {
	f.Add([]byte(`{"status":"dismissed","comment":"pen test","by":"ana"}`), "")
	f.Add([]byte(`{"status":"active","by":"x"}`), "bo@contoso.com")
	f.Add([]byte(`{"status":"resolved","by":"a","extra":1}`), "")
	f.Add([]byte(`{"status":"new","by":"a"} {}`), "")
	f.Fuzz(func(t *testing.T, body []byte, principal string) {
		req, err := decodeTriage(strings.NewReader(string(body)), principal)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("decode error %v is not a 400", err)
			}
			return
		}
		req.ID = "0123456789abcdef0123456789abcdef"
		switch err := req.Check(); {
		case err == nil:
			if req.Status != model.AlertActive && req.Status != model.AlertResolved && req.Status != model.AlertDismissed || strings.TrimSpace(req.By) == "" {
				t.Fatalf("accepted %+v", req)
			}
		case !errors.Is(err, detection.ErrTriageInvalid):
			t.Fatalf("check error %v is not ErrTriageInvalid", err)
		}
	})
}
