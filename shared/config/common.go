package config

import "time"

// Common holds the settings of the handler process itself and its HTTP
// edges (the api and console functions).
type Common struct {
	LogLevel    string
	Port        string // FUNCTIONS_CUSTOMHANDLER_PORT, set by the Functions host
	APIKey      string // when set, /api requires it in x-functions-key or ?code=, and the console asks for it
	DevAddress  string // where `palisade dev` plays the Functions host
	DevRegistry string // where `palisade dev` runs its local OCI registry
	// ConsoleRefresh is how old the console's summary of the store may get
	// before a request has it rebuilt in the background.
	ConsoleRefresh time.Duration
}

func commonSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_LOG_LEVEL", Default: "info", Doc: "Log level: debug, info, warn or error."},
		{Name: "FUNCTIONS_CUSTOMHANDLER_PORT", Default: "8080", Doc: "Port the handler listens on; set by the Functions host."},
		{Name: "PALISADE_API_KEY", Default: "", Doc: "Key the api function requires (x-functions-key header or code parameter) in addition to the host's own key check, and the console's login form asks for. Empty: the host's check only.", Secret: true},
		{Name: "PALISADE_CONSOLE_REFRESH", Default: "30s", Doc: "How old the console's lists and overview may get before a request has them rebuilt from the store in the background; a page of one item is always read fresh."},
		{Name: "PALISADE_DEV_ADDR", Default: "127.0.0.1:7071", Doc: "Address `palisade dev` serves the emulated Functions host on."},
		{Name: "PALISADE_DEV_REGISTRY_ADDR", Default: "127.0.0.1:5000", Doc: "Address of the local OCI registry `palisade dev` runs; a push to it raises ImagePushed. Empty: no registry."},
	}
}

func loadCommon(l *lookup) Common {
	return Common{
		LogLevel:       l.str("PALISADE_LOG_LEVEL"),
		Port:           l.str("FUNCTIONS_CUSTOMHANDLER_PORT"),
		APIKey:         l.str("PALISADE_API_KEY"),
		DevAddress:     l.str("PALISADE_DEV_ADDR"),
		DevRegistry:    l.str("PALISADE_DEV_REGISTRY_ADDR"),
		ConsoleRefresh: consoleRefresh(l),
	}
}

func consoleRefresh(l *lookup) time.Duration {
	d := l.duration("PALISADE_CONSOLE_REFRESH")
	if d < time.Second {
		l.fail("setting PALISADE_CONSOLE_REFRESH: %s is shorter than a second", d)
	}
	return d
}
