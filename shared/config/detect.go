package config

// Detect holds the settings of this part of Palisade.
type Detect struct{}

func detectSettings() []Setting { return nil }

func loadDetect(l *lookup) Detect { return Detect{} }
