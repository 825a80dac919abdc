package falco

import (
	"errors"
	"testing"
	"time"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/api/schema"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
)

func TestFromResponse(t *testing.T) {
	ts := time.Date(2026, 7, 10, 20, 12, 53, 504372321, time.UTC)
	got, err := FromResponse(&outputs.Response{
		Time: timestamppb.New(ts), Priority: schema.Priority_CRITICAL, SourceDeprecated: schema.Source_K8S_AUDIT, //nolint:staticcheck // older Falco versions still fill only the deprecated source enum
		Rule: "Create privileged pod", Output: "privileged pod created", Hostname: "node-1",
		OutputFields: map[string]string{"k8s.ns.name": "kube-system", "k8s.pod.name": "<NA>", "container.id": "host"},
		Tags:         []string{"k8s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := falcoevent.Event{Priority: falcoevent.Critical, Envelope: model.Envelope{
		Version: 1, Source: "k8s_audit", Time: ts, Rule: "Create privileged pod", Priority: "Critical",
		Output: "privileged pod created", Hostname: "node-1",
		OutputFields: map[string]string{"k8s.ns.name": "kube-system", "container.id": "host"},
		Tags:         []string{"k8s"}, K8s: &model.K8sRef{Namespace: "kube-system"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, _ = FromResponse(&outputs.Response{Time: timestamppb.New(ts), Rule: "r", Source: "aws_cloudtrail"})
	if got.Envelope.Source != "aws_cloudtrail" || got.Priority != falcoevent.Emergency {
		t.Errorf("source %q priority %v", got.Envelope.Source, got.Priority)
	}
	for name, r := range map[string]*outputs.Response{
		"no rule":  {Time: timestamppb.New(ts)},
		"no time":  {Rule: "r"},
		"priority": {Rule: "r", Time: timestamppb.New(ts), Priority: 42},
	} {
		if _, err := FromResponse(r); !errors.Is(err, falcoevent.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
}
