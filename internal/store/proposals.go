package store

// ProposalReader reads proposals and lead sessions.
type ProposalReader interface{}

// ProposalWriter writes proposals and lead sessions.
type ProposalWriter interface{}
