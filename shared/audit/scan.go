package audit

import (
	"encoding/json"
	"unsafe"

	"github.com/palisade-sec/palisade/shared/jsonscan"
)

// The hand scanners below decode diagnostic bodies and audit events as
// json.Unmarshal decodes them into Diagnostic and Event, for the shapes
// AKS writes: the fields' own keys, each once and spelled exactly, with
// values of their field's type, and any other keys (annotations of the
// record, "uid" and "extra" of a user, "metadata" of a status, …) skipped
// with their values validated. ok is false for anything else (a key that
// differs from a field's only in case, a repeated field, null, a number
// that is not a plain int, a string encoding/json would repair, malformed
// JSON, …): the caller then asks json.Unmarshal, so that values and errors
// are always its own.
//
// Decoding runs for every audit record, and encoding/json's reflection was
// over half of analyzeaudit's time.

var (
	diagnosticNames = []string{"records"}
	recordNames     = []string{"time", "resourceId", "category", "operationName", "properties"}
	propertiesNames = []string{"log"}
	eventNames      = []string{"kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user",
		"impersonatedUser", "sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject",
		"responseObject", "requestReceivedTimestamp", "stageTimestamp", "annotations"}
	userNames      = []string{"username", "groups"}
	objectRefNames = []string{"resource", "namespace", "name", "apiGroup", "apiVersion", "subresource"}
	statusNames    = []string{"code", "reason", "message"}
)

// scanDiagnostic is json.Unmarshal into a Diagnostic for the bodies AKS
// writes. The records' strings other than the log repeat from record to
// record (resource id, category, operation) and are shared.
func scanDiagnostic(b []byte) (d Diagnostic, ok bool) {
	s := diagScanner{Scanner: jsonscan.Scanner{B: b}}
	ok = s.Fields(diagnosticNames, true, func(int) bool {
		if !s.Next('[') {
			return false
		}
		d.Records = []Record{}
		if s.Next(']') {
			return true
		}
		for {
			d.Records = append(d.Records, Record{})
			if s.SkipSpace(); !s.record(&d.Records[len(d.Records)-1]) {
				return false
			}
			if s.Next(']') {
				return true
			}
			if !s.Next(',') {
				return false
			}
		}
	})
	return d, ok && s.SkipSpace() == len(b)
}

// diagScanner reads diagnostic records, remembering the last string of
// each repeating field.
type diagScanner struct {
	jsonscan.Scanner
	last [4]string
}

func (s *diagScanner) record(r *Record) bool {
	return s.Fields(recordNames, true, func(i int) bool {
		switch i {
		case 0:
			return s.String(&r.Time)
		case 1:
			return s.repeated(&r.ResourceID, &s.last[0])
		case 2:
			return s.repeated(&r.Category, &s.last[1])
		case 3:
			return s.repeated(&r.OperationName, &s.last[2])
		}
		return s.Fields(propertiesNames, true, func(int) bool { return s.String(&r.Properties.Log) })
	})
}

// repeated reads a string into p, reusing *last when it is the same.
func (s *diagScanner) repeated(p, last *string) bool {
	var n int
	var ok bool
	if s.Buf, n, ok = jsonscan.Unquote(s.Buf[:0], s.B[s.I:]); !ok {
		return false
	}
	s.I += n
	if string(s.Buf) != *last {
		*last = string(s.Buf)
	}
	*p = *last
	return true
}

// scanEvent is json.Unmarshal into an Event for the events the API server
// writes. text is b as a string: the event's unescaped strings are slices
// of it.
func scanEvent(b []byte, text string) (e Event, ok bool) {
	s := jsonscan.Scanner{B: b, Text: text}
	ok = s.Fields(eventNames, true, func(i int) bool {
		switch i {
		case 0:
			return s.String(&e.Kind)
		case 1:
			return s.String(&e.APIVersion)
		case 2:
			return s.String(&e.Level)
		case 3:
			return s.String(&e.AuditID)
		case 4:
			return s.String(&e.Stage)
		case 5:
			return s.String(&e.RequestURI)
		case 6:
			return s.String(&e.Verb)
		case 7:
			return scanUser(&s, &e.User)
		case 8:
			e.ImpersonatedUser = &UserInfo{}
			return scanUser(&s, e.ImpersonatedUser)
		case 9:
			return s.Strings(&e.SourceIPs)
		case 10:
			return s.String(&e.UserAgent)
		case 11:
			e.ObjectRef = &ObjectRef{}
			return scanObjectRef(&s, e.ObjectRef)
		case 12:
			e.ResponseStatus = &Status{}
			return scanStatus(&s, e.ResponseStatus)
		case 13:
			return scanRaw(&s, &e.RequestObject)
		case 14:
			return scanRaw(&s, &e.ResponseObject)
		case 15:
			return s.Time(&e.RequestReceivedTimestamp)
		case 16:
			return s.Time(&e.StageTimestamp)
		}
		return s.StringMap(&e.Annotations)
	})
	return e, ok && s.SkipSpace() == len(b)
}

func scanUser(s *jsonscan.Scanner, u *UserInfo) bool {
	return s.Fields(userNames, true, func(i int) bool {
		if i == 0 {
			return s.String(&u.Username)
		}
		return s.Strings(&u.Groups)
	})
}

func scanObjectRef(s *jsonscan.Scanner, o *ObjectRef) bool {
	return s.Fields(objectRefNames, true, func(i int) bool {
		return s.String([...]*string{&o.Resource, &o.Namespace, &o.Name, &o.APIGroup, &o.APIVersion, &o.Subresource}[i])
	})
}

func scanStatus(s *jsonscan.Scanner, st *Status) bool {
	return s.Fields(statusNames, true, func(i int) bool {
		switch i {
		case 0:
			return s.Int(&st.Code)
		case 1:
			return s.String(&st.Reason)
		}
		return s.String(&st.Message)
	})
}

// scanRaw reads a value other than null into a copy of its text, as
// json.RawMessage takes it.
func scanRaw(s *jsonscan.Scanner, p *json.RawMessage) bool {
	raw, ok := s.Raw()
	if !ok || string(raw) == "null" {
		return false
	}
	*p = append([]byte(nil), raw...)
	return true
}

// stringBytes is s as bytes, for reading only: the audit log of a record
// is scanned in place rather than copied.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
