"""GET a URL with urllib (proxy from https_proxy, roots from SSL_CERT_FILE)."""
import sys
import urllib.error
import urllib.request

url, prefix = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=20) as res:
        status, body = res.status, res.read()
except urllib.error.HTTPError as err:
    status, body = err.code, err.read()
with open(prefix + ".body", "wb") as f:
    f.write(body)
with open(prefix + ".status", "w") as f:
    f.write(str(status))
