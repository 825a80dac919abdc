package console

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Charts are drawn on the server as SVG (templates/parts.html draws these
// structs): no chart library, no script, nothing inline the CSP would
// block (SVG presentation attributes are not styles), and every label goes
// through html/template's escaping.

// chart is one SVG chart in a W by H box.
type chart struct {
	W, H    int
	Label   string // what it shows, for screen readers
	Bars    []bar
	Lines   []line
	XLabels []label
	YLabels []label
	Grid    []float64 // y of horizontal grid lines, from GridX1 to GridX2
	GridX1  float64
	GridX2  float64
	Legend  []legendItem
	Empty   bool
}

// bar is one rectangle, linked when Href is set.
type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
	Href       string
}

// line is one series of a line chart.
type line struct {
	Points string
	Class  string
	Title  string
	Dots   []point
}

type point struct{ X, Y float64 }

type label struct {
	X, Y   float64
	Text   string
	Anchor string // start, middle, end
}

type legendItem struct {
	Class, Text string
	Count       int
}

// series is one stacked series: a value per bucket.
type series struct {
	Name, Class string
	Values      []int
}

const (
	padLeft   = 40.0
	padRight  = 8.0
	padTop    = 10.0
	padBottom = 22.0
)

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// stacked draws columns, one per bucket, each stacking the series' values;
// every labelEvery-th bucket is labelled.
func stacked(title string, buckets []string, ss []series, w, h, labelEvery int) chart {
	c := chart{W: w, H: h, Label: title, GridX1: padLeft, GridX2: float64(w) - padRight}
	totals := make([]int, len(buckets))
	for _, s := range ss {
		n := 0
		for i, v := range s.Values {
			totals[i] += v
			n += v
		}
		if n > 0 {
			c.Legend = append(c.Legend, legendItem{Class: s.Class, Text: s.Name, Count: n})
		}
	}
	top := 0
	for _, t := range totals {
		top = max(top, t)
	}
	c.Empty = top == 0
	yMax := niceMax(float64(top))
	plotW, plotH := float64(w)-padLeft-padRight, float64(h)-padTop-padBottom
	step := plotW / float64(max(len(buckets), 1))
	scale := plotH / yMax
	for _, f := range []float64{0, 0.5, 1} {
		y := padTop + plotH - f*yMax*scale
		c.Grid = append(c.Grid, y)
		c.YLabels = append(c.YLabels, label{X: padLeft - 4, Y: y + 4, Text: trimFloat(f * yMax), Anchor: "end"})
	}
	for i, b := range buckets {
		x := padLeft + float64(i)*step
		y := padTop + plotH
		for _, s := range ss {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			hgt := float64(v) * scale
			y -= hgt
			c.Bars = append(c.Bars, bar{X: round1(x + step*0.12), Y: round1(y), W: round1(step * 0.76), H: round1(hgt), Class: s.Class,
				Title: fmt.Sprintf("%s · %s: %d", b, s.Name, v)})
		}
		if labelEvery > 0 && i%labelEvery == 0 {
			c.XLabels = append(c.XLabels, label{X: round1(x + step/2), Y: float64(h) - 6, Text: b, Anchor: "middle"})
		}
	}
	return c
}

// hbarItem is one bar of a horizontal bar chart.
type hbarItem struct {
	Label string
	Value int
	Class string
	Href  string
}

// hbars draws one horizontal bar per item, labelled on the left with its
// value on the right.
func hbars(title string, items []hbarItem, w int) chart {
	const rowH, labelW, valueW = 24.0, 110.0, 56.0
	c := chart{W: w, H: int(rowH*float64(len(items))) + 4, Label: title}
	top := 0
	for _, it := range items {
		top = max(top, it.Value)
	}
	c.Empty = top == 0
	plotW := float64(w) - labelW - valueW
	for i, it := range items {
		y := float64(i)*rowH + 2
		bw := 0.0
		if top > 0 {
			bw = plotW * float64(it.Value) / float64(top)
		}
		c.Bars = append(c.Bars, bar{X: labelW, Y: y + 3, W: round1(math.Max(bw, 1)), H: rowH - 8, Class: it.Class, Href: it.Href,
			Title: fmt.Sprintf("%s: %d", it.Label, it.Value)})
		c.XLabels = append(c.XLabels, label{X: labelW - 8, Y: y + rowH/2 + 3, Text: it.Label, Anchor: "end"},
			label{X: labelW + bw + 6, Y: y + rowH/2 + 3, Text: num(it.Value), Anchor: "start"})
	}
	return c
}

// linePoint is one value at a time.
type linePoint struct {
	At    time.Time
	Value float64
}

// lineSeries is one line of a line chart.
type lineSeries struct {
	Name, Class string
	Points      []linePoint
}

// lines draws series over [from, to] with values from 0 to yMax.
func lines(title string, ss []lineSeries, from, to time.Time, yMax float64, w, h int) chart {
	c := chart{W: w, H: h, Label: title, Empty: true, GridX1: padLeft, GridX2: float64(w) - padRight}
	plotW, plotH := float64(w)-padLeft-padRight, float64(h)-padTop-padBottom
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	xOf := func(t time.Time) float64 { return padLeft + plotW*t.Sub(from).Seconds()/span }
	yOf := func(v float64) float64 { return padTop + plotH - plotH*math.Min(math.Max(v, 0), yMax)/yMax }
	for _, f := range []float64{0, 0.5, 1} {
		y := yOf(f * yMax)
		c.Grid = append(c.Grid, y)
		c.YLabels = append(c.YLabels, label{X: padLeft - 4, Y: y + 4, Text: trimFloat(f * yMax), Anchor: "end"})
	}
	c.XLabels = append(c.XLabels, label{X: padLeft, Y: float64(h) - 6, Text: from.UTC().Format("Jan 2"), Anchor: "start"},
		label{X: float64(w) - padRight, Y: float64(h) - 6, Text: to.UTC().Format("Jan 2"), Anchor: "end"})
	for _, s := range ss {
		var pts []string
		l := line{Class: s.Class, Title: s.Name}
		for _, p := range s.Points {
			if p.At.Before(from) || p.At.After(to) {
				continue
			}
			x, y := round1(xOf(p.At)), round1(yOf(p.Value))
			pts = append(pts, fmt.Sprintf("%g,%g", x, y))
			l.Dots = append(l.Dots, point{x, y})
		}
		if len(pts) == 0 {
			continue
		}
		c.Empty = false
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
		c.Legend = append(c.Legend, legendItem{Class: s.Class, Text: s.Name})
	}
	return c
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func trimFloat(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%.0f", f), ".0") }
