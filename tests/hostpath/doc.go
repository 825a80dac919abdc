// Package hostpath measures and tests detectruntime and analyzeaudit on the
// path production runs: host-format Event Hubs batches (cardinality many,
// dataType string, as shared/funchost encodes them) posted through the
// custom-handler server to the functions, which write to a real store (the
// embedded store, and Cosmos DB through @vercel/cosmosdb-server on
// loopback).
//
// The workloads are built from the real-format samples the detection tests
// use (shared/detection/testdata, shared/audit/testdata): Falco's benign
// corpus with attack samples mixed in, spread over a number of workloads on
// four nodes, and AKS diagnostic bodies from the benign audit corpus with
// attack records mixed in. The benchmarks report events per handler
// CPU-second (getrusage around the handler calls only) and store operations
// per batch; the tests run two function instances over one store.
package hostpath
