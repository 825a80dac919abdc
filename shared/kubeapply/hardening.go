package kubeapply

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Hardening checks that a patch only makes a workload safer: besides what
// names the object, it may set only the fields the posture checks'
// patches set, each to its safe value (privileged false, runAsNonRoot true,
// capabilities dropped, a RuntimeDefault or Localhost seccomp or AppArmor
// profile, host namespaces off, no service-account token). A patch that
// would change anything else (an image, a command, a volume, a label) is
// refused, so whoever can answer the agent's requests for instructions
// cannot use them to run something else in the cluster.
func Hardening(patch []byte) error {
	t, err := ParseTarget(patch)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(patch, &obj); err != nil {
		return fmt.Errorf("decode patch: %w", err)
	}
	path := []string{"spec", "template", "spec"}
	if t.Kind == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	for k, v := range obj {
		switch k {
		case "apiVersion", "kind":
		case "metadata":
			if err := only(v, "metadata", "name", "namespace"); err != nil {
				return err
			}
		case path[0]:
		default:
			return fmt.Errorf("patch sets %s", k)
		}
	}
	spec := obj[path[0]]
	for i := 1; i < len(path); i++ {
		m, ok := spec.(map[string]any)
		if !ok || len(m) != 1 {
			return fmt.Errorf("patch sets more than %v", path[:i+1])
		}
		if spec, ok = m[path[i]]; !ok {
			return fmt.Errorf("patch sets something other than %v", path[:i+1])
		}
	}
	pod, ok := spec.(map[string]any)
	if !ok {
		return fmt.Errorf("patch's pod spec is not an object")
	}
	for k, v := range pod {
		switch k {
		case "hostPID", "hostIPC", "hostNetwork", "automountServiceAccountToken":
			if v != false {
				return fmt.Errorf("patch sets %s to %v", k, v)
			}
		case "securityContext":
			if err := securityContext(v, "pod securityContext"); err != nil {
				return err
			}
		case "containers", "initContainers":
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("patch's %s is not a list", k)
			}
			for _, c := range list {
				m, ok := c.(map[string]any)
				if !ok {
					return fmt.Errorf("patch's %s holds a non-object", k)
				}
				for ck, cv := range m {
					switch ck {
					case "name":
					case "securityContext":
						if err := securityContext(cv, k+" securityContext"); err != nil {
							return err
						}
					default:
						return fmt.Errorf("patch sets %s[].%s", k, ck)
					}
				}
			}
		default:
			return fmt.Errorf("patch sets spec %s", k)
		}
	}
	return nil
}

// securityContext allows the hardening values of a (pod or container)
// security context.
func securityContext(v any, where string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not an object", where)
	}
	for k, x := range m {
		var err error
		switch k {
		case "privileged", "allowPrivilegeEscalation":
			err = want(x, false, where+"."+k)
		case "runAsNonRoot", "readOnlyRootFilesystem":
			err = want(x, true, where+"."+k)
		case "capabilities":
			err = only(x, where+".capabilities", "drop")
		case "seccompProfile", "appArmorProfile":
			p, ok := x.(map[string]any)
			if !ok || !slices.Contains([]any{"RuntimeDefault", "Localhost"}, p["type"]) {
				err = fmt.Errorf("%s.%s must be RuntimeDefault or Localhost", where, k)
			}
		default:
			err = fmt.Errorf("patch sets %s.%s", where, k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func want(v, safe any, what string) error {
	if v != safe {
		return fmt.Errorf("patch sets %s to %v", what, v)
	}
	return nil
}

// only allows the keys of an object.
func only(v any, what string, keys ...string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not an object", what)
	}
	for k := range m {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("patch sets %s.%s", what, k)
		}
	}
	return nil
}
