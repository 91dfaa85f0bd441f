package storage_test

import (
	"testing"
	"unicode"

	"github.com/motorpool/motorpool/storage"
)

// Spellings of one address that lower-casing alone keeps apart fold together; different
// addresses stay apart; normalising twice changes nothing.
func TestNormalizeEmail(t *testing.T) {
	same := [][]string{
		{"xσ@example.com", "xς@example.com", "xΣ@example.com", "XΣ@EXAMPLE.COM"},
		{"strasse@example.com", "straße@example.com", "STRASSE@example.com", "Straße@Example.com"},
		{"ada@example.com", " Ada@Example.COM\t", "ada\u200b@example.com", "\ufeffada@example.com", "\uff41\uff44\uff41@example.com"},
		{"ꭰ@example.com", "Ꭰ@example.com"}, // Cherokee folds to upper case, which ToLower misses
		{"ǆ@example.com", "ǅ@example.com", "Ǆ@example.com", "dž@example.com"},
	}
	for _, group := range same {
		want := storage.NormalizeEmail(group[0])
		for _, e := range group {
			got := storage.NormalizeEmail(e)
			if got != want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q (as for %q)", e, got, want, group[0])
			}
			if again := storage.NormalizeEmail(got); again != got {
				t.Errorf("NormalizeEmail is not idempotent on %q: %q, then %q", e, got, again)
			}
		}
	}
	for i := range same {
		for j := range i {
			if a, b := storage.NormalizeEmail(same[i][0]), storage.NormalizeEmail(same[j][0]); a == b {
				t.Errorf("%q and %q normalise alike (%q)", same[i][0], same[j][0], a)
			}
		}
	}
	for _, e := range []string{"İstanbul@example.com", "ﬃ@example.com", "Å@example.com", "ᾈ@example.com"} {
		got := storage.NormalizeEmail(e)
		if again := storage.NormalizeEmail(got); again != got {
			t.Errorf("NormalizeEmail is not idempotent on %q: %q, then %q", e, got, again)
		}
	}
}

// Over every code point that has a case or a compatibility form (the first two planes, the
// CJK compatibility supplement, the tags; the rest are ideographs and unassigned): the letters
// of one simple case-folding orbit (K, k and the Kelvin sign; Σ, σ and ς) normalise alike,
// and normalising is idempotent.
func TestNormalizeEmailEveryRune(t *testing.T) {
	for r := rune(0); r <= 0xE0FFF; r++ {
		switch {
		case r >= 0xD800 && r <= 0xDFFF: // surrogates are no characters
			continue
		case r >= 0x20000 && r < 0x2F800:
			r = 0x2F7FF
			continue
		case r >= 0x2FA20 && r < 0xE0000:
			r = 0xDFFFF
			continue
		}
		n := storage.NormalizeEmail("a" + string(r) + "@example.com")
		if again := storage.NormalizeEmail(n); again != n {
			t.Errorf("%U: NormalizeEmail gives %q, then %q", r, n, again)
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if m := storage.NormalizeEmail("a" + string(f) + "@example.com"); m != n {
				t.Errorf("%U and %U normalise apart: %q, %q", r, f, n, m)
			}
		}
	}
}
