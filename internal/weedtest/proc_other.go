//go:build unix && !linux

package weedtest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
