package config

// Sentinel holds the settings of this part of Palisade.
type Sentinel struct{}

func sentinelSettings() []Setting { return nil }

func loadSentinel(l *lookup) Sentinel { return Sentinel{} }
