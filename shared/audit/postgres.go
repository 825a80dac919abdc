package audit

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
)

// postgresTrustEnv returns the environment setting that makes a PostgreSQL
// container accept any client without a password, or "": the official
// image's POSTGRES_HOST_AUTH_METHOD=trust, or Bitnami's
// ALLOW_EMPTY_PASSWORD=yes.
func postgresTrustEnv(c *container) string {
	for _, e := range c.Env {
		v := strings.ToLower(strings.TrimSpace(e.Value))
		switch {
		case e.Name == "POSTGRES_HOST_AUTH_METHOD" && v == "trust",
			e.Name == "ALLOW_EMPTY_PASSWORD" && v == "yes" && strings.Contains(strings.ToLower(c.Image), "postgres"):
			return e.Name + "=" + e.Value
		}
	}
	return ""
}

// postgresTrust returns a host-based authentication rule in the event's
// object that lets any network address log in without a password (method
// trust), or "". It reads pg_hba.conf text in ConfigMaps and the pg_hba
// lists of the CloudNativePG, Zalando and Crunchy operators' clusters.
func postgresTrust(e *Event) string {
	if r := e.ObjectRef; r.Resource == "clusters" && r.APIGroup != "postgresql.cnpg.io" {
		return ""
	}
	for _, raw := range [...]json.RawMessage{e.ResponseObject, e.RequestObject} {
		if len(raw) == 0 || raw[0] != '{' || !bytes.Contains(raw, []byte("trust")) {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		if line := findTrustLine(v, 0); line != "" {
			return line
		}
	}
	return ""
}

// findTrustLine walks a decoded JSON value for a broad trust rule.
func findTrustLine(v any, depth int) string {
	if depth > 32 {
		return ""
	}
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "trust") {
			return ""
		}
		for line := range strings.Lines(x) {
			if hbaTrustsAnyone(line) {
				return truncate(strings.TrimSpace(line), 256)
			}
		}
	case []any:
		for _, y := range x {
			if l := findTrustLine(y, depth+1); l != "" {
				return l
			}
		}
	case map[string]any:
		for _, y := range x {
			if l := findTrustLine(y, depth+1); l != "" {
				return l
			}
		}
	}
	return ""
}

// hbaTrustsAnyone reports whether one pg_hba.conf line admits TCP clients
// from any address with the trust method:
// "host DATABASE USER ADDRESS METHOD" or "host DATABASE USER IP MASK METHOD".
func hbaTrustsAnyone(line string) bool {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) < 5 {
		return false
	}
	switch f[0] {
	case "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc":
	default:
		return false
	}
	addr, method := f[3], f[4]
	if a, err := netip.ParseAddr(addr); err == nil {
		if len(f) < 6 {
			return false
		}
		m, err := netip.ParseAddr(f[4])
		if err != nil {
			return false
		}
		ones := 0
		for _, b := range m.AsSlice() {
			for ; b&0x80 != 0; b <<= 1 {
				ones++
			}
		}
		addr, method = netip.PrefixFrom(a, ones).String(), f[5]
	}
	if method != "trust" {
		return false
	}
	if addr == "all" {
		return true
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil {
		return false
	}
	return p.Addr().Is4() && p.Bits() <= 8 || p.Addr().Is6() && p.Bits() <= 16
}
