package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/funchost"
)

func TestHandlerBehindHost(t *testing.T) {
	h, front := launch(t)

	t.Run("readiness probe answers JSON", func(t *testing.T) {
		code, body := getJSON(t, h.Handler+"/")
		if code != 200 || !strings.Contains(body, `"ready"`) {
			t.Errorf("GET / = %d %s", code, body)
		}
	})
	t.Run("forwarded api request", func(t *testing.T) {
		code, body := getJSON(t, front.URL+"/api/images")
		if code != 200 || body != `{"items":[]}` {
			t.Errorf("GET /api/images = %d %s", code, body)
		}
	})
	t.Run("unknown digest is 404 with a JSON error", func(t *testing.T) {
		code, body := getJSON(t, front.URL+"/api/images/sha256:"+strings.Repeat("0", 64))
		if code != 404 || !strings.Contains(body, `"error":"no image with digest`) {
			t.Errorf("got %d %s", code, body)
		}
	})
	t.Run("malformed digest is 400", func(t *testing.T) {
		code, body := getJSON(t, front.URL+"/api/images/latest")
		if code != 400 || !strings.Contains(body, "malformed digest") {
			t.Errorf("got %d %s", code, body)
		}
	})
	t.Run("malformed invocation body is a 4xx JSON error", func(t *testing.T) {
		for _, name := range h.App.Names() {
			if trig, _ := h.App.Functions[name].Trigger(); trig.Type == "httpTrigger" {
				continue
			}
			resp, err := http.Post(h.Handler+"/"+name, "application/json", bytes.NewReader([]byte(`{"Data":`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("%s: malformed body got %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
		_, err := h.Invoke(t.Context(), "nosuchfunction", funchost.Payload{})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("unknown function: err = %v", err)
		}
	})
}
