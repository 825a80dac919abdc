package testenv

import (
	"fmt"
	"path/filepath"
	"testing"
)

// CosmosKey is an account key the loopback Cosmos DB server accepts (it
// accepts any well-formed key).
const CosmosKey = "cGFsaXNhZGUgbG9vcGJhY2sgdGVzdCBrZXksIG5vdCBhIHNlY3JldA==" // base64 of "palisade loopback test key, not a secret"

// StartCosmos starts @vercel/cosmosdb-server (through tests/servers/cosmos.js)
// on a free loopback port and returns its endpoint, https://127.0.0.1:PORT/.
// The server keeps everything in memory and uses a self-signed certificate;
// it stops when the test ends. Tests share it by using distinct database
// names.
func StartCosmos(t testing.TB) string {
	t.Helper()
	NodeModules(t)
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	script := filepath.Join(Root(t), "tests", "servers", "cosmos.js")
	Start(t, DialReady(addr), nil, "node", script, fmt.Sprint(port))
	return "https://" + addr + "/"
}
