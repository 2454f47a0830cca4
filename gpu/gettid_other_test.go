//go:build !linux

package gpu

// gettid has no portable equivalent: off Linux every goroutine looks like
// one thread, and the fake's per-thread context check is vacuous.
func gettid() int { return 0 }
