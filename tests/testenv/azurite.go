package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Development storage is what the connection string
// UseDevelopmentStorage=true stands for: the Azure Storage emulator's
// well-known account on its default loopback ports. The Functions host (the
// Azure Storage SDK for .NET) expands the shorthand so; the Go SDK does not
// know it, hence DevelopmentStorage.
const (
	DevStoreAccount = "devstoreaccount1"
	// DevStoreKey is the emulator's published, well-known account key.
	DevStoreKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	BlobAddr    = "127.0.0.1:10000"
	QueueAddr   = "127.0.0.1:10001"
	TableAddr   = "127.0.0.1:10002"
)

// DevelopmentStorage returns the explicit connection string of a storage
// connection string: UseDevelopmentStorage=true becomes development
// storage's endpoints, account and key; anything else is returned as is.
func DevelopmentStorage(conn string) string {
	if !strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(conn), ";"), "UseDevelopmentStorage=true") {
		return conn
	}
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://%s/%[1]s;QueueEndpoint=http://%s/%[1]s;TableEndpoint=http://%s/%[1]s;",
		DevStoreAccount, DevStoreKey, BlobAddr, QueueAddr, TableAddr)
}

// StartAzurite starts Azurite (the npm package in tests/node_modules), in
// memory, on development storage's ports: UseDevelopmentStorage=true
// names those ports and no other. Another test run on the machine may hold
// them for a while; StartAzurite waits up to two minutes for them.
func StartAzurite(t testing.TB) {
	t.Helper()
	script := filepath.Join(NodeModules(t), "azurite", "dist", "src", "azurite.js")
	deadline := time.Now().Add(2 * time.Minute)
	for !portsFree(BlobAddr, QueueAddr, TableAddr) {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: development storage ports %s, %s, %s stay in use", BlobAddr, QueueAddr, TableAddr)
		}
		time.Sleep(time.Second)
	}
	host := func(addr string) (string, string) { h, p, _ := net.SplitHostPort(addr); return h, p }
	bh, bp := host(BlobAddr)
	qh, qp := host(QueueAddr)
	th, tp := host(TableAddr)
	ready := func(ctx context.Context) error {
		return errors.Join(DialReady(BlobAddr)(ctx), DialReady(QueueAddr)(ctx), DialReady(TableAddr)(ctx))
	}
	// --skipApiVersionCheck: the Go SDK may speak a newer storage API
	// version than this Azurite release lists; the operations are the same.
	Start(t, ready, nil, "node", script, "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
		"--blobHost", bh, "--blobPort", bp, "--queueHost", qh, "--queuePort", qp, "--tableHost", th, "--tablePort", tp)
}

func portsFree(addrs ...string) bool {
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
