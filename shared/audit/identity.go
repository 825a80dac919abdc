package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
)

// KindIdentityBaseline is the state kind of per-identity baselines.
const KindIdentityBaseline = "idbaseline"

// What an identity baseline learns, one kind of feature each, and how many
// features of each kind one identity keeps. An identity that uses more
// distinct values of a kind than its cap is too varied to judge on that
// kind: the kind is saturated and raises no alert until enough of its
// features are forgotten.
const (
	featOp       = iota // verb and resource (service accounts, Entra applications)
	featSecretNS        // namespace whose secrets were read ("*": all namespaces)
	featRegistry        // registry (and owner) of the images of workloads created or changed
	featSource          // source address /24 (IPv4) or /48 (IPv6) (Entra applications)
	numFeatKinds
)

var featCaps = [numFeatKinds]int{featOp: 20, featSecretNS: 6, featRegistry: 6, featSource: 8}

// maxFeatures is the most features one baseline holds.
const maxFeatures = 40

// forgetBelow is the decayed weight under which a feature is forgotten: a
// value used in one hour only is forgotten after log2(10) ≈ 3.3 half-lives.
const forgetBelow = 0.1

// IdentityBaseline is what one identity (a service account, a person, an
// Entra application or managed identity) of one cluster did: the features
// of its requests, each with the decayed number of hours it was seen in.
// It is bounded (at most 40 features of 12 bytes) and learns a feature at
// most once an hour, so that applying an event again changes nothing.
type IdentityBaseline struct {
	Cluster     string
	User        string
	Since       int64  // Unix seconds of the first request seen
	Hour        uint32 // the latest hour (since the epoch) the identity was active
	Hours       uint32 // distinct hours the identity was active
	Saturated   uint8  // a bit a feature kind
	ClusterWide bool   // requests outside any namespace were learned
	Features    []Feature
}

// Feature is one learned value of a feature kind.
type Feature struct {
	Key  uint32 // the kind in the top two bits, a hash of the value below
	Flag uint32 // hash of the event that raised an alert for it; 0 none
	// Hour is the last hour it was seen in, counted from the hour of the
	// baseline's first request (so 16 bits hold seven years).
	Hour uint16
	// Weight is the number of hours it was seen in, halved every
	// half-life since, in 64ths (at most 1023.98).
	Weight uint16
}

const weightUnit = 64

func weightOf(w float64) uint16 { return uint16(min(math.Round(w*weightUnit), math.MaxUint16)) }

func (f Feature) kind() int { return int(f.Key >> 30) }

// storedBaseline is the stored form: the features packed, 12 bytes each
// (base64 in JSON), so that a full baseline stays under 1 KB in the store.
type storedBaseline struct {
	Cluster     string `json:"cluster"`
	User        string `json:"user"`
	Since       int64  `json:"since"`
	Hour        uint32 `json:"hour"`
	Hours       uint32 `json:"hours"`
	Saturated   uint8  `json:"saturated,omitempty"`
	ClusterWide bool   `json:"clusterWide,omitempty"`
	Features    []byte `json:"features"`
}

const featureBytes = 12

func (b IdentityBaseline) stored() storedBaseline {
	buf := make([]byte, 0, len(b.Features)*featureBytes)
	for _, f := range b.Features {
		buf = binary.LittleEndian.AppendUint32(buf, f.Key)
		buf = binary.LittleEndian.AppendUint32(buf, f.Flag)
		buf = binary.LittleEndian.AppendUint16(buf, f.Hour)
		buf = binary.LittleEndian.AppendUint16(buf, f.Weight)
	}
	return storedBaseline{Cluster: b.Cluster, User: b.User, Since: b.Since, Hour: b.Hour, Hours: b.Hours,
		Saturated: b.Saturated, ClusterWide: b.ClusterWide, Features: buf}
}

func (s storedBaseline) baseline() (IdentityBaseline, error) {
	if len(s.Features)%featureBytes != 0 {
		return IdentityBaseline{}, fmt.Errorf("identity baseline of %s: %d feature bytes is not a multiple of %d", s.User, len(s.Features), featureBytes)
	}
	b := IdentityBaseline{Cluster: s.Cluster, User: s.User, Since: s.Since, Hour: s.Hour, Hours: s.Hours,
		Saturated: s.Saturated, ClusterWide: s.ClusterWide, Features: make([]Feature, len(s.Features)/featureBytes)}
	for i := range b.Features {
		p := s.Features[i*featureBytes:]
		b.Features[i] = Feature{Key: binary.LittleEndian.Uint32(p), Flag: binary.LittleEndian.Uint32(p[4:]),
			Hour: binary.LittleEndian.Uint16(p[8:]), Weight: binary.LittleEndian.Uint16(p[10:])}
	}
	return b, nil
}

// IdentityOptions configure Identities. Zero values take the defaults noted.
type IdentityOptions struct {
	// Learning is how long after an identity's first request its baseline
	// is only learned; default 24h.
	Learning time.Duration
	// MinActiveHours is how many distinct hours an identity must have been
	// active in before its baseline raises alerts; default 3.
	MinActiveHours int
	// HalfLife is how long it takes a learned value's weight to halve when
	// it is not seen again; default 168h (a week). A value seen in one hour
	// only is forgotten after about 3.3 half-lives, and so is the baseline
	// of an identity no longer seen (its stored item expires).
	HalfLife time.Duration
	// MaxCached bounds the baselines an instance keeps in memory; default
	// 20,000.
	MaxCached int
	// Now is the clock of the stored items' update times; nil: time.Now.
	Now func() time.Time
}

func (o *IdentityOptions) defaults() {
	if o.Learning == 0 {
		o.Learning = 24 * time.Hour
	}
	if o.MinActiveHours <= 0 {
		o.MinActiveHours = 3
	}
	if o.HalfLife <= 0 {
		o.HalfLife = 168 * time.Hour
	}
	if o.MaxCached <= 0 {
		o.MaxCached = 20_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Identities learns per-identity baselines from Kubernetes audit events
// and raises the learned (anomaly) alert types once an identity's learning
// period is over: AnomalousSecretAccess, ServiceAccountRareOperation,
// ServiceAccountPermissionAnomaly, AnomalousPodDeployment and
// AbnormalMiActivity. Baselines are stored in the state container and kept
// in memory between invocations (statecache); it is safe for concurrent
// invocations.
type Identities struct {
	st       store.Store
	opt      IdentityOptions
	halfLife float64 // hours
	cache    *statecache.Cache[IdentityBaseline]
}

// NewIdentities returns identity baselines stored in st's state container.
func NewIdentities(st store.Store, opts IdentityOptions) *Identities {
	opts.defaults()
	halfLife := opts.HalfLife.Hours()
	// The item outlives its last write by the time a value seen once takes
	// to be forgotten: after that it holds nothing worth keeping.
	ttl := int(math.Ceil(halfLife*math.Log2(1/forgetBelow))) * 3600
	now := opts.Now
	codec := statecache.Codec[IdentityBaseline]{
		Decode: func(raw []byte) (IdentityBaseline, error) {
			var st model.State
			var sb storedBaseline
			if err := json.Unmarshal(raw, &st); err != nil {
				return IdentityBaseline{}, err
			}
			if err := json.Unmarshal(st.Data, &sb); err != nil {
				return IdentityBaseline{}, err
			}
			return sb.baseline()
		},
		Encode: func(_, id string, b IdentityBaseline) (any, error) {
			data, err := json.Marshal(b.stored())
			if err != nil {
				return nil, err
			}
			return model.State{ID: id, Kind: KindIdentityBaseline, UpdatedAt: now().UTC(), Data: data, TTL: ttl}, nil
		},
	}
	return &Identities{st: st, opt: opts, halfLife: halfLife,
		cache: statecache.New(store.State, codec, statecache.Options{MaxEntries: opts.MaxCached, Stage: detection.StateStage})}
}

// IdentityBaselineID is the state id of an identity's baseline.
func IdentityBaselineID(cluster, user string) string {
	return model.HashID(KindIdentityBaseline, cluster, user)
}

// Observation is what an identity baseline learns from one audit event.
type Observation struct {
	Cluster, User, EventID                             string
	Pos                                                detection.Position
	At                                                 time.Time
	Verb, Group, Resource, Subresource, Namespace, URI string
	Source, UserAgent                                  string
	Code                                               int
	// Controller marks a request of one of the controller manager's own
	// service accounts (kube-system, kube-controller-manager's user agent):
	// they act on whatever the cluster's objects ask for, so they have no
	// baseline.
	Controller bool
	// Images are the images of a workload the request created or changed.
	Images []string
	// Grant is set for a role binding created or changed.
	Grant *Grant
}

// Grant is a role binding's grant to service accounts.
type Grant struct {
	Binding     string   // resource/name of the binding
	Role        string   // kind/name of the role bound
	ClusterWide bool     // a ClusterRoleBinding
	Subjects    []string // user names of the service accounts bound
}

// Observations collects the observations of a batch. The zero value is
// ready to use.
type Observations struct {
	// Pos is where the events added next were read.
	Pos  detection.Position
	list []Observation
}

// Len is the number of observations.
func (o *Observations) Len() int { return len(o.list) }

// List returns the observations.
func (o *Observations) List() []Observation { return o.list }

// identityKind classifies a user name for the baselines.
type identityKind int

const (
	notBaselined identityKind = iota
	serviceAccountIdentity
	entraAppIdentity // an Entra ID application or managed identity: its object id
	personIdentity
)

// kindOf says how a user is baselined. The cluster's own components
// (nodes, control plane, AKS) and anonymous requests are not: they are
// either fixed or not one identity.
func kindOf(user string) identityKind {
	switch {
	case strings.HasPrefix(user, "system:serviceaccount:"):
		return serviceAccountIdentity
	case user == "" || strings.HasPrefix(user, "system:") || systemUser(user):
		return notBaselined
	case isGUID(user):
		// Guard reports Entra ID applications and managed identities,
		// which have no user principal name, by their object id.
		return entraAppIdentity
	}
	return personIdentity
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// add records what the baselines learn from e, an event that Hits analysed.
func (o *Observations) add(cluster string, e *Event) {
	if e.Stage == "RequestReceived" || kindOf(e.User.Username) == notBaselined && !grantsServiceAccounts(e) {
		return
	}
	code := 0
	if e.ResponseStatus != nil {
		code = e.ResponseStatus.Code
	}
	if code >= 500 || code == 0 && e.Stage != "ResponseStarted" {
		return
	}
	ob := Observation{Cluster: cluster, User: e.User.Username, EventID: e.AuditID, Pos: o.Pos, At: eventTime(e), Verb: e.Verb,
		URI: e.RequestURI, UserAgent: e.UserAgent, Code: code, Controller: controllerManager(e.User.Username, e.UserAgent)}
	if ob.Controller && !grantsServiceAccounts(e) {
		return
	}
	if len(e.SourceIPs) > 0 {
		ob.Source = e.SourceIPs[0]
	}
	if r := e.ObjectRef; r != nil {
		ob.Group, ob.Resource, ob.Subresource, ob.Namespace = r.APIGroup, r.Resource, r.Subresource, r.Namespace
		if code < 400 && r.Subresource == "" && isChange(e.Verb) {
			switch {
			case workloadRes[r.Resource]:
				if obj := object(e); obj != nil {
					if spec := obj.podSpec(r.Resource); spec != nil {
						for _, c := range spec.allContainers() {
							ob.Images = append(ob.Images, c.Image)
						}
					}
				}
			case r.Resource == "rolebindings" || r.Resource == "clusterrolebindings":
				ob.Grant = grantOf(e, r)
			}
		}
	}
	o.list = append(o.list, ob)
}

// controllerManager reports a request of the controller manager's (or the
// cloud controller manager's) own service accounts.
func controllerManager(user, ua string) bool {
	return strings.HasPrefix(user, "system:serviceaccount:kube-system:") &&
		(strings.HasPrefix(ua, "kube-controller-manager/") || strings.HasPrefix(ua, "cloud-controller-manager/"))
}

// grantsServiceAccounts reports a role binding written by anyone, which
// the baselines of the service accounts it binds judge.
func grantsServiceAccounts(e *Event) bool {
	r := e.ObjectRef
	return r != nil && (r.Resource == "rolebindings" || r.Resource == "clusterrolebindings") && isChange(e.Verb)
}

func grantOf(e *Event, r *ObjectRef) *Grant {
	o := object(e)
	if o == nil || o.RoleRef == nil {
		return nil
	}
	g := &Grant{Binding: r.Resource + "/" + objectNameOf(r, o), Role: o.RoleRef.Kind + "/" + o.RoleRef.Name, ClusterWide: r.Resource == "clusterrolebindings"}
	for _, s := range o.Subjects {
		if s.Kind != "ServiceAccount" || s.Name == "" {
			continue
		}
		ns := s.Namespace
		if ns == "" {
			ns = r.Namespace
		}
		g.Subjects = append(g.Subjects, "system:serviceaccount:"+ns+":"+s.Name)
	}
	if len(g.Subjects) == 0 {
		return nil
	}
	return g
}

// broadRoles are the built-in roles that grant far more than one
// workload's service account needs.
var broadRoles = map[string]bool{"ClusterRole/cluster-admin": true, "ClusterRole/admin": true, "ClusterRole/edit": true, "ClusterRole/system:masters": true}

// Observe updates the baselines from obs in attempts of its own and
// returns the hits; analyzeaudit stages them in its invocation with Stage.
func (ids *Identities) Observe(ctx context.Context, obs []Observation) ([]detection.Hit, error) {
	var hits []detection.Hit
	err := statecache.Run(ctx, ids.st, 8, func(tx *statecache.Tx) error {
		var err error
		hits, err = ids.Stage(ctx, tx, obs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update identity baselines: %w", err)
	}
	return hits, nil
}

// Stage stages in tx the baseline changes that obs make, at most one write
// an identity, and returns the anomaly hits of identities whose learning
// is over. Applying the same observations again changes nothing and
// returns the same hits.
func (ids *Identities) Stage(ctx context.Context, tx *statecache.Tx, obs []Observation) ([]detection.Hit, error) {
	type group struct {
		cluster, user, id string
		obs               []*Observation
	}
	type who struct{ cluster, user string }
	groups := map[who]*group{}
	var order []*group
	var grants []*Observation
	need := func(cluster, user string) *group {
		g, ok := groups[who{cluster, user}]
		if !ok {
			g = &group{cluster: cluster, user: user, id: IdentityBaselineID(cluster, user)}
			groups[who{cluster, user}] = g
			order = append(order, g)
		}
		return g
	}
	for i := range obs {
		o := &obs[i]
		if kindOf(o.User) != notBaselined && !o.Controller {
			g := need(o.Cluster, o.User)
			g.obs = append(g.obs, o)
		}
		if o.Grant != nil {
			grants = append(grants, o)
			for _, s := range o.Grant.Subjects {
				need(o.Cluster, s)
			}
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	keys := make([]store.Key, len(order))
	for i, g := range order {
		keys[i] = store.Key{PK: KindIdentityBaseline, ID: g.id}
	}
	if err := statecache.Prefetch(ctx, tx, ids.cache, keys); err != nil {
		return nil, fmt.Errorf("read identity baselines: %w", err)
	}
	var hits []detection.Hit
	for _, g := range order {
		if len(g.obs) == 0 {
			continue
		}
		sort.SliceStable(g.obs, func(i, j int) bool { return g.obs[i].At.Before(g.obs[j].At) })
		var found []detection.Hit
		_, err := statecache.Update(ctx, tx, ids.cache, KindIdentityBaseline, g.id, func(cur IdentityBaseline, ok bool) (IdentityBaseline, bool) {
			if !ok {
				cur = IdentityBaseline{Cluster: g.cluster, User: g.user, Since: g.obs[0].At.Unix()}
			}
			next, h, changed := ids.apply(cur, g.obs)
			found = h
			return next, changed || !ok
		})
		if err != nil {
			return nil, fmt.Errorf("identity baseline of %s: %w", g.user, err)
		}
		hits = append(hits, found...)
	}
	// A grant is judged against the baselines of the accounts it binds as
	// this attempt sees them; it changes none.
	for _, o := range grants {
		for _, s := range o.Grant.Subjects {
			b, ok, err := statecache.Get(ctx, tx, ids.cache, KindIdentityBaseline, IdentityBaselineID(o.Cluster, s))
			if err != nil {
				return nil, fmt.Errorf("identity baseline of %s: %w", s, err)
			}
			if ok && ids.mature(&b, o.At) {
				if why := excessiveGrant(&b, o.Grant); why != "" {
					h := ids.hit("ServiceAccountPermissionAnomaly", o, "user/"+s, "serviceAccount", s, "binding", o.Grant.Binding,
						"role", o.Grant.Role, "reason", why, "baselineSince", time.Unix(b.Since, 0).UTC().Format(time.RFC3339))
					hits = append(hits, h)
				}
			}
		}
	}
	return hits, nil
}

// excessiveGrant explains why a grant gives a service account more than
// its baseline shows it uses, or returns "".
func excessiveGrant(b *IdentityBaseline, g *Grant) string {
	switch {
	case broadRoles[g.Role]:
		return "the built-in role " + g.Role + " grants far more than the operations learned"
	case g.ClusterWide && !b.ClusterWide:
		return "a cluster-wide binding for an account whose learned requests all stayed within namespaces"
	}
	return ""
}

func (ids *Identities) mature(b *IdentityBaseline, at time.Time) bool {
	return at.Unix()-b.Since >= int64(ids.opt.Learning/time.Second) && int(b.Hours) >= ids.opt.MinActiveHours
}

// decayed is f's weight at hour h (counted as Feature.Hour is).
func (ids *Identities) decayed(f Feature, h uint16) float64 {
	w := float64(f.Weight) / weightUnit
	if h <= f.Hour {
		return w
	}
	return w * math.Exp2(-float64(h-f.Hour)/ids.halfLife)
}

// featureHour is the hour of Unix time at counted from the hour of since.
func featureHour(since, at int64) uint16 {
	return uint16(min(max(at/3600-since/3600, 0), math.MaxUint16))
}

// feature is one value of a feature kind that an observation has. The
// value of an operation is spelled out only for an alert.
type feature struct {
	kind  int
	key   uint32
	value string
}

// featuresOf lists the features of o for an identity of kind k.
func featuresOf(k identityKind, o *Observation, buf []feature) []feature {
	out := buf[:0]
	if o.Resource != "" && (k == serviceAccountIdentity || k == entraAppIdentity) {
		out = append(out, feature{kind: featOp, key: featureKey(featOp, o.Verb, " ", o.Resource, ".", o.Group, "/", o.Subresource)})
	}
	if o.Resource == "secrets" && o.Subresource == "" && isRead(o.Verb) && o.Code < 400 {
		ns := o.Namespace
		if ns == "" {
			ns = "*"
		}
		out = append(out, feature{kind: featSecretNS, key: featureKey(featSecretNS, ns), value: ns})
	}
	if len(o.Images) > 0 && !systemUser(o.User) {
		for _, img := range o.Images {
			reg := registryOf(img)
			out = append(out, feature{kind: featRegistry, key: featureKey(featRegistry, reg), value: reg})
		}
	}
	if k == entraAppIdentity {
		if p := sourcePrefix(o.Source); p != "" {
			out = append(out, feature{kind: featSource, key: featureKey(featSource, p), value: p})
		}
	}
	return out
}

func operation(o *Observation) string {
	s := o.Verb + " " + o.Resource
	if o.Group != "" {
		s = o.Verb + " " + o.Resource + "." + o.Group
	}
	if o.Subresource != "" {
		s += "/" + o.Subresource
	}
	return s
}

// registryOf is the registry of an image, with the owner (the first path
// element) on shared registries: "nginx" is docker.io/library, and
// "ghcr.io/fluxcd/source-controller" ghcr.io/fluxcd, while
// "shopacr.azurecr.io/shop/web" is shopacr.azurecr.io.
func registryOf(image string) string {
	ref := strings.ToLower(image)
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	host := "docker.io"
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		host, parts = parts[0], parts[1:]
	}
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	if strings.HasSuffix(host, ".azurecr.io") {
		return host
	}
	owner := "library"
	if len(parts) > 1 {
		owner = parts[0]
	} else if host != "docker.io" {
		return host
	}
	return host + "/" + owner
}

// sourcePrefix is the network of a source address: its /24 (IPv4) or /48
// (IPv6); "" when it is not an address.
func sourcePrefix(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// featureKey is the kind and the FNV-1a hash of the concatenated parts.
func featureKey(kind int, parts ...string) uint32 {
	h := uint32(2166136261)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint32(p[i])
			h *= 16777619
		}
	}
	return uint32(kind)<<30 | h&(1<<30-1)
}

// eventFlag is the non-zero hash of an event id that marks the feature it
// raised an alert for.
func eventFlag(id string) uint32 {
	f := featureKey(0, id)
	if f == 0 {
		f = 1
	}
	return f
}

// apply learns or checks each observation against cur, which it does not
// modify: it returns the baseline with its changes (a copy when there are
// any), the hits, and whether there were changes.
func (ids *Identities) apply(cur IdentityBaseline, obs []*Observation) (next IdentityBaseline, hits []detection.Hit, changed bool) {
	next = cur
	cloned := false
	edit := func() {
		if !cloned {
			next.Features = slices.Clone(cur.Features)
			cloned = true
		}
		changed = true
	}
	k := kindOf(cur.User)
	var buf [8]feature
	for _, o := range obs {
		at := o.At.Unix()
		if at < 0 {
			continue
		}
		abs, h := uint32(at/3600), featureHour(next.Since, at)
		mature := ids.mature(&next, o.At)
		flag := eventFlag(o.EventID)
		var raised [numFeatKinds]bool
		for _, ft := range featuresOf(k, o, buf[:0]) {
			key := ft.key
			i := slices.IndexFunc(next.Features, func(f Feature) bool { return f.Key == key })
			if i >= 0 && ids.decayed(next.Features[i], h) >= forgetBelow {
				f := next.Features[i]
				if f.Flag == flag && !raised[ft.kind] {
					hits = append(hits, ids.anomaly(k, ft, o, &next))
					raised[ft.kind] = true
				}
				if h > f.Hour {
					edit()
					next.Features[i] = Feature{Key: key, Hour: h, Weight: weightOf(ids.decayed(f, h) + 1), Flag: f.Flag}
				}
				continue
			}
			nf := Feature{Key: key, Hour: h, Weight: weightUnit}
			if mature && next.Saturated&(1<<ft.kind) == 0 && alerting(k, ft.kind) && !raised[ft.kind] {
				hits = append(hits, ids.anomaly(k, ft, o, &next))
				raised[ft.kind] = true
				nf.Flag = flag
			}
			edit()
			if i >= 0 {
				next.Features[i] = nf // forgotten: learned afresh
				continue
			}
			ids.insert(&next, nf)
		}
		if o.Namespace == "" && o.Resource != "" && !next.ClusterWide && o.Code < 400 {
			edit()
			next.ClusterWide = true
		}
		if abs > next.Hour {
			edit()
			next.Hour, next.Hours = abs, next.Hours+1
		}
	}
	return next, hits, changed
}

// insert adds f to b's features, over a forgotten feature of its kind when
// the kind is at its cap; when none is forgotten the kind is saturated and
// f is not kept. A saturated kind becomes usable again once no more than
// half its cap is remembered.
func (ids *Identities) insert(b *IdentityBaseline, f Feature) {
	kind := f.kind()
	n, forgotten := 0, -1
	for i, x := range b.Features {
		if x.kind() != kind {
			continue
		}
		if ids.decayed(x, f.Hour) < forgetBelow {
			forgotten = i
			continue
		}
		n++
	}
	if b.Saturated&(1<<kind) != 0 && n <= featCaps[kind]/2 {
		b.Saturated &^= 1 << kind
	}
	switch {
	case forgotten >= 0:
		b.Features[forgotten] = f
	case n < featCaps[kind]:
		if len(b.Features) == cap(b.Features) {
			// Grow a little at a time: most baselines stay small.
			grown := make([]Feature, len(b.Features), len(b.Features)+min(4, maxFeatures-len(b.Features)))
			copy(grown, b.Features)
			b.Features = grown
		}
		b.Features = append(b.Features, f)
	default:
		b.Saturated |= 1 << kind
	}
}

// alerting says whether a new value of a feature kind raises an alert for
// an identity of kind k.
func alerting(k identityKind, kind int) bool {
	switch kind {
	case featOp:
		return k == serviceAccountIdentity || k == entraAppIdentity
	case featSource:
		return k == entraAppIdentity
	}
	return true
}

var anomalyTypes = [numFeatKinds]string{featOp: "ServiceAccountRareOperation", featSecretNS: "AnomalousSecretAccess",
	featRegistry: "AnomalousPodDeployment", featSource: "AbnormalMiActivity"}

var anomalyEvidence = [numFeatKinds]string{featOp: "operation", featSecretNS: "secretNamespace", featRegistry: "registry", featSource: "sourceNetwork"}

func (ids *Identities) anomaly(k identityKind, ft feature, o *Observation, b *IdentityBaseline) detection.Hit {
	typ, value := anomalyTypes[ft.kind], ft.value
	if ft.kind == featOp {
		value = operation(o)
	}
	if k == entraAppIdentity && ft.kind == featOp {
		typ = "AbnormalMiActivity"
	}
	learned := 0
	for _, f := range b.Features {
		if f.kind() == ft.kind {
			learned++
		}
	}
	return ids.hit(typ, o, "user/"+o.User, anomalyEvidence[ft.kind], value, "learnedValues", strconv.Itoa(learned),
		"baselineSince", time.Unix(b.Since, 0).UTC().Format(time.RFC3339))
}

func (ids *Identities) hit(typ string, o *Observation, entity string, extra ...string) detection.Hit {
	h := detection.Hit{Type: typ, Entity: entity, Cluster: o.Cluster, Namespace: o.Namespace, User: o.User, EventID: o.EventID,
		Pos: o.Pos, Time: o.At.UnixNano(), Rule: o.Verb + " " + resourceName(&ObjectRef{Resource: o.Resource, Subresource: o.Subresource})}
	h.Evidence = make(map[string]string, 6+len(extra)/2)
	h.Evidence["verb"], h.Evidence["requestURI"], h.Evidence["user"] = o.Verb, truncate(o.URI, 512), o.User
	h.Evidence["userAgent"], h.Evidence["responseCode"], h.Evidence["sourceIP"] = truncate(o.UserAgent, 256), strconv.Itoa(o.Code), o.Source
	for i := 0; i+1 < len(extra); i += 2 {
		h.Evidence[extra[i]] = extra[i+1]
	}
	return h
}
