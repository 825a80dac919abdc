package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"
)

// The images the chart runs.
const (
	sensorImageName = "palisade-sensor"
	agentImageName  = "palisade-agent"
)

// ErrOutputs is returned when the Terraform outputs lack what the
// deployment needs or hold something unexpected.
var ErrOutputs = errors.New("terraform outputs")

// tfOutputs is what `tofu output -json` prints: each output's value by name.
type tfOutputs struct {
	file   string
	values map[string]json.RawMessage
}

func readOutputs(file string) (tfOutputs, error) {
	if file == "" {
		return tfOutputs{}, fmt.Errorf("%w: -outputs (a `tofu output -json` file) is required", errUsage)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return tfOutputs{}, err
	}
	var raw map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return tfOutputs{}, fmt.Errorf("%w: %s is not `tofu output -json`: %v", ErrOutputs, file, err)
	}
	o := tfOutputs{file: file, values: map[string]json.RawMessage{}}
	for k, v := range raw {
		o.values[k] = v.Value
	}
	return o, nil
}

// decode reads output name into v.
func (o tfOutputs) decode(name string, v any) error {
	raw, ok := o.values[name]
	if !ok || len(raw) == 0 {
		return fmt.Errorf("%w: %s has no output %q: apply this version's Terraform first", ErrOutputs, o.file, name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: output %q in %s: %v", ErrOutputs, name, o.file, err)
	}
	return nil
}

// str is a string output that must not be empty.
func (o tfOutputs) str(name string) (string, error) {
	var s string
	if err := o.decode(name, &s); err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%w: output %q in %s is empty", ErrOutputs, name, o.file)
	}
	return s, nil
}

// cluster is one AKS cluster the sensor chart is installed in.
type cluster struct {
	Key, ID                           string
	Subscription, ResourceGroup, Name string
	Namespace                         string // of the sensor's service account
	ServiceAccount                    string
}

var clusterKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// clusters reads aks_cluster_ids and sensor_service_account, in key order.
func (o tfOutputs) clusters() ([]cluster, error) {
	var ids map[string]string
	if err := o.decode("aks_cluster_ids", &ids); err != nil {
		return nil, err
	}
	var sa struct{ Namespace, Name string }
	if err := o.decode("sensor_service_account", &sa); err != nil {
		return nil, err
	}
	if sa.Namespace == "" || sa.Name == "" {
		return nil, fmt.Errorf("%w: output sensor_service_account in %s needs namespace and name", ErrOutputs, o.file)
	}
	var out []cluster
	for key, id := range ids {
		if !clusterKey.MatchString(key) {
			return nil, fmt.Errorf("%w: cluster key %q: use letters, digits, '.', '_' and '-' (it names files)", ErrOutputs, key)
		}
		sub, rg, n, err := parseClusterID(id)
		if err != nil {
			return nil, fmt.Errorf("%w: cluster %s: %v", ErrOutputs, key, err)
		}
		out = append(out, cluster{Key: key, ID: id, Subscription: sub, ResourceGroup: rg, Name: n, Namespace: sa.Namespace, ServiceAccount: sa.Name})
	}
	slices.SortFunc(out, func(a, b cluster) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// parseClusterID splits
// /subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/NAME.
func parseClusterID(id string) (sub, rg, name string, err error) {
	p := strings.Split(id, "/")
	if len(p) != 9 || p[0] != "" || !strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.ContainerService") ||
		!strings.EqualFold(p[7], "managedClusters") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", fmt.Errorf("%q is not an AKS resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.ContainerService/managedClusters/…)", id)
	}
	return p[2], p[4], p[8], nil
}

// writeClusters prints "KEY SUBSCRIPTION RESOURCE_GROUP NAME NAMESPACE",
// tab-separated, one cluster a line.
func writeClusters(w io.Writer, cs []cluster) error {
	for _, c := range cs {
		if _, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Key, c.Subscription, c.ResourceGroup, c.Name, c.Namespace); err != nil {
			return err
		}
	}
	return nil
}

// valuesOptions say where values files go and which sensor image they name.
type valuesOptions struct {
	Out         string
	ImagesDir   string
	Prefix      string
	SensorImage string // REPO:TAG or REPO@DIGEST instead of the built image
	AgentImage  string // the same for the agent
}

// imageRef is the image part of the chart's values.
type imageRef struct {
	Repository string `yaml:"repository"`
	Tag        string `yaml:"tag,omitempty"`
	Digest     string `yaml:"digest,omitempty"`
}

// sensorValues are the chart values the deployment decides; everything else
// keeps the chart's defaults. Field order is the file's order.
type sensorValues struct {
	ClusterID      string   `yaml:"clusterId"`
	Image          imageRef `yaml:"image"`
	ServiceAccount struct {
		Name string `yaml:"name"`
	} `yaml:"serviceAccount"`
	EventHubs struct {
		Namespace        string `yaml:"namespace"`
		HubName          string `yaml:"hubName"`
		WorkloadIdentity struct {
			Enabled  bool   `yaml:"enabled"`
			ClientID string `yaml:"clientId"`
		} `yaml:"workloadIdentity"`
	} `yaml:"eventHubs"`
	Agent struct {
		Enabled        bool     `yaml:"enabled"`
		Image          imageRef `yaml:"image"`
		ServiceAccount struct {
			Name string `yaml:"name"`
		} `yaml:"serviceAccount"`
		WorkloadIdentity struct {
			ClientID string `yaml:"clientId"`
		} `yaml:"workloadIdentity"`
		HubName string `yaml:"hubName"`
	} `yaml:"agent"`
}

// builtImage is the image the values name: the override (from the
// setting env), or the built image at its digest in the deployment's
// registry.
func builtImage(o tfOutputs, opts valuesOptions, name, override, env string) (imageRef, error) {
	if override != "" {
		return parseImageRef(override, env)
	}
	file := filepath.Join(opts.ImagesDir, name+".tar")
	if _, err := os.Stat(file); err != nil {
		return imageRef{}, fmt.Errorf("no %s image (%v): run make images, or set %s", name, err, env)
	}
	d, err := layoutDigest(file)
	if err != nil {
		return imageRef{}, err
	}
	registry, err := o.str("image_registry_login_server")
	if err != nil {
		return imageRef{}, err
	}
	return imageRef{Repository: repository(registry, opts.Prefix, name), Digest: d.Digest.String()}, nil
}

// parseImageRef splits REPO@sha256:… or REPO:TAG (a port in the registry
// host is not a tag); env names the setting it came from.
func parseImageRef(s, env string) (imageRef, error) {
	if _, err := name.ParseReference(s, name.StrictValidation); err != nil {
		return imageRef{}, fmt.Errorf("%s %q: want REPOSITORY:TAG or REPOSITORY@sha256:…: %v", env, s, err)
	}
	if repo, digest, ok := strings.Cut(s, "@"); ok {
		return imageRef{Repository: repo, Digest: digest}, nil
	}
	i := strings.LastIndex(s, ":")
	return imageRef{Repository: s[:i], Tag: s[i+1:]}, nil
}

// writeValues writes one values file per cluster into opts.Out and prints
// the clusters as writeClusters does, with the file as a sixth column.
func writeValues(o tfOutputs, opts valuesOptions, stdout io.Writer) error {
	cs, err := o.clusters()
	if err != nil {
		return err
	}
	var v sensorValues
	if v.Image, err = builtImage(o, opts, sensorImageName, opts.SensorImage, "PALISADE_SENSOR_IMAGE"); err != nil {
		return err
	}
	if v.Agent.Image, err = builtImage(o, opts, agentImageName, opts.AgentImage, "PALISADE_AGENT_IMAGE"); err != nil {
		return err
	}
	v.Agent.Enabled = true
	if v.Agent.HubName, err = o.str("inventory_eventhub"); err != nil {
		return err
	}
	if v.Agent.WorkloadIdentity.ClientID, err = o.str("agent_client_id"); err != nil {
		return err
	}
	var agentSA struct{ Namespace, Name string }
	if err := o.decode("agent_service_account", &agentSA); err != nil {
		return err
	}
	var sensorSA struct{ Namespace string }
	if err := o.decode("sensor_service_account", &sensorSA); err != nil {
		return err
	}
	// One release installs both: the federated credentials must trust
	// service accounts of its one namespace.
	if agentSA.Name == "" || agentSA.Namespace != sensorSA.Namespace {
		return fmt.Errorf("%w: output agent_service_account in %s must name a service account in the sensor's namespace %q, got %+v",
			ErrOutputs, o.file, sensorSA.Namespace, agentSA)
	}
	v.Agent.ServiceAccount.Name = agentSA.Name
	if v.EventHubs.Namespace, err = o.str("eventhubs_namespace_fqdn"); err != nil {
		return err
	}
	if v.EventHubs.HubName, err = o.str("runtime_eventhub"); err != nil {
		return err
	}
	if v.EventHubs.WorkloadIdentity.ClientID, err = o.str("sensor_client_id"); err != nil {
		return err
	}
	v.EventHubs.WorkloadIdentity.Enabled = true
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return err
	}
	for _, c := range cs {
		v.ClusterID = c.ID
		v.ServiceAccount.Name = c.ServiceAccount
		b, err := valuesFile(c, v)
		if err != nil {
			return err
		}
		file := filepath.Join(opts.Out, "palisade-sensor-"+c.Key+".yaml")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Key, c.Subscription, c.ResourceGroup, c.Name, c.Namespace, file); err != nil {
			return err
		}
	}
	return nil
}

// valuesFile renders v as the YAML file helm reads with -f.
func valuesFile(c cluster, v sensorValues) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# palisade-sensor values for cluster %s (%s), written by infra/deploy.sh\n", c.Key, c.Name)
	fmt.Fprintf(&buf, "# from `tofu output -json`; every deployment rewrites it.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
