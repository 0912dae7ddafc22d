#!/usr/bin/env bash
# Adapts a copy of the Vault v1.21.4 source tree to the published
# github.com/hashicorp/vault/sdk v0.21.0, which differs from the tree's own sdk/
# in three call sites (see docs/development/testing.md). Idempotent: every
# substitution matches only the unpatched text. Usage: vault-patch-sdk.sh DIR
set -euo pipefail
dir=${1:?usage: vault-patch-sdk.sh VAULT_SOURCE_DIR}
cd "$dir"

# sdk v0.21.0's ActivationFunc takes a third (string) argument.
perl -0pi -e 's/ActivationFunc: iStore\.activateDeduplication,/ActivationFunc: func(ctx context.Context, req *logical.Request, _ string) error { return iStore.activateDeduplication(ctx, req) },/' vault/identity_store.go
perl -0pi -e 's/\.ActivationFunc\(ctx, nil\)/.ActivationFunc(ctx, nil, "")/' vault/logical_system_activation_flags.go

# sdk v0.21.0's RestorePolicy returns only an error: report the requested name.
perl -0pi -e 's/restoredKeyName, err := b\.lm\.RestorePolicy\(/restoredKeyName := keyName\n\terr := b.lm.RestorePolicy(/' builtin/logical/transit/path_restore.go

# Fail loudly if the tree changed shape and a patch silently did not apply.
grep -q 'iStore.activateDeduplication(ctx, req)' vault/identity_store.go
grep -q 'ActivationFunc(ctx, nil, "")' vault/logical_system_activation_flags.go
grep -q 'restoredKeyName := keyName' builtin/logical/transit/path_restore.go
