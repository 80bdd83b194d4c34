// Package errs defines the error codes every layer speaks. The API renders them as SPEC §3 JSON, the
// console and the share page as pages; all three take the HTTP status from the one table here.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// Code names a class of failure; the values are the SPEC §3 codes.
type Code string

// The codes of SPEC §3.
const (
	Invalid          Code = "validation_failed"
	InvalidJSON      Code = "invalid_json"
	Unauthorized     Code = "unauthorized"
	NotFound         Code = "not_found"
	MethodNotAllowed Code = "method_not_allowed"
	Conflict         Code = "conflict"
	LimitReached     Code = "limit_reached"
	TooLarge         Code = "payload_too_large"
	UnsupportedMedia Code = "unsupported_media_type"
	RateLimited      Code = "rate_limited"
	Internal         Code = "internal"
	// Unavailable is not in SPEC §3: the database dropped the connection mid-request (a restart, a
	// failover) before anything was committed. Nothing changed; the caller may retry at once.
	Unavailable Code = "unavailable"
)

// Error is an error with a code, a message safe to show to the caller and, for validation errors,
// the problem with each field.
type Error struct {
	Code    Code
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned by stores and use cases for an object that does not exist or belongs to
// another account: the two are indistinguishable on purpose.
var ErrNotFound = &Error{Code: NotFound, Message: "Not found."}

// CodeOf returns the code of err, or Internal for an error that carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Fields collects validation problems, one per field; the first problem of a field wins.
type Fields map[string]string

// Add records problem for field unless the field already has one.
func (f Fields) Add(field, problem string) {
	if _, ok := f[field]; !ok {
		f[field] = problem
	}
}

// Err returns nil when no problem was recorded, otherwise a validation error naming every field.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: Invalid, Message: "The request has invalid fields.", Fields: f}
}

// Field returns a validation error for one field.
func Field(field, problem string) error {
	return &Error{Code: Invalid, Message: "The request has invalid fields.", Fields: map[string]string{field: problem}}
}

// statusOf is the one table from code to HTTP status; the API and both web apps read it through
// HTTPStatus, so a code answers with the same status everywhere.
var statusOf = map[Code]int{
	InvalidJSON:      http.StatusBadRequest,
	Invalid:          http.StatusUnprocessableEntity,
	Unauthorized:     http.StatusUnauthorized,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	LimitReached:     http.StatusUnprocessableEntity,
	TooLarge:         http.StatusRequestEntityTooLarge,
	UnsupportedMedia: http.StatusUnsupportedMediaType,
	RateLimited:      http.StatusTooManyRequests,
	Internal:         http.StatusInternalServerError,
	Unavailable:      http.StatusServiceUnavailable,
}

// ErrUnavailable is returned by stores when the database went away before a transaction committed.
var ErrUnavailable = &Error{Code: Unavailable, Message: "The database is briefly unavailable and nothing was changed; retry."}

// Status returns the HTTP status of code; 500 for a code the table does not know.
func Status(code Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// HTTPStatus returns the HTTP status of err: that of its code, 500 for an error without one.
func HTTPStatus(err error) int { return Status(CodeOf(err)) }
