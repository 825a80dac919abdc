package kubeapply

import (
	"strings"
	"testing"
)

func TestHardeningAllowsOnlySaferSettings(t *testing.T) {
	ok := []string{
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"containers":[{"name":"app","securityContext":{"privileged":false,"allowPrivilegeEscalation":false,"runAsNonRoot":true,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]},"seccompProfile":{"type":"RuntimeDefault"}}}]}}}}`,
		`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"a","namespace":"b"},"spec":{"template":{"spec":{"hostPID":false,"hostIPC":false,"automountServiceAccountToken":false}}}}`,
		`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"a","namespace":"b"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"name":"i","securityContext":{"appArmorProfile":{"type":"Localhost","localhostProfile":"x"}}}]}}}}}}`,
	}
	for _, p := range ok {
		if err := Hardening([]byte(p)); err != nil {
			t.Errorf("refused %s: %v", p, err)
		}
	}
	bad := map[string]string{
		"image":             `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil"}]}}}}`,
		"privileged":        `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}}}`,
		"add capability":    `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}}]}}}}`,
		"host network":      `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"hostNetwork":true}}}}`,
		"replicas":          `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"replicas":0}}`,
		"labels":            `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","labels":{"a":"b"}}}`,
		"volumes":           `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}}}`,
		"unconfined":        `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}}}}}}`,
		"run as root user":  `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"spec":{"securityContext":{"runAsUser":0}}}}}`,
		"template metadata": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"template":{"metadata":{"annotations":{"a":"b"}},"spec":{}}}}`,
		"a pod":             `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"},"spec":{}}`,
		"wrong apiVersion":  `{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"}}`,
		"no namespace":      `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}`,
		"not json":          `{`,
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			err := Hardening([]byte(p))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Error("empty reason")
			}
		})
	}
}
