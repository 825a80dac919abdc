package kubeapi

import (
	"errors"
	"syscall"
)

// sysProcAttr has etcd and kube-apiserver killed when the test process dies
// (a panic, a -timeout, a killed go test), so no server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processGone reports whether no process has id pid.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
