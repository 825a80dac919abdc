package falco

import "github.com/palisade-sec/palisade/shared/falcoevent"

// Receiver takes what the inputs receive. Receive must not block for long:
// the inputs call it on Falco's delivery path.
type Receiver interface {
	// Receive takes one decoded event; input names the input ("grpc", "http").
	Receive(ev falcoevent.Event, input string)
	// Invalid counts one input that could not be decoded.
	Invalid(input string, err error)
}
