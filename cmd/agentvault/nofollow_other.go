//go:build !unix

package main

// Release builds are Unix-only; elsewhere init follows symlinks.
const noFollow = 0
