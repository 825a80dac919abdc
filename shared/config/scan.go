package config

// Scan holds the settings of this part of Palisade.
type Scan struct{}

func scanSettings() []Setting { return nil }

func loadScan(l *lookup) Scan { return Scan{} }
