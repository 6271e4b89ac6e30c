package console

import (
	"fmt"
	"strconv"
)

// barChart is a horizontal bar chart drawn by the server as SVG: no
// script, no inline style (the CSP allows neither), every label escaped
// by html/template.
type barChart struct {
	Title  string
	Width  int
	Height int
	Bars   []bar
	// Axis is the value at the right end of the bars.
	Axis int
}

type bar struct {
	Label string
	Value int
	Y     int // top of the bar
	W     int // length of the bar
	TextY int // baseline of the label
	ValX  int // where the value is written
}

// Chart geometry: labels on the left, bars after them.
const (
	chartLabelW = 190
	chartBarW   = 420
	chartRow    = 28
)

// newBarChart lays out one bar per label and value, scaled to the
// largest value.
func newBarChart(title string, labels []string, values []int) barChart {
	c := barChart{Title: title, Width: chartLabelW + chartBarW + 60, Height: chartRow*len(labels) + 10}
	for _, v := range values {
		c.Axis = max(c.Axis, v)
	}
	for i, l := range labels {
		w := 0
		if c.Axis > 0 {
			w = values[i] * chartBarW / c.Axis
		}
		if values[i] > 0 && w < 2 {
			w = 2 // a count above zero is always visible
		}
		y := 5 + i*chartRow
		c.Bars = append(c.Bars, bar{Label: l, Value: values[i], Y: y, W: w, TextY: y + 17, ValX: chartLabelW + w + 6})
	}
	return c
}

// lineChart is a chart of counts per day, one line per series, drawn by
// the server as SVG.
type lineChart struct {
	Title         string
	Width, Height int
	Series        []series
	Days          []dayTick
	Max           int
	MaxY          int
}

type series struct {
	Name   string
	Colour string
	Points string // the polyline's points
	Total  int
	Dash   string // a dash pattern, so series differ by more than colour
}

type dayTick struct {
	X     int
	Label string
}

// Line chart geometry.
const (
	lineW, lineH = 640, 220
	lineLeft     = 40
	lineBottom   = 30
)

// seriesColours are dark enough for 3:1 contrast on white (WCAG 1.4.11).
var seriesColours = []string{"#0b4f9c", "#a4161a", "#1b5e20", "#6a1b9a", "#8a4b00", "#00565b", "#4a4a4a", "#ad1457"}

var seriesDashes = []string{"", "6 3", "2 3", "10 4 2 4"}

// newLineChart lays out counts[i][d], the count of series i on day d.
func newLineChart(title string, names []string, days []string, counts [][]int) lineChart {
	c := lineChart{Title: title, Width: lineW + lineLeft + 30, Height: lineH + lineBottom + 10}
	for _, row := range counts {
		for _, v := range row {
			c.Max = max(c.Max, v)
		}
	}
	top := max(c.Max, 1)
	x := func(d int) int {
		if len(days) < 2 {
			return lineLeft + lineW/2
		}
		return lineLeft + d*lineW/(len(days)-1)
	}
	y := func(v int) int { return 5 + lineH - v*lineH/top }
	c.MaxY = y(top)
	step := max(1, len(days)/8)
	for d, label := range days {
		if d%step == 0 || d == len(days)-1 {
			c.Days = append(c.Days, dayTick{X: x(d), Label: label})
		}
	}
	for i, name := range names {
		s := series{Name: name, Colour: seriesColours[i%len(seriesColours)], Dash: seriesDashes[(i/len(seriesColours)+i)%len(seriesDashes)]}
		for d, v := range counts[i] {
			if d > 0 {
				s.Points += " "
			}
			s.Points += strconv.Itoa(x(d)) + "," + strconv.Itoa(y(v))
			s.Total += v
		}
		if len(counts[i]) == 1 {
			s.Points += fmt.Sprintf(" %d,%d", x(0)+1, y(counts[i][0]))
		}
		c.Series = append(c.Series, s)
	}
	return c
}
