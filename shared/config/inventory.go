package config

import "time"

// Inventory holds the settings of what the cluster agents send
// (ingestinventory) and how their clusters are judged (assessposture, the
// API).
type Inventory struct {
	// Hub is the event hub the agents send to; read by the Functions host
	// through function.json (%PALISADE_INVENTORY_HUB%).
	Hub string
	// StaleAfter is how long an agent may be silent before its cluster is
	// reported (the agent-reporting check fails, /api/clusters says stale).
	StaleAfter time.Duration
}

func inventorySettings() []Setting {
	return []Setting{
		{Name: "PALISADE_INVENTORY_HUB", Default: "inventory", Doc: "Event hub carrying the cluster agents' inventory (ingestinventory trigger)."},
		{Name: "PALISADE_AGENT_STALE_AFTER", Default: "15m", Doc: "How long a cluster's palisade-agent may be silent (it sends at least a heartbeat every 5 minutes) before assessposture fails the agent-reporting check for the cluster and /api/clusters marks it stale; its last snapshot is still assessed."},
	}
}

func loadInventory(l *lookup) Inventory {
	inv := Inventory{Hub: l.str("PALISADE_INVENTORY_HUB"), StaleAfter: l.duration("PALISADE_AGENT_STALE_AFTER")}
	if inv.StaleAfter <= 0 {
		l.fail("setting PALISADE_AGENT_STALE_AFTER: must be a positive duration like 15m")
	}
	return inv
}
