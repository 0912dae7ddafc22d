//go:build !unix

package launcher

func inForeground() bool { return false }
