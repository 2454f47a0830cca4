package weedtest

import "syscall"

// setDeathSignal kills weed if the test binary dies without Stop (a panic,
// a -timeout), so no server outlives its tests.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
