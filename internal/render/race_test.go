//go:build race

package render_test

// raceEnabled is set under the race detector, which slows these pure, single-goroutine property
// checks tenfold; they then run fewer cases.
const raceEnabled = true
