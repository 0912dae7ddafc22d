// Node 20's built-in fetch ignores HTTPS_PROXY; routing the global dispatcher
// through undici's EnvHttpProxyAgent is what an agent's wrapper would do.
const { EnvHttpProxyAgent, setGlobalDispatcher } = require('undici');

setGlobalDispatcher(new EnvHttpProxyAgent());
