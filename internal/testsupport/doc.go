// Package testsupport holds the test fixtures that package tests and the
// end-to-end tests share: throwaway CAs, a SigV4 verifier standing in for AWS,
// and launchers for a Vault dev server and moto_server.
//
// Only _test.go files import it (TestImportedOnlyByTests checks this), so
// nothing here reaches the agentvault binary. Every server it starts listens
// on 127.0.0.1 and is stopped by the test's cleanup.
package testsupport
