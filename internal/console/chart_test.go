package console

import "testing"

func TestBarChart(t *testing.T) {
	c := newBarChart("t", []string{"a", "b", "c"}, []int{0, 1, 200})
	if c.Axis != 200 || len(c.Bars) != 3 {
		t.Fatalf("chart %+v", c)
	}
	for _, tc := range []struct {
		i, w int
	}{{0, 0}, {1, 2}, {2, chartBarW}} {
		if got := c.Bars[tc.i].W; got != tc.w {
			t.Errorf("bar %s of value %d has width %d, want %d", c.Bars[tc.i].Label, c.Bars[tc.i].Value, got, tc.w)
		}
	}
	if c.Bars[1].Y <= c.Bars[0].Y {
		t.Errorf("bars overlap: %+v", c.Bars)
	}
}

func TestLineChart(t *testing.T) {
	c := newLineChart("t", []string{"x", "y"}, []string{"01-01", "01-02", "01-03"}, [][]int{{0, 2, 4}, {1, 1, 1}})
	if c.Max != 4 || c.Series[0].Total != 6 || c.Series[1].Total != 3 {
		t.Fatalf("chart max %d, totals %d %d; want 4, 6, 3", c.Max, c.Series[0].Total, c.Series[1].Total)
	}
	// Day 0 at the left edge, the maximum at the top, zero at the bottom.
	if want := "40,225 360,115 680,5"; c.Series[0].Points != want {
		t.Errorf("points %q, want %q", c.Series[0].Points, want)
	}
	if c.Series[0].Colour == c.Series[1].Colour {
		t.Errorf("two series share a colour")
	}
}
