package posture

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSeccompProfiles(t *testing.T) {
	field := func(typ corev1.SeccompProfileType, local string) *corev1.SeccompProfile {
		p := &corev1.SeccompProfile{Type: typ}
		if local != "" {
			p.LocalhostProfile = &local
		}
		return p
	}
	pod := func(podProfile, ctrProfile *corev1.SeccompProfile, annotations map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "myacr.azurecr.io/app:1"}}}}
		if podProfile != nil {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: podProfile}
		}
		if ctrProfile != nil {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: ctrProfile}
		}
		return p
	}
	const localMsg = "container app: seccomp profile localhost/profiles/audit.json not allowed (allowed: runtime/default, docker/default)"
	tests := []struct {
		name    string
		allowed []string // nil: the default list
		pod     *corev1.Pod
		want    string
	}{
		{"none", nil, pod(nil, nil, nil), "container app: no seccomp profile set"},
		{"pod RuntimeDefault", nil, pod(field(corev1.SeccompProfileTypeRuntimeDefault, ""), nil, nil), ""},
		{"container RuntimeDefault", nil, pod(nil, field(corev1.SeccompProfileTypeRuntimeDefault, ""), nil), ""},
		{"Localhost not on the default list", nil, pod(field(corev1.SeccompProfileTypeLocalhost, "profiles/audit.json"), nil, nil), localMsg},
		{"Localhost listed", []string{"runtime/default", "localhost/profiles/audit.json"}, pod(nil, field(corev1.SeccompProfileTypeLocalhost, "profiles/audit.json"), nil), ""},
		{"another Localhost listed", []string{"localhost/profiles/other.json"}, pod(nil, field(corev1.SeccompProfileTypeLocalhost, "profiles/audit.json"), nil),
			"container app: seccomp profile localhost/profiles/audit.json not allowed (allowed: localhost/profiles/other.json)"},
		{"any Localhost", []string{"localhost/*"}, pod(nil, field(corev1.SeccompProfileTypeLocalhost, "profiles/audit.json"), nil), ""},
		{"field form Localhost", []string{"Localhost"}, pod(nil, field(corev1.SeccompProfileTypeLocalhost, "profiles/audit.json"), nil), ""},
		{"Unconfined", nil, pod(nil, field(corev1.SeccompProfileTypeUnconfined, ""), nil), "container app: seccomp profile unconfined not allowed (allowed: runtime/default, docker/default)"},
		{"Unconfined allowed", []string{"Unconfined"}, pod(nil, field(corev1.SeccompProfileTypeUnconfined, ""), nil), ""},
		{"anything allowed", []string{"*"}, pod(nil, field(corev1.SeccompProfileTypeUnconfined, ""), nil), ""},
		{"container beats pod", nil, pod(field(corev1.SeccompProfileTypeRuntimeDefault, ""), field(corev1.SeccompProfileTypeUnconfined, ""), nil),
			"container app: seccomp profile unconfined not allowed (allowed: runtime/default, docker/default)"},
		{"docker/default stands for RuntimeDefault", []string{"docker/default"}, pod(field(corev1.SeccompProfileTypeRuntimeDefault, ""), nil, nil), ""},
		{"container annotation", nil, pod(nil, nil, map[string]string{"container.seccomp.security.alpha.kubernetes.io/app": "docker/default"}), ""},
		{"pod annotation", nil, pod(nil, nil, map[string]string{"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}), ""},
		{"pod annotation Localhost", nil, pod(nil, nil, map[string]string{"seccomp.security.alpha.kubernetes.io/pod": "localhost/profiles/audit.json"}), localMsg},
		{"container annotation beats pod field", nil, pod(field(corev1.SeccompProfileTypeRuntimeDefault, ""), nil,
			map[string]string{"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"}),
			"container app: seccomp profile unconfined not allowed (allowed: runtime/default, docker/default)"},
		{"pod field beats pod annotation", nil, pod(field(corev1.SeccompProfileTypeRuntimeDefault, ""), nil,
			map[string]string{"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testConfig(t, "")
			if tt.allowed != nil {
				opts.AllowedSeccompProfiles = tt.allowed
			}
			var objs Objects
			objs.Add(tt.pod)
			eng := NewEngine(opts, nil, nil, nil, nil, clock)
			rep, err := eng.Assess(t.Context(), &Snapshot{Name: "c", Objects: objs})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				if r.CheckID == "seccomp-profile" {
					if r.Message != tt.want || (r.Message == "") != (r.Status == "pass") {
						t.Errorf("status %s, message %q; want %q", r.Status, r.Message, tt.want)
					}
					return
				}
			}
			t.Fatal("no seccomp-profile result")
		})
	}
}

func TestSeccompAllowListInvalid(t *testing.T) {
	opts := testConfig(t, "")
	opts.AllowedSeccompProfiles = []string{"localhost/"}
	if _, err := NewEngine(opts, nil, nil, nil, nil, clock).Assess(t.Context(), &Snapshot{Name: "c"}); err == nil {
		t.Error("an empty Localhost profile name was accepted")
	}
}
