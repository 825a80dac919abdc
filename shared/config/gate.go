package config

// Gate holds the settings of gated deployment on the function app's side:
// the rules the API serves (GET /api/gate/rules, for the console) and
// `palisade gate` applies offline. The agents read their own copy
// (palisade-agent's PALISADE_GATE_RULES, from the chart).
type Gate struct {
	// RulesFile is the rules file (YAML or JSON); empty: the default rule.
	RulesFile string
}

func gateSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_GATE_RULES", Default: "", Doc: "YAML or JSON file of gated-deployment rules (the agents' admission webhook applies the same file from the chart): served at /api/gate/rules and applied by `palisade gate`. Empty: the default rule, audit High and Critical."},
	}
}

func loadGate(l *lookup) Gate { return Gate{RulesFile: l.str("PALISADE_GATE_RULES")} }
