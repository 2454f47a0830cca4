//go:build unix

package weedtest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts weed in a process group of its own, so Stop can kill
// it and anything it starts at once.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// Data is thrown away, so no graceful stop: weed's own takes seconds.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
