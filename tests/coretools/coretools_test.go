// Package coretools checks what Azure Functions Core Tools (`func start` in
// dist/app) needs beside the app folder, as the README's "Running under Azure
// Functions Core Tools" section describes it: the storage emulator that
// local.settings.example.json points the host at, and the Event Hubs
// triggers switched off until a connection is given.
package coretools

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/palisade-sec/palisade/tests/testenv"
)

func localSettings(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "local.settings.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Values map[string]string }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("local.settings.example.json: %v", err)
	}
	return f.Values
}

// TestStorageSettingReachesAzurite: the AzureWebJobsStorage the example
// gives reaches Azurite started as the README says, with the real Azure
// Storage client doing what the host does there: a container, a blob, and a
// lease on it (timer schedules, singleton locks and Event Hubs checkpoints
// are blobs under leases).
func TestStorageSettingReachesAzurite(t *testing.T) {
	conn := localSettings(t)["AzureWebJobsStorage"]
	if conn != "UseDevelopmentStorage=true" {
		t.Fatalf("AzureWebJobsStorage = %q; the README's steps start Azurite for UseDevelopmentStorage=true", conn)
	}
	testenv.StartAzurite(t)
	client, err := azblob.NewClientFromConnectionString(testenv.DevelopmentStorage(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const container, blob = "azure-webjobs-hosts", "locks/palisade/host"
	if _, err := client.CreateContainer(ctx, container, nil); err != nil {
		t.Fatalf("create container through %s: %v", conn, err)
	}
	body := []byte(`{"Last":"2026-01-01T03:00:00Z"}`)
	if _, err := client.UploadBuffer(ctx, container, blob, body, nil); err != nil {
		t.Fatalf("upload blob: %v", err)
	}
	bc := client.ServiceClient().NewContainerClient(container).NewBlockBlobClient(blob)
	lc, err := lease.NewBlobClient(bc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.AcquireLease(ctx, 15, nil); err != nil {
		t.Fatalf("acquire lease: %v", err)
	}
	// A second holder is refused while the lease runs: the lock works.
	other, _ := lease.NewBlobClient(bc, nil)
	if _, err := other.AcquireLease(ctx, 15, nil); err == nil {
		t.Error("a second lease on a leased blob was granted")
	}
	resp, err := client.DownloadStream(ctx, container, blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !bytes.Equal(got.Bytes(), body) {
		t.Errorf("read back %q, want %q", got.Bytes(), body)
	}
}

// TestEventHubsTriggersOffOrConnected: every function with an Event Hubs
// trigger is disabled in the example settings or has its connection set
// there, and each AzureWebJobs.NAME.Disabled names a function of the app.
func TestEventHubsTriggersOffOrConnected(t *testing.T) {
	values := localSettings(t)
	files, err := filepath.Glob(filepath.Join(testenv.Root(t), "functions", "*", "function.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no functions/*/function.json (%v)", err)
	}
	functions := map[string]bool{}
	eventHubs := 0
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		functions[name] = true
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fj struct {
			Bindings []struct{ Type, Connection string }
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, bd := range fj.Bindings {
			if bd.Type != "eventHubTrigger" {
				continue
			}
			eventHubs++
			disabled := values["AzureWebJobs."+name+".Disabled"] == "true"
			connected := values[bd.Connection] != "" || values[bd.Connection+"__fullyQualifiedNamespace"] != ""
			if !disabled && !connected {
				t.Errorf("%s: its Event Hubs trigger has no connection (%s) in local.settings.example.json and is not disabled (AzureWebJobs.%s.Disabled)", name, bd.Connection, name)
			}
		}
	}
	if eventHubs == 0 {
		t.Error("no Event Hubs trigger found; the check has nothing to check")
	}
	for k := range values {
		if name, ok := strings.CutPrefix(k, "AzureWebJobs."); ok && strings.HasSuffix(name, ".Disabled") {
			if !functions[strings.TrimSuffix(name, ".Disabled")] {
				t.Errorf("local.settings.example.json disables %s, which is no function of the app", name)
			}
		}
	}
}
