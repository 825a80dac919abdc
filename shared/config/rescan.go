package config

// Rescan holds the settings of this part of Palisade.
type Rescan struct{}

func rescanSettings() []Setting { return nil }

func loadRescan(l *lookup) Rescan { return Rescan{} }
