package backends

// CheckOptions decodes o's options into the type's own configuration, as
// Open does, and checks what needs no I/O and no environment: unknown keys,
// wrong types, exec's env: list. The config package calls it while loading
// the file, so a typo under backends: is a configuration error with its
// line (exit 78) even for a backend no credential uses yet; what depends on
// the environment (a Vault address from VAULT_ADDR, a readable CA file) is
// still checked when the backend opens. An unknown type is left to Open.
func CheckOptions(o Options) error {
	if o.Decode == nil {
		return nil
	}
	switch o.Type {
	case "env", "file":
		return noOptions(o)
	case "exec":
		var c execConfig
		if err := o.Decode(&c); err != nil {
			return err
		}
		_, err := execDeclaredEnv(o.Name, c.Env)
		return err
	case "vault":
		var c vaultConfig
		return o.Decode(&c)
	case "aws-secretsmanager":
		var c awsConfig
		return o.Decode(&c)
	case "infisical":
		var c infisicalConfig
		return o.Decode(&c)
	}
	return nil
}
