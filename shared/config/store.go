package config

// Store selects and configures the store. The embedded store is the default;
// setting COSMOS_ENDPOINT selects Cosmos DB.
type Store struct {
	Path           string // embedded store file
	CosmosEndpoint string
	CosmosKey      string // empty: Entra ID (azidentity) is used
	CosmosDatabase string
}

func storeSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_STORE_PATH", Default: ".palisade/palisade.db", Doc: "File of the embedded store, used when COSMOS_ENDPOINT is empty."},
		{Name: "COSMOS_ENDPOINT", Default: "", Doc: "Cosmos DB account endpoint (https://ACCOUNT.documents.azure.com:443/). Selects the Cosmos DB store."},
		{Name: "COSMOS_KEY", Default: "", Doc: "Cosmos DB account key. Empty: authenticate with Entra ID (managed identity, workload identity or az login).", Secret: true},
		{Name: "COSMOS_DATABASE", Default: "palisade", Doc: "Cosmos DB database; it and its containers are created when missing."},
	}
}

func loadStore(l *lookup) Store {
	return Store{
		Path:           l.str("PALISADE_STORE_PATH"),
		CosmosEndpoint: l.str("COSMOS_ENDPOINT"),
		CosmosKey:      l.str("COSMOS_KEY"),
		CosmosDatabase: l.str("COSMOS_DATABASE"),
	}
}
