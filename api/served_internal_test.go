package api

import (
	"strings"
	"testing"
	"time"
)

// VehicleYear's maximum follows the clock: a process running across New Year serves the new
// bound without a restart.
func TestServedSpecYearFollowsClock(t *testing.T) {
	file := []byte("openapi: 3.0.3\n# a comment the YAML keeps\ncomponents:\n  schemas:\n    VehicleYear:\n      type: integer\n      minimum: 1886\n      description: From 1886 to next year.\n")
	now := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)
	s, err := newServedSpec(file, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	yml, jsn := s.current()
	wantYAML := strings.Replace(string(file), "      minimum: 1886\n", "      minimum: 1886\n      maximum: 2027\n", 1)
	if string(yml) != wantYAML {
		t.Errorf("YAML:\n%s\nwant:\n%s", yml, wantYAML)
	}
	if want := `"VehicleYear": {
        "type": "integer",
        "minimum": 1886,
        "maximum": 2027,`; !strings.Contains(string(jsn), want) {
		t.Errorf("JSON lacks %s, keys in the file's order:\n%s", want, jsn)
	}
	now = now.Add(time.Hour)
	if yml, _ := s.current(); !strings.Contains(string(yml), "maximum: 2028\n") {
		t.Errorf("after New Year:\n%s", yml)
	}
}

func TestServedSpecRefusesAFileItCannotServe(t *testing.T) {
	for name, file := range map[string]string{
		"no VehicleYear": "openapi: 3.0.3\ncomponents:\n  schemas: {}\n",
		"no minimum":     "components:\n  schemas:\n    VehicleYear:\n      type: integer\n",
		"other minimum":  "components:\n  schemas:\n    VehicleYear:\n      minimum: 1900\n",
		"a maximum":      "components:\n  schemas:\n    VehicleYear:\n      minimum: 1886\n      maximum: 2030\n",
		"flow style":     "components: {schemas: {VehicleYear: {minimum: 1886}}}\n",
		"not YAML":       "components: [\n",
	} {
		if _, err := newServedSpec([]byte(file), nil); err == nil {
			t.Errorf("%s: served", name)
		}
	}
}
