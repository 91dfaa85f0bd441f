package impl

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursors are opaque to clients: base64url of a kind letter and the last id of the previous
// page. The kind keeps a users cursor from being replayed on a vehicles list.
const (
	kindUsers    = "u"
	kindVehicles = "v"
)

var errBadCursor = errors.New("is not a cursor this list issued")

func encodeCursor(kind string, lastID int64) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(kind + strconv.FormatInt(lastID, 10)))
	return &c
}

// decodeCursor returns the id to list after; an absent cursor means the first page.
func decodeCursor(kind string, c *string) (int64, error) {
	if c == nil {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil {
		return 0, errBadCursor
	}
	s, ok := strings.CutPrefix(string(raw), kind)
	if !ok {
		return 0, errBadCursor
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != s {
		return 0, errBadCursor
	}
	return id, nil
}

// page trims a result fetched with limit+1 rows to limit and says where the next page starts.
func page[T any](items []T, limit int, kind string, id func(T) int64) ([]T, *string) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	return items, encodeCursor(kind, id(items[len(items)-1]))
}
