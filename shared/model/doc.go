// Package model holds Palisade's domain types: what is stored in each store
// container and what flows between the sensor, the functions and Sentinel.
//
// Every stored type carries its own `id` and its container's partition key
// field, as Cosmos DB requires. Times that queries filter on are also kept as
// Unix seconds (fields ending in Unix), because RFC 3339 strings with varying
// fractional digits do not sort as text.
package model
