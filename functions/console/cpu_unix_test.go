//go:build unix

package console_test

import "syscall"

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// shared machine it measures the work done, where wall time measures the
// load too.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
