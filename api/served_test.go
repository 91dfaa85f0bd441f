package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v4"

	"github.com/motorpool/motorpool/storage/sqlite"
)

// The spec served at /openapi.yaml and /openapi.json is openapi.yaml, so that a client
// generated from the URL is the client generated from the file: the same document (operationIds
// spelled as written), with only VehicleYear's maximum added, which is next year.
func TestServedSpecIsTheFile(t *testing.T) {
	file, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(file, &want); err != nil {
		t.Fatal(err)
	}
	year := want["components"].(map[string]any)["schemas"].(map[string]any)["VehicleYear"].(map[string]any)
	year["maximum"] = time.Now().Year() + 1

	s := newTestServer(t, openEmbedded(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "motorpool.db")}))
	for _, path := range []string{"/openapi.yaml", "/openapi.json"} {
		t.Run(path, func(t *testing.T) {
			resp, body := doAs(t, s, "", "GET", path, "")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var got map[string]any
			if path == "/openapi.json" {
				err = json.Unmarshal(body, &got)
			} else {
				err = yaml.Unmarshal(body, &got)
			}
			if err != nil {
				t.Fatal(err)
			}
			// JSON numbers decode as float64, YAML's as int: compare as JSON.
			if diff := cmp.Diff(asJSON(t, want), asJSON(t, got)); diff != "" {
				t.Errorf("served spec (+) differs from openapi.yaml (-):\n%s", diff)
			}
		})
	}
	// The YAML is the file's text with one line added.
	_, body := doAs(t, s, "", "GET", "/openapi.yaml", "")
	if got, want := len(body), len(file)+len("      maximum: ")+len(strconv.Itoa(time.Now().Year()+1))+1; got != want {
		t.Errorf("served YAML has %d bytes, the file and one line %d", got, want)
	}
}

func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
