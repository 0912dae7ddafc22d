// Package e2e holds agentvault's end-to-end tests. They build the real binary
// and drive it exactly as a user would (docs/cli.md), against local
// HTTPS, plain-HTTP and git servers that trust a test CA, with curl, git,
// Python, Go and Node as the proxied child processes.
//
// Nothing here imports the product's packages: the tests know only the CLI.
package e2e
