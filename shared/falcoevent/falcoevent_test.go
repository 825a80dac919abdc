package falcoevent

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeJSONRealSamples(t *testing.T) {
	tests := []struct {
		file string
		want Event
	}{
		{
			file: "falco-0.4x.json",
			want: Event{Priority: Notice, Envelope: model.Envelope{
				Version: 1, Source: "syscall", Time: time.Date(2026, 7, 10, 20, 12, 53, 504372321, time.UTC),
				Rule: "Terminal shell in container", Priority: "Notice", Hostname: "73b5de6165e3",
				Output: "2026-07-10T20:12:53.504372321+0000: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=sh proc_exepath=/bin/busybox parent=containerd-shim command=sh terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=253a53abf758 container_name=test container_image_repository=alpine container_image_tag=latest k8s_pod_name=<NA> k8s_ns_name=<NA>",
				OutputFields: map[string]string{
					"container.id": "253a53abf758", "container.image.repository": "alpine", "container.image.tag": "latest",
					"container.name": "test", "evt.arg.flags": "EXE_WRITABLE|EXE_LOWER_LAYER",
					"evt.time.iso8601": "1783714373504372321", "evt.type": "execve", "proc.cmdline": "sh",
					"proc.exepath": "/bin/busybox", "proc.name": "sh", "proc.pname": "containerd-shim", "proc.tty": "34816",
					"user.loginuid": "-1", "user.name": "root", "user.uid": "0",
				},
				Tags:      []string{"T1059", "container", "maturity_stable", "mitre_execution", "shell"},
				Container: &model.ContainerRef{ID: "253a53abf758", Name: "test", Image: "alpine", Tag: "latest"},
			}},
		},
		{
			file: "falco-0.2x.json",
			want: Event{Priority: Notice, Envelope: model.Envelope{
				Version: 1, Source: "syscall", Time: time.Date(2020, 5, 26, 20, 20, 0, 598526480, time.UTC),
				Rule: "Terminal shell in container", Priority: "Notice",
				Output: "20:20:00.598526480: Notice A shell was spawned in a container with an attached terminal (user=root k8s.ns=default k8s.pod=falco-5tjrp container=fc8aefdf0c4e shell=bash parent=runc cmdline=bash terminal=34816 container_id=fc8aefdf0c4e image=docker.io/falcosecurity/falco) k8s.ns=default k8s.pod=falco-5tjrp container=fc8aefdf0c4e",
				OutputFields: map[string]string{
					"container.id": "fc8aefdf0c4e", "container.image.repository": "docker.io/falcosecurity/falco",
					"evt.time": "1590524400598526480", "k8s.ns.name": "default", "k8s.pod.name": "falco-5tjrp",
					"proc.cmdline": "bash", "proc.name": "bash", "proc.pname": "runc", "proc.tty": "34816", "user.name": "root",
				},
				Container: &model.ContainerRef{ID: "fc8aefdf0c4e", Image: "docker.io/falcosecurity/falco"},
				K8s:       &model.K8sRef{Namespace: "default", Pod: "falco-5tjrp"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeJSON(readSample(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeJSONRejects(t *testing.T) {
	good := `"rule":"r","priority":"Warning","time":"2026-01-02T03:04:05Z"`
	tests := map[string]string{
		"not json":         `{"rule":`,
		"no rule":          `{"priority":"Warning","time":"2026-01-02T03:04:05Z"}`,
		"unknown priority": `{"rule":"r","priority":"Loud","time":"2026-01-02T03:04:05Z"}`,
		"bad time":         `{"rule":"r","priority":"Warning","time":"yesterday"}`,
		"wrong type":       `{"rule":5,"priority":"Warning","time":"2026-01-02T03:04:05Z"}`,
		"array":            `[{` + good + `}]`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeJSON([]byte(in)); !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v, want ErrInvalid", err)
			}
		})
	}
	ev, err := DecodeJSON([]byte(`{` + good + `,"output_fields":{"a":true,"b":[1,2],"c":{"d":null},"k8smeta.deployment.name":"web","k8s.ns.name":"prod"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "true", "b": "[1,2]", "c": `{"d":null}`, "k8smeta.deployment.name": "web", "k8s.ns.name": "prod"}
	if diff := cmp.Diff(want, ev.Envelope.OutputFields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&model.K8sRef{Namespace: "prod", Workload: "web"}, ev.Envelope.K8s); diff != "" {
		t.Errorf("k8s (-want +got):\n%s", diff)
	}
}

func TestStampIsStableAndDistinguishes(t *testing.T) {
	a, _ := DecodeJSON(readSample(t, "falco-0.4x.json"))
	b, _ := DecodeJSON(readSample(t, "falco-0.4x.json"))
	Stamp(&a.Envelope, "c1", "node-1")
	Stamp(&b.Envelope, "c1", "node-1")
	if a.Envelope.ID == "" || a.Envelope.ID != b.Envelope.ID {
		t.Fatalf("ids %q and %q of the same alert differ", a.Envelope.ID, b.Envelope.ID)
	}
	if a.Envelope.Cluster != "c1" || a.Envelope.Node != "node-1" {
		t.Errorf("cluster/node %q/%q", a.Envelope.Cluster, a.Envelope.Node)
	}
	c, _ := DecodeJSON(readSample(t, "falco-0.4x.json"))
	c.Envelope.Time = c.Envelope.Time.Add(time.Nanosecond)
	Stamp(&c.Envelope, "c1", "node-1")
	if c.Envelope.ID == a.Envelope.ID {
		t.Error("alerts a nanosecond apart share an id")
	}
}

func TestParsePriority(t *testing.T) {
	for i, n := range priorityNames {
		for _, s := range []string{n, strings.ToLower(n), strings.ToUpper(n)} {
			if p, err := ParsePriority(s); err != nil || p != Priority(i) {
				t.Errorf("ParsePriority(%q) = %v, %v", s, p, err)
			}
		}
	}
	if p, _ := ParsePriority("info"); p != Informational {
		t.Errorf("info = %v", p)
	}
}

// FuzzDecodeJSON feeds arbitrary bytes to the decoder of untrusted Falco
// JSON: it must never panic, and whatever it accepts must make a valid
// envelope.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(readSampleF(f, "falco-0.4x.json"))
	f.Add(readSampleF(f, "falco-0.2x.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not marked invalid: %v", err)
			}
			return
		}
		if ev.Envelope.Rule == "" || int(ev.Priority) >= NumPriorities {
			t.Fatalf("accepted an event without rule or with priority %d", ev.Priority)
		}
		if p, err := ParsePriority(ev.Envelope.Priority); err != nil || p != ev.Priority {
			t.Fatalf("priority %q does not round-trip", ev.Envelope.Priority)
		}
		Stamp(&ev.Envelope, "c", "n")
		if _, err := json.Marshal(ev.Envelope); err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
	})
}

func readSampleF(f *testing.F, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
