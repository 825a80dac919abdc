// Package falcotest runs a stand-in for Falco's gRPC server in tests: the
// real falco.outputs service (client-go's generated types) on a unix socket,
// answering each subscription request with the events queued so far, as
// Falco does.
package falcotest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"google.golang.org/grpc"
)

// Server is the stand-in. Publish queues events; Stop and Start simulate
// Falco restarting on the same socket.
type Server struct {
	outputs.UnimplementedServiceServer
	Path  string
	queue chan *outputs.Response
	srv   *grpc.Server
	done  chan struct{}
}

// Start serves on the unix socket at path until the test ends.
func Start(t testing.TB, path string) *Server {
	t.Helper()
	s := &Server{Path: path, queue: make(chan *outputs.Response, 1<<20)}
	s.Restart(t)
	t.Cleanup(s.Stop)
	return s
}

// Restart serves again after Stop (a new process of Falco would).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	_ = os.Remove(s.Path)
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		t.Fatalf("falco stand-in: %v", err)
	}
	s.srv = grpc.NewServer()
	outputs.RegisterServiceServer(s.srv, s)
	s.done = make(chan struct{})
	go func() { _ = s.srv.Serve(ln); close(s.done) }()
}

// Stop ends the server and its streams at once, as a crash of Falco would.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Stop()
		<-s.done
		s.srv = nil
	}
}

// Publish queues one event for subscribers.
func (s *Server) Publish(r *outputs.Response) { s.queue <- r }

// Queued returns how many events wait for a subscriber's request.
func (s *Server) Queued() int { return len(s.queue) }

// Sub answers each request on the stream with every queued event.
func (s *Server) Sub(stream outputs.Service_SubServer) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := s.drain(stream); err != nil {
			return err
		}
	}
}

// Get sends every queued event and ends the stream.
func (s *Server) Get(_ *outputs.Request, stream outputs.Service_GetServer) error {
	return s.drain(stream)
}

func (s *Server) drain(stream interface{ Send(*outputs.Response) error }) error {
	for {
		select {
		case r := <-s.queue:
			if err := stream.Send(r); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}
