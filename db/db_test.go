package db_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/db"
)

// TestMigrations checks that both engines have the same goose migrations, each with an Up and a
// Down section, so that neither engine falls behind the other.
func TestMigrations(t *testing.T) {
	names := map[string][]string{}
	for engine, fsys := range map[string]fs.FS{"postgres": db.PostgresMigrations(), "sqlite": db.SQLiteMigrations()} {
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s: no migrations embedded", engine)
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, marker := range []string{"-- +goose Up", "-- +goose Down"} {
				if !strings.Contains(string(b), marker) {
					t.Errorf("%s/%s: no %q", engine, f, marker)
				}
			}
		}
		names[engine] = files
	}
	if diff := cmp.Diff(names["postgres"], names["sqlite"]); diff != "" {
		t.Errorf("migration files differ between engines (-postgres +sqlite):\n%s", diff)
	}
}
