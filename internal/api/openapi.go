package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quikly/webhooks/internal/errs"
)

// The OpenAPI document is written as YAML fragments in openapi/, one per area of the API, so that a
// new route's description sits beside its handlers and concurrent changes touch different files.
// They are merged (in file-name order) and served as JSON.
//
//go:embed openapi/*.yaml
var openapiFiles embed.FS

// openapiPath is where the document is served, without an API key.
const openapiPath = Prefix + "/openapi.json"

// openapiJSON is the merged document; built once at start, since the fragments are compiled in.
var openapiJSON = func() []byte {
	doc, err := buildOpenAPI(openapiFiles)
	if err != nil {
		panic("api: the embedded OpenAPI fragments are broken: " + err.Error())
	}
	return doc
}()

// OpenAPI returns the OpenAPI 3.1 document of the API as JSON. The caller must not modify it.
func OpenAPI() []byte { return openapiJSON }

// serveOpenAPI answers GET (and HEAD) /openapi.json before authentication, and reports whether the
// request was for it.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != openapiPath {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.error(w, r, errs.Errorf(errs.MethodNotAllowed, "%s is not allowed here; use GET.", r.Method))
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*") // so browser-based tools can load it from anywhere
	w.Write(openapiJSON)
	return true
}

// buildOpenAPI merges the YAML fragments of fsys's openapi/ directory into one JSON document.
func buildOpenAPI(fsys fs.FS) ([]byte, error) {
	names, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var merged *yaml.Node
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: not a YAML mapping", name)
		}
		if merged == nil {
			merged = doc.Content[0]
			continue
		}
		if err := mergeYAML(merged, doc.Content[0], ""); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if merged == nil {
		return nil, fmt.Errorf("no fragments")
	}
	var buf bytes.Buffer
	if err := yamlToJSON(&buf, merged); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// mergeYAML adds src's keys to dst, both mappings. Mappings under the same key merge; any other key
// given twice is an error, so that one fragment cannot silently override another's description.
func mergeYAML(dst, src *yaml.Node, path string) error {
	for i := 0; i < len(src.Content); i += 2 {
		key, val := src.Content[i], src.Content[i+1]
		at := path + "/" + key.Value
		j := -1
		for k := 0; k < len(dst.Content); k += 2 {
			if dst.Content[k].Value == key.Value {
				j = k
			}
		}
		if j < 0 {
			dst.Content = append(dst.Content, key, val)
			continue
		}
		if dst.Content[j+1].Kind != yaml.MappingNode || val.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is described twice", at)
		}
		if err := mergeYAML(dst.Content[j+1], val, at); err != nil {
			return err
		}
	}
	return nil
}

// yamlToJSON writes n as JSON, keeping the order of mapping keys (so the served document reads in the
// order it was written).
func yamlToJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := yamlToJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := yamlToJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if n.Tag == "!!float" {
			// Keep the number as written (200.50 stays 200.50, as the API writes amounts).
			buf.WriteString(strings.TrimPrefix(n.Value, "+"))
			return nil
		}
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(data)
	case yaml.AliasNode:
		return yamlToJSON(buf, n.Alias)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}
