package main

import "runtime/debug"

// buildVersion is the version the program reports: the linker's (-X main.version=...) when
// it set one, else what the Go toolchain recorded of the build (the module's version for
// `go install ...@v1.2.3`, or the commit of the checkout it was built in, with "+dirty" for
// uncommitted changes), else "dev".
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	return describeVersion(version, info, ok)
}

func describeVersion(linked string, info *debug.BuildInfo, ok bool) string {
	if linked != "" && linked != "dev" {
		return linked
	}
	if !ok || info == nil {
		return "dev"
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		return "dev"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified {
		revision += "+dirty"
	}
	return revision
}
