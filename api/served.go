package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"
)

// oldestModelYear is VehicleYear's minimum; the maximum, next year, is only known at run time.
const oldestModelYear = 1886

// servedSpec serves openapi.yaml as committed, with one line added: VehicleYear's `maximum`,
// the bound its description promises and a static file cannot state. The YAML is the file's
// bytes with that line inserted where the parser places VehicleYear's `minimum`, so comments,
// order and quoting are the file's; the JSON is the same document, keys in the file's order.
// Each year's rendering is made on its first request and kept.
type servedSpec struct {
	file []byte
	now  func() time.Time

	mu       sync.Mutex
	year     int
	yml, jsn []byte
}

func newServedSpec(file []byte, now func() time.Time) (*servedSpec, error) {
	if now == nil {
		now = time.Now
	}
	s := &servedSpec{file: file, now: now}
	if _, _, err := s.render(now().Year() + 1); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *servedSpec) current() (yml, jsn []byte) {
	year := s.now().Year() + 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.year != year {
		y, j, err := s.render(year)
		if err != nil { // rendered once at start-up, so the file cannot fail now
			panic(err)
		}
		s.year, s.yml, s.jsn = year, y, j
	}
	return s.yml, s.jsn
}

func (s *servedSpec) handlers() (jsonH, yamlH http.Handler) {
	serve := func(ctype string, pick func() []byte) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(pick())
		})
	}
	return serve("application/json", func() []byte { _, j := s.current(); return j }),
		serve("application/yaml", func() []byte { y, _ := s.current(); return y })
}

// render returns the file with VehicleYear's maximum set to maxYear, as YAML and as JSON.
func (s *servedSpec) render(maxYear int) (yml, jsn []byte, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(s.file, &doc); err != nil {
		return nil, nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	year := lookup(&doc, "components", "schemas", "VehicleYear")
	if year == nil || year.Kind != yaml.MappingNode {
		return nil, nil, errors.New("openapi.yaml: no schema VehicleYear")
	}
	if lookup(year, "maximum") != nil {
		return nil, nil, errors.New("openapi.yaml: VehicleYear must not state a maximum: the service serves the current one")
	}
	var minKey *yaml.Node
	for i := 0; i+1 < len(year.Content); i += 2 {
		if year.Content[i].Value == "minimum" {
			minKey = year.Content[i]
			if year.Content[i+1].Value != strconv.Itoa(oldestModelYear) {
				return nil, nil, fmt.Errorf("openapi.yaml: VehicleYear's minimum is %s, the code's %d", year.Content[i+1].Value, oldestModelYear)
			}
		}
	}
	if minKey == nil {
		return nil, nil, errors.New("openapi.yaml: VehicleYear has no minimum")
	}
	lines := bytes.SplitAfter(s.file, []byte("\n"))
	if minKey.Line > len(lines) || !bytes.HasSuffix(lines[minKey.Line-1], []byte("\n")) {
		return nil, nil, errors.New("openapi.yaml: VehicleYear's minimum must sit on a line of its own")
	}
	line := append(bytes.Repeat([]byte(" "), minKey.Column-1), "maximum: "+strconv.Itoa(maxYear)+"\n"...)
	yml = bytes.Join([][]byte{bytes.Join(lines[:minKey.Line], nil), line, bytes.Join(lines[minKey.Line:], nil)}, nil)

	// The edited document must parse and say what was meant: a check of the line edit.
	var edited yaml.Node
	if err := yaml.Unmarshal(yml, &edited); err != nil {
		return nil, nil, fmt.Errorf("openapi.yaml with VehicleYear's maximum: %w", err)
	}
	if m := lookup(lookup(&edited, "components", "schemas", "VehicleYear"), "maximum"); m == nil || m.Value != strconv.Itoa(maxYear) {
		return nil, nil, errors.New("openapi.yaml: VehicleYear's maximum could not be inserted")
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &edited); err != nil {
		return nil, nil, fmt.Errorf("render openapi.yaml as JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, nil, fmt.Errorf("render openapi.yaml as JSON: %w", err)
	}
	return yml, out.Bytes(), nil
}

// lookup follows mapping keys from n; nil when one is missing.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// writeJSON writes a YAML node tree as compact JSON, keeping mapping keys in document order
// (decoding into a map would sort them, and the spec reads top-down).
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return errors.New("empty document")
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1]); err != nil {
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
			if err := writeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}
