package main

import (
	"runtime/debug"
	"testing"
)

func TestDescribeVersion(t *testing.T) {
	vcs := func(main string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/motorpool/motorpool", Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		name   string
		linked string
		info   *debug.BuildInfo
		ok     bool
		want   string
	}{
		{"the linker's wins", "v1.2.3", vcs("(devel)", "vcs.revision", rev), true, "v1.2.3"},
		{"a clean checkout", "dev", vcs("(devel)", "vcs.revision", rev, "vcs.modified", "false"), true, "0123456789ab"},
		{"uncommitted changes", "dev", vcs("(devel)", "vcs.revision", rev, "vcs.modified", "true"), true, "0123456789ab+dirty"},
		{"go install of a tag", "dev", vcs("v0.1.0"), true, "v0.1.0"},
		{"no VCS information", "dev", vcs("(devel)"), true, "dev"},
		{"no build information", "dev", nil, false, "dev"},
		{"empty linker value", "", vcs("(devel)", "vcs.revision", "abc"), true, "abc"},
	} {
		if got := describeVersion(c.linked, c.info, c.ok); got != c.want {
			t.Errorf("%s: describeVersion = %q, want %q", c.name, got, c.want)
		}
	}
}
