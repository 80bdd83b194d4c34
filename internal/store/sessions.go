package store

// SessionReader reads web UI sessions.
type SessionReader interface{}

// SessionWriter writes web UI sessions.
type SessionWriter interface{}
