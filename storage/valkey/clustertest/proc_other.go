//go:build !linux

package clustertest

import "syscall"

// procAttr: elsewhere a server outlives a test binary that dies without stopping it.
func procAttr() *syscall.SysProcAttr { return nil }
