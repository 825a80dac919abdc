package storetest

import (
	"fmt"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// The benchmarks below measure one implementation through the interface;
// each implementation's tests wrap them as BenchmarkPut, BenchmarkGet and
// BenchmarkQuery. They report ops/s besides ns/op.

const benchPartitions = 10

func benchFinding(i int) model.Finding {
	digest := fmt.Sprintf("sha256:%064x", i%benchPartitions)
	sev := model.Severities()[i%len(model.Severities())]
	return model.Finding{
		ID: fmt.Sprintf("f%06d", i), Digest: digest, VulnID: fmt.Sprintf("CVE-2026-%04d", i),
		PkgName: "openssl", InstalledVersion: "3.0.11", FixedVersion: "3.0.13", Severity: sev,
		SeverityRank: sev.Rank(), CVSSScore: 7.5, Remediation: "Upgrade openssl to 3.0.13.",
		Status: model.FindingOpen, FirstSeen: when, LastSeen: when,
	}
}

func seed(b *testing.B, s store.Store, n int) {
	b.Helper()
	for i := range n {
		f := benchFinding(i)
		if _, err := s.Put(b.Context(), store.Findings, f.Digest, f.ID, f, store.Cond{}); err != nil {
			b.Fatal(err)
		}
	}
}

func reportOps(b *testing.B, ops int) {
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
}

// BenchPut measures upserts of findings spread over a few partitions.
func BenchPut(b *testing.B, s store.Store) {
	ops := 0
	for b.Loop() {
		f := benchFinding(ops % 5000)
		if _, err := s.Put(b.Context(), store.Findings, f.Digest, f.ID, f, store.Cond{}); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportOps(b, ops)
}

// BenchGet measures point reads of findings.
func BenchGet(b *testing.B, s store.Store) {
	const n = 500
	seed(b, s, n)
	ops := 0
	for b.Loop() {
		want := benchFinding(ops % n)
		var f model.Finding
		if _, err := s.Get(b.Context(), store.Findings, want.Digest, want.ID, &f); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportOps(b, ops)
}

// BenchQuery measures a filtered single-partition query returning one page
// (the high and critical third of a partition of 100 findings).
func BenchQuery(b *testing.B, s store.Store) {
	const n = 1000
	seed(b, s, n)
	ops := 0
	for b.Loop() {
		digest := benchFinding(ops % benchPartitions).Digest
		page, err := s.Query(b.Context(), store.Findings, store.Query{
			PartitionKey: digest,
			Filters:      []store.Filter{{Field: "severityRank", Op: store.Ge, Value: model.SeverityHigh.Rank()}, {Field: "status", Op: store.Eq, Value: model.FindingOpen}},
			Limit:        100,
		})
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Items) == 0 {
			b.Fatalf("query of %s found nothing", digest)
		}
		ops++
	}
	reportOps(b, ops)
}
