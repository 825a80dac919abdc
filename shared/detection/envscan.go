package detection

import (
	"github.com/palisade-sec/palisade/shared/jsonscan"
	"github.com/palisade-sec/palisade/shared/model"
)

// scanEnvelope decodes b as json.Unmarshal decodes it into a
// model.Envelope, for the shape the sensor writes: objects of the
// envelope's own keys, each once and spelled exactly, with values of their
// field's type. ok is false for anything else (an unknown, differently
// cased or repeated key, null, a number that is not a plain int, a string
// encoding/json would repair, malformed JSON, …): the caller then asks
// json.Unmarshal, so that values and errors are always its own.
//
// Decoding runs for every event of every batch, and encoding/json's
// reflection was a sixth of the handler's time. The strings decoded share
// one copy of b.
func scanEnvelope(b []byte) (e model.Envelope, ok bool) {
	var scratch [512]byte
	s := jsonscan.Scanner{B: b, Text: string(b), Buf: scratch[:0]}
	ok = s.Fields(envelopeNames, false, func(i int) bool {
		switch i {
		case 0:
			return s.Int(&e.Version)
		case 1:
			return s.String(&e.ID)
		case 2:
			return s.String(&e.Cluster)
		case 3:
			return s.String(&e.Node)
		case 4:
			return s.String(&e.Source)
		case 5:
			return s.Time(&e.Time)
		case 6:
			return s.String(&e.Rule)
		case 7:
			return s.String(&e.Priority)
		case 8:
			return s.String(&e.Output)
		case 9:
			return s.String(&e.Hostname)
		case 10:
			return s.StringMap(&e.OutputFields)
		case 11:
			return s.Strings(&e.Tags)
		case 12:
			e.Container = &model.ContainerRef{}
			return scanContainer(&s, e.Container)
		case 13:
			e.K8s = &model.K8sRef{}
			return scanK8s(&s, e.K8s)
		}
		return false
	})
	return e, ok && s.SkipSpace() == len(b)
}

var (
	envelopeNames = []string{"v", "id", "cluster", "node", "source", "time", "rule", "priority", "output",
		"hostname", "outputFields", "tags", "container", "k8s"}
	containerNames = []string{"id", "name", "image", "tag", "imageDigest", "privileged"}
	k8sNames       = []string{"namespace", "pod", "workload"}
)

func scanContainer(s *jsonscan.Scanner, c *model.ContainerRef) bool {
	return s.Fields(containerNames, false, func(i int) bool {
		switch i {
		case 0:
			return s.String(&c.ID)
		case 1:
			return s.String(&c.Name)
		case 2:
			return s.String(&c.Image)
		case 3:
			return s.String(&c.Tag)
		case 4:
			return s.String(&c.ImageDigest)
		case 5:
			return s.Bool(&c.Privileged)
		}
		return false
	})
}

func scanK8s(s *jsonscan.Scanner, k *model.K8sRef) bool {
	return s.Fields(k8sNames, false, func(i int) bool {
		switch i {
		case 0:
			return s.String(&k.Namespace)
		case 1:
			return s.String(&k.Pod)
		case 2:
			return s.String(&k.Workload)
		}
		return false
	})
}
