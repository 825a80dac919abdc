package msrctest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// Spec sizes the synthetic documents of Synth.
type Spec struct {
	CVEs, ProductsPerCVE, TreeProducts int
}

// Realistic is the size of a real monthly document.
var Realistic = Spec{CVEs: 150, ProductsPerCVE: 60, TreeProducts: 800}

// Synth returns twelve synthetic monthly documents (2024-Jan to 2024-Dec),
// shaped and sized like the real ones, for benchmarks: a product tree of
// some 800 products, and per CVE some 60 affected products each with its
// own impact and severity threats and CVSS set, a dozen cumulative-update
// remediations, notes with HTML text, acknowledgements and revision
// history. Four CVEs in five are fixed in every covered release, month i at
// revision 2000+100*i.
func Synth(tb testing.TB, spec Spec) (ids []string, docs [][]byte) {
	tb.Helper()
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		id := msrc.MonthID(first.AddDate(0, i, 0))
		ids = append(ids, id)
		docs = append(docs, synthDoc(tb, id, i, spec))
	}
	return ids, docs
}

type synthText struct {
	Value string `json:"Value"`
}

func synthDoc(tb testing.TB, id string, month int, spec Spec) []byte {
	tb.Helper()
	type product struct {
		ProductID string `json:"ProductID"`
		Value     string `json:"Value"`
	}
	// The covered Server Core products come first; the rest stand for
	// Windows clients, Office, .NET, Azure Linux packages and so on.
	var tree []product
	for _, p := range windowsimage.Products() {
		tree = append(tree, product{fmt.Sprint(11000 + p.Build%1000), p.Name}, product{fmt.Sprint(12000 + p.Build%1000), msrc.ServerCoreProduct(p)})
	}
	for len(tree) < spec.TreeProducts {
		n := len(tree)
		tree = append(tree, product{fmt.Sprint(20000 + n), fmt.Sprintf("Windows 10 Version 22H2 for x64-based Systems edition %d", n)})
	}
	builds := map[string]int{}
	for _, p := range windowsimage.Products() {
		builds[fmt.Sprint(11000+p.Build%1000)] = p.Build
		builds[fmt.Sprint(12000+p.Build%1000)] = p.Build
	}
	var vulns []map[string]any
	for c := range spec.CVEs {
		// Four CVEs in five hit the covered releases (and their Desktop
		// Experience installations); the rest only other products.
		var pids []string
		if c%5 != 4 {
			for _, p := range tree[:6] {
				pids = append(pids, p.ProductID)
			}
		}
		for k := len(pids); k < spec.ProductsPerCVE; k++ {
			pids = append(pids, tree[6+(c*7+k)%(len(tree)-6)].ProductID)
		}
		var threats, cvss, rems []map[string]any
		for _, p := range pids {
			threats = append(threats, map[string]any{"Description": synthText{"Elevation of Privilege"}, "ProductID": []string{p}, "Type": 0, "DateSpecified": false})
		}
		for _, p := range pids {
			threats = append(threats, map[string]any{"Description": synthText{[]string{"Critical", "Important", "Moderate"}[c%3]}, "ProductID": []string{p}, "Type": 3, "DateSpecified": false})
			cvss = append(cvss, map[string]any{"BaseScore": 7.8, "TemporalScore": 6.8, "Vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", "ProductID": []string{p}})
		}
		threats = append(threats, map[string]any{"Description": synthText{"Publicly Disclosed:No;Exploited:No;Latest Software Release:Exploitation Less Likely;DOS:N/A"}, "Type": 1, "DateSpecified": false})
		groups := 12
		for g := range groups {
			var gp []string
			for k, p := range pids {
				if k%groups == g {
					gp = append(gp, p)
				}
			}
			kb := fmt.Sprint(5030000 + month*100 + g)
			fixed := fmt.Sprintf("10.0.19045.%d", 3000+month*100)
			if b, ok := builds[gp[0]]; ok {
				fixed = fmt.Sprintf("10.0.%d.%d", b, 2000+month*100+g)
			}
			for _, p := range gp {
				if b, ok := builds[p]; ok {
					// Each covered product gets its own remediation, as in
					// the real documents where releases differ by KB.
					rems = append(rems, map[string]any{"Description": synthText{fmt.Sprint(5040000 + month*100 + b%100)},
						"URL": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + kb, "Supercedence": fmt.Sprint(5040000 + (month-1)*100 + b%100),
						"ProductID": []string{p}, "Type": 2, "DateSpecified": false, "AffectedFiles": []any{}, "RestartRequired": synthText{"Yes"},
						"SubType": "Security Update", "FixedBuild": fmt.Sprintf("10.0.%d.%d", b, 2000+month*100)})
				}
			}
			rems = append(rems, map[string]any{"Description": synthText{kb}, "URL": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + kb,
				"Supercedence": fmt.Sprint(5030000 + (month-1)*100 + g), "ProductID": gp, "Type": 2, "DateSpecified": false, "AffectedFiles": []any{},
				"RestartRequired": synthText{"Yes"}, "SubType": "Security Update", "FixedBuild": fixed})
		}
		vulns = append(vulns, map[string]any{
			"Title": synthText{fmt.Sprintf("Windows Component %d Elevation of Privilege Vulnerability", c)},
			"Notes": []map[string]any{
				{"Title": "Description", "Type": 2, "Ordinal": "20", "Value": "<p>" + strings.Repeat("An attacker who successfully exploited this vulnerability could gain SYSTEM privileges. ", 20) + "</p>"},
				{"Title": "FAQ", "Type": 4, "Ordinal": "10", "Value": "<p>" + strings.Repeat("<strong>What privileges could be gained?</strong> SYSTEM. ", 15) + "</p>"},
				{"Title": "Windows Component", "Type": 7, "Ordinal": "20"},
				{"Title": "Microsoft", "Type": 8, "Ordinal": "30", "Value": "Microsoft"},
			},
			"DiscoveryDateSpecified": false, "ReleaseDateSpecified": false,
			"CVE":             fmt.Sprintf("CVE-%d-%05d", 2024, month*1000+c),
			"ProductStatuses": []map[string]any{{"ProductID": pids, "Type": 3}},
			"Threats":         threats, "CVSSScoreSets": cvss, "Remediations": rems,
			"Acknowledgements": []map[string]any{{"Name": []synthText{{"Researcher with Some Company"}}, "URL": []string{""}}},
			"Ordinal":          "0",
			"RevisionHistory":  []map[string]any{{"Number": "1.0", "Date": "2024-01-09T08:00:00", "Description": synthText{"<p>Information published.</p>"}}},
		})
	}
	doc := map[string]any{
		"DocumentTitle":    synthText{id + " Security Updates"},
		"DocumentType":     synthText{"Security Update"},
		"DocumentTracking": map[string]any{"Identification": map[string]any{"ID": synthText{id}, "Alias": synthText{id}}, "Status": 2, "Version": "1.0", "InitialReleaseDate": "2024-01-09T08:00:00", "CurrentReleaseDate": "2024-01-09T08:00:00"},
		"ProductTree":      map[string]any{"Branch": []map[string]any{{"Items": []map[string]any{{"Items": tree, "Type": 2, "Name": "Windows"}}, "Type": 0, "Name": "Microsoft"}}, "FullProductName": tree},
		"Vulnerability":    vulns,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
