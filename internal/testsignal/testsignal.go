// Package testsignal lets a service tell a test that something happened (a claim, a batch written)
// without the test sleeping. A signal that a test did not initialise costs a nil check and nothing
// else, so services send them unconditionally. Modelled on riverqueue/river's internal/testsignal.
package testsignal

// Signal carries values of T to a test. The zero value is disabled: Signal is a no-op.
type Signal[T any] struct {
	ch chan T
}

// bufferSize is how many signals wait unread before further ones are dropped. A test reads the ones
// it waits for; the rest must never block the service.
const bufferSize = 1000

// Init enables the signal. Call it before the service starts.
func (s *Signal[T]) Init() { s.ch = make(chan T, bufferSize) }

// Signal sends v to the test if the signal is enabled and its buffer has room; it never blocks.
func (s *Signal[T]) Signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// C returns the channel the test receives from; nil (never ready) when the signal is disabled.
func (s *Signal[T]) C() <-chan T { return s.ch }
