package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured; it is what the JSON file holds.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	// Database is "sqlite" or "postgres".
	Database  string `json:"database"`
	Smoke     bool   `json:"smoke"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	// QuiklyArgs are the flags of quikly serve common to every scenario.
	QuiklyArgs []string  `json:"quikly_args"`
	Notes      []string  `json:"notes"`
	Results    []*Result `json:"results"`
}

// Failed returns the scenarios that did not run to completion, lost deliveries or received a
// request that did not verify. Unmet targets are not failures: they are what the table reports.
func (r *Report) Failed() []*Result {
	var out []*Result
	for _, res := range r.Results {
		if !res.OK() {
			out = append(out, res)
		}
	}
	return out
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario string    `json:"scenario"`
	Metrics  []*Metric `json:"metrics"`
	// Expected is how many distinct deliveries had to arrive; Delivered how many of them did.
	Expected  int `json:"expected"`
	Delivered int `json:"delivered"`
	// Requests is every request the receiver got; Unverified those whose signatures did not verify
	// (FirstUnverified says why the first did not).
	Requests        int            `json:"requests"`
	Unverified      int            `json:"unverified"`
	FirstUnverified string         `json:"first_unverified,omitempty"`
	Details         map[string]any `json:"details,omitempty"`
	Notes           []string       `json:"notes,omitempty"`
	Error           string         `json:"error,omitempty"`
	// Skipped says why the scenario did not run here (scaleout on SQLite); empty when it ran.
	Skipped string  `json:"skipped,omitempty"`
	Seconds float64 `json:"seconds"`
}

// OK reports whether the scenario ran, everything it had to deliver arrived, and every request
// verified.
func (r *Result) OK() bool {
	return r.Error == "" && r.Unverified == 0 && r.Delivered >= r.Expected
}

func (r *Result) detail(name string, v any) {
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details[name] = v
}

// metric adds a measured value and returns it, to attach a target.
func (r *Result) metric(name string, value float64, unit string) *Metric {
	m := &Metric{Name: name, Value: round(value), Unit: unit}
	r.Metrics = append(r.Metrics, m)
	return m
}

// Metric is one measured value and, when the issue sets one, its target.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Unit is "/s", "ms", "ratio", "MiB", "%" or "" (a count).
	Unit string `json:"unit"`
	// Target is the goal in words ("≥ 0.85"); Met says whether Value reaches it. Both are empty when
	// no target applies here.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

// atLeast sets the target Value ≥ t.
func (m *Metric) atLeast(t float64) *Metric {
	met := !math.IsNaN(m.Value) && m.Value >= t
	m.Target, m.Met = "≥ "+formatValue(t, m.Unit), &met
	return m
}

// atMost sets the target Value ≤ t.
func (m *Metric) atMost(t float64) *Metric {
	met := !math.IsNaN(m.Value) && m.Value <= t
	m.Target, m.Met = "≤ "+formatValue(t, m.Unit), &met
	return m
}

// round keeps values readable in the JSON; NaN (not measured) becomes -1.
func round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return math.Round(v*1000) / 1000
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "/s":
		return fmt.Sprintf("%.0f/s", v)
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "ratio":
		return fmt.Sprintf("%.2f", v)
	case "MiB":
		return fmt.Sprintf("%.0f MiB", v)
	case "s":
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// printTable writes the results as a table: scenario, metric, value, target, met or not.
func printTable(w io.Writer, rep *Report) {
	mode := "full"
	if rep.Smoke {
		mode = "smoke (tiny sizes: the targets are for full runs)"
	}
	fmt.Fprintf(w, "\nquikly-bench: %s, %d CPUs, %s/%s, %s, %s\n", rep.Database, rep.CPUs, rep.OS, rep.Arch, rep.GoVersion, mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tVALUE\tTARGET\tRESULT")
	for _, r := range rep.Results {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = "skipped: " + r.Skipped
		case r.Error != "":
			status = "ERROR: " + firstLine(r.Error)
		case r.Unverified > 0:
			status = fmt.Sprintf("FAILED: %d requests did not verify", r.Unverified)
		case r.Delivered < r.Expected:
			status = fmt.Sprintf("FAILED: %d of %d delivered", r.Delivered, r.Expected)
		}
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t%s\n", r.Scenario, status)
			continue
		}
		delivered := fmt.Sprintf("%d/%d", r.Delivered, r.Expected)
		if r.Expected == 0 {
			delivered = fmt.Sprintf("%d, not awaited", r.Delivered)
		}
		fmt.Fprintf(tw, "%s\t(delivered %s, verified %d/%d)\t\t\t%s\n", r.Scenario, delivered,
			r.Requests-r.Unverified, r.Requests, status)
		for _, m := range r.Metrics {
			met := ""
			if m.Met != nil {
				met = "not met"
				if *m.Met {
					met = "met"
				}
			}
			value := formatValue(m.Value, m.Unit)
			if m.Value == -1 {
				value = "n/a"
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\n", m.Name, value, m.Target, met)
		}
	}
	tw.Flush()
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range rep.Notes {
			fmt.Fprintln(w, "  -", n)
		}
	}
	for _, r := range rep.Results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s: %s\n", r.Scenario, n)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// writeJSON writes rep to path, creating its directory.
func writeJSON(path string, rep *Report) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// latencies summarises durations: count, p50, p99, max, in milliseconds.
type latencies struct {
	N             int
	P50, P99, Max float64
}

// summarise returns the latencies of ds; NaN for an empty list.
func summarise(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{P50: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return latencies{N: len(s), P50: ms(percentile(s, 0.50)), P99: ms(percentile(s, 0.99)), Max: ms(s[len(s)-1])}
}

// percentile is the nearest-rank percentile of sorted s.
func percentile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// jsonValue is l for the JSON file, where NaN cannot be written.
func (l latencies) jsonValue() map[string]float64 {
	return map[string]float64{"n": float64(l.N), "p50_ms": round(l.P50), "p99_ms": round(l.P99), "max_ms": round(l.Max)}
}
