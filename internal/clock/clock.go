// Package clock is the time source of the services, so that tests can move time.
package clock

import "time"

// Clock tells the time. Every type that reads the time has a Clock field; nil means the real clock.
type Clock interface {
	Now() time.Time
}

// Func adapts a function to a Clock, e.g. clock.Func(func() time.Time { return fixed }).
type Func func() time.Time

// Now returns f().
func (f Func) Now() time.Time { return f() }

// Now returns c.Now(), or the real time when c is nil.
func Now(c Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}
