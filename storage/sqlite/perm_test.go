//go:build unix

package sqlite_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/motorpool/motorpool/storage"
)

// The database holds password hashes: the file and its WAL and shared-memory files are the
// owner's alone, whatever the umask, as the signing key and the session snapshot are.
// (Not parallel: the umask is the process's.)
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "motorpool.db")
	s := open(t, path)
	if _, err := s.CreateUser(t.Context(), storage.NewUser{Email: "ada@example.com", Name: "Ada", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err) // WAL mode with the store open: all three exist
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
}

// A file an earlier version left world-readable is no longer readable by others once opened.
func TestExistingFileLosesWorldAccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o664); err != nil { // whatever the umask
		t.Fatal(err)
	}
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("mode %o, want 660 (the owner and group keep theirs, others lose theirs)", perm)
	}
}
