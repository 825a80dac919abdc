package config

// Common holds the settings of the handler process itself.
type Common struct {
	LogLevel    string
	Port        string // FUNCTIONS_CUSTOMHANDLER_PORT, set by the Functions host
	APIKey      string // when set, /api requires it in x-functions-key or ?code=
	DevAddress  string // where `palisade dev` plays the Functions host
	DevRegistry string // where `palisade dev` runs its local OCI registry
}

func commonSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_LOG_LEVEL", Default: "info", Doc: "Log level: debug, info, warn or error."},
		{Name: "FUNCTIONS_CUSTOMHANDLER_PORT", Default: "8080", Doc: "Port the handler listens on; set by the Functions host."},
		{Name: "PALISADE_API_KEY", Default: "", Doc: "Key the api function requires (x-functions-key header or code parameter) in addition to the host's own key check. Empty: the host's check only.", Secret: true},
		{Name: "PALISADE_DEV_ADDR", Default: "127.0.0.1:7071", Doc: "Address `palisade dev` serves the emulated Functions host on."},
		{Name: "PALISADE_DEV_REGISTRY_ADDR", Default: "127.0.0.1:5000", Doc: "Address of the local OCI registry `palisade dev` runs; a push to it raises ImagePushed. Empty: no registry."},
	}
}

func loadCommon(l *lookup) Common {
	return Common{
		LogLevel:    l.str("PALISADE_LOG_LEVEL"),
		Port:        l.str("FUNCTIONS_CUSTOMHANDLER_PORT"),
		APIKey:      l.str("PALISADE_API_KEY"),
		DevAddress:  l.str("PALISADE_DEV_ADDR"),
		DevRegistry: l.str("PALISADE_DEV_REGISTRY_ADDR"),
	}
}
