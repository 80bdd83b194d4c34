package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quikly/webhooks/internal/errs"
)

// decode reads the request body, a JSON object, into dst (a struct of pointer fields, nil meaning
// "left out"). A missing body decodes as {}. It tells apart bodies that do not parse (invalid_json)
// from bodies of the wrong shape (validation_failed naming the field). null is refused, except for
// the clearable fields, where it means "none" and decodes as "" (so a client may send back the null
// it read).
func decode(w http.ResponseWriter, r *http.Request, dst any, clearable ...string) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errs.Errorf(errs.TooLarge, "The request body is larger than 1 MiB.")
	}
	if err != nil {
		return errs.Errorf(errs.InvalidJSON, "The request body could not be read.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errs.Errorf(errs.UnsupportedMedia, "The request body must be JSON, sent with Content-Type: application/json.")
	}
	if !json.Valid(data) {
		return errs.Errorf(errs.InvalidJSON, "The request body is not valid JSON.")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return errs.Field("body", "must be a JSON object")
	}
	cleared := false
	for name, v := range fields {
		switch {
		case string(v) != "null":
		case slices.Contains(clearable, name):
			fields[name], cleared = json.RawMessage(`""`), true
		default:
			return errs.Field(name, "must not be null")
		}
	}
	if cleared {
		data, _ = json.Marshal(fields) // re-encoding parsed JSON cannot fail
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return shapeError(err)
	}
	return nil
}

func shapeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return errs.Field(field, "must be "+describe(typeErr.Type.Kind().String()))
	}
	if quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// encoding/json writes the key with %q: unquote it, so that the field named is the key the
		// client sent (`a"b`, not `a\"b`).
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = strings.Trim(quoted, `"`)
		}
		return errs.Field(name, "is not a known field")
	}
	return errs.Field("body", "has the wrong shape")
}

func describe(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	}
	return "of another type"
}

// pageQuery reads ?limit= and ?cursor=.
func pageQuery(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > 200 {
			return 0, "", errs.Field("limit", "must be a whole number from 1 to 200")
		}
	}
	return limit, q.Get("cursor"), nil
}
