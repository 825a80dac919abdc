package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/config"
)

const sentinelDir = "infra/sentinel"

// column is a column of a table or stream declaration.
type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// loadTables reads infra/sentinel/table-*.json: each table's columns, by
// table name.
func loadTables(t *testing.T) map[string][]column {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, sentinelDir, "table-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/table-*.json (%v)", sentinelDir, err)
	}
	out := map[string][]column{}
	for _, f := range files {
		var tbl struct {
			Properties struct {
				Schema struct {
					Name    string   `json:"name"`
					Columns []column `json:"columns"`
				} `json:"schema"`
			} `json:"properties"`
		}
		readJSON(t, f, &tbl)
		s := tbl.Properties.Schema
		if !strings.HasSuffix(s.Name, "_CL") || len(s.Columns) == 0 || s.Columns[0].Name != "TimeGenerated" {
			t.Errorf("%s: table %q must end in _CL and start with TimeGenerated", f, s.Name)
		}
		out[s.Name] = s.Columns
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dcr is the part of infra/sentinel/dcr.json the module reads.
type dcr struct {
	Properties struct {
		StreamDeclarations map[string]struct {
			Columns []column `json:"columns"`
		} `json:"streamDeclarations"`
		DataFlows []struct {
			Streams      []string `json:"streams"`
			TransformKql string   `json:"transformKql"`
			OutputStream string   `json:"outputStream"`
		} `json:"dataFlows"`
	} `json:"properties"`
}

// TestTablesAndStreams: each table has a stream of the data collection
// rule with the same columns, a data flow from it to the table, and the
// setting that names the stream defaults to it.
func TestTablesAndStreams(t *testing.T) {
	tables := loadTables(t)
	var rule dcr
	readJSON(t, filepath.Join(repoRoot, sentinelDir, "dcr.json"), &rule)
	for _, p := range streamProblems(tables, rule) {
		t.Error(p)
	}
	defaults := map[string]string{}
	for _, s := range config.Settings() {
		defaults[s.Name] = s.Default
	}
	for setting, table := range map[string]string{
		"PALISADE_SENTINEL_STREAM": "PalisadeAlerts_CL", "PALISADE_SENTINEL_FINDINGS_STREAM": "PalisadeFindings_CL",
		"PALISADE_SENTINEL_POSTURE_STREAM": "PalisadePosture_CL",
	} {
		if _, ok := tables[table]; !ok {
			t.Errorf("no table %s", table)
		}
		if defaults[setting] != "Custom-"+table {
			t.Errorf("setting %s defaults to %q, the stream of %s is Custom-%s", setting, defaults[setting], table, table)
		}
	}
}

// streamProblems lists where the rule and the tables disagree.
func streamProblems(tables map[string][]column, rule dcr) []string {
	var out []string
	flows := map[string]string{}
	for _, f := range rule.Properties.DataFlows {
		for _, s := range f.Streams {
			flows[s] = f.OutputStream
			if _, ok := rule.Properties.StreamDeclarations[s]; !ok {
				out = append(out, fmt.Sprintf("data flow from undeclared stream %s", s))
			}
		}
		if !strings.HasPrefix(f.OutputStream, "Custom-") || tables[strings.TrimPrefix(f.OutputStream, "Custom-")] == nil {
			out = append(out, fmt.Sprintf("data flow to %s, which is no table of %s", f.OutputStream, sentinelDir))
		}
		if strings.TrimSpace(f.TransformKql) == "" {
			out = append(out, fmt.Sprintf("data flow to %s has no transformation", f.OutputStream))
		}
	}
	for name, cols := range tables {
		stream := "Custom-" + name
		decl, ok := rule.Properties.StreamDeclarations[stream]
		if !ok {
			out = append(out, fmt.Sprintf("table %s has no stream %s in dcr.json", name, stream))
			continue
		}
		if flows[stream] != stream {
			out = append(out, fmt.Sprintf("stream %s flows to %q, not to its table", stream, flows[stream]))
		}
		if d := cmp.Diff(cols, decl.Columns); d != "" {
			out = append(out, fmt.Sprintf("stream %s and table %s differ (-table +stream):\n%s", stream, name, d))
		}
	}
	slices.Sort(out)
	return out
}

// TestQueries: every query of the workbook and every analytics rule reads
// a Palisade table and names only columns it has.
func TestQueries(t *testing.T) {
	tables := loadTables(t)
	var wb struct {
		Version string            `json:"version"`
		Items   []json.RawMessage `json:"items"`
	}
	readJSON(t, filepath.Join(repoRoot, sentinelDir, "workbook.json"), &wb)
	if wb.Version != "Notebook/1.0" {
		t.Errorf("workbook version %q", wb.Version)
	}
	queries := map[string]string{}
	if err := workbookQueries(wb.Items, queries); err != nil {
		t.Fatal(err)
	}
	if len(queries) < 6 {
		t.Fatalf("the workbook has %d queries", len(queries))
	}
	read := map[string]bool{}
	rules, _ := filepath.Glob(filepath.Join(repoRoot, sentinelDir, "rule-*.kql"))
	for _, f := range rules {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		queries[filepath.Base(f)] = string(b)
	}
	for name, q := range queries {
		problems, used := kqlProblems(q, tables)
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
		for _, u := range used {
			read[u] = true
		}
	}
	for table := range tables {
		if !read[table] {
			t.Errorf("no workbook query reads %s", table)
		}
	}
}

// workbookQueries collects the query of every query item (type 3), also
// inside groups, by item name.
func workbookQueries(items []json.RawMessage, into map[string]string) error {
	for _, raw := range items {
		var it struct {
			Type    int    `json:"type"`
			Name    string `json:"name"`
			Content struct {
				Query        string            `json:"query"`
				ResourceType string            `json:"resourceType"`
				Items        []json.RawMessage `json:"items"`
			} `json:"content"`
		}
		if err := json.Unmarshal(raw, &it); err != nil {
			return err
		}
		switch it.Type {
		case 3:
			if it.Content.ResourceType != "microsoft.operationalinsights/workspaces" || strings.TrimSpace(it.Content.Query) == "" {
				return fmt.Errorf("item %s: a query item must query the workspace", it.Name)
			}
			into[it.Name] = it.Content.Query
		case 12:
			if err := workbookQueries(it.Content.Items, into); err != nil {
				return err
			}
		}
	}
	return nil
}

// kqlProblems checks the names a KQL query uses against the tables: it
// must read at least one of them, and every capitalised name (Palisade's
// columns are; KQL's own words are not) that is not a table, not a
// property after a dot and not defined by the query (Name = …, let Name,
// as Name) must be a column of a table it reads. It returns the problems
// and the tables read.
func kqlProblems(query string, tables map[string][]column) (problems, read []string) {
	toks := kqlTokens(query)
	defined := map[string]bool{}
	for i, tk := range toks {
		switch {
		case tk.assigned:
			defined[tk.name] = true
		case (tk.name == "let" || tk.name == "as") && i+1 < len(toks):
			defined[toks[i+1].name] = true
		}
		if _, ok := tables[tk.name]; ok && !slices.Contains(read, tk.name) {
			read = append(read, tk.name)
		}
	}
	if len(read) == 0 {
		return []string{"reads no Palisade table"}, nil
	}
	for _, tk := range toks {
		if tk.afterDot || defined[tk.name] || tk.name[0] < 'A' || tk.name[0] > 'Z' || tables[tk.name] != nil {
			continue
		}
		found := false
		for _, table := range read {
			found = found || slices.ContainsFunc(tables[table], func(c column) bool { return c.Name == tk.name })
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s is not a column of %s", tk.name, strings.Join(read, " or ")))
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems), read
}

// kqlToken is a name in a query, outside comments and string literals.
type kqlToken struct {
	name     string
	afterDot bool // a property of a dynamic value
	assigned bool // followed by a single =: defined here
}

func kqlTokens(q string) []kqlToken {
	var out []kqlToken
	isStart := func(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	prev := byte(0) // the last character that is not a space
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '/' && i+1 < len(q) && q[i+1] == '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			i++
			for i < len(q) && q[i] != c {
				if q[i] == '\\' {
					i++
				}
				i++
			}
			i++
			prev = c
		case isStart(c):
			j := i
			for j < len(q) && isPart(q[j]) {
				j++
			}
			k := j
			for k < len(q) && (q[k] == ' ' || q[k] == '\t' || q[k] == '\n') {
				k++
			}
			assigned := k < len(q) && q[k] == '=' && (k+1 >= len(q) || q[k+1] != '=' && q[k+1] != '~')
			out = append(out, kqlToken{name: q[i:j], afterDot: prev == '.', assigned: assigned})
			prev = q[j-1]
			i = j
		case c >= '0' && c <= '9':
			for i < len(q) && isPart(q[i]) { // 90d, 1h, 1.5
				i++
			}
			prev = '0'
		default:
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				prev = c
			}
			i++
		}
	}
	return out
}

// TestSentinelCheckers runs the checks on small inputs, so that a check
// that stops finding problems is noticed.
func TestSentinelCheckers(t *testing.T) {
	tables := map[string][]column{"T_CL": {{"TimeGenerated", "datetime"}, {"Status", "string"}, {"Vulns", "dynamic"}}}
	for q, want := range map[string][]string{
		`T_CL | where Status == "Open" | summarize N = count() by Status`:                              nil,
		`T_CL | mv-expand V = Vulns | extend Id = tostring(V.Id) // Ignored: a comment naming Nothing`: nil,
		`let Recent = T_CL | where TimeGenerated > ago(1d); Recent | where Severity == "HIGH"`:         {"Severity is not a column of T_CL"},
		`Other_CL | take 1`: {"reads no Palisade table"},
		`T_CL | where Status =~ "x" | project Status, Missing`: {"Missing is not a column of T_CL"},
	} {
		got, _ := kqlProblems(q, tables)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", q, d)
		}
	}
	var rule dcr
	rule.Properties.StreamDeclarations = map[string]struct {
		Columns []column `json:"columns"`
	}{"Custom-T_CL": {Columns: []column{{"TimeGenerated", "datetime"}, {"Status", "int"}}}}
	got := streamProblems(tables, rule)
	if len(got) != 2 || !strings.Contains(got[0], "differ") || !strings.Contains(got[1], "flows to") {
		t.Errorf("stream problems %q: want the column difference and the missing data flow", got)
	}
}
