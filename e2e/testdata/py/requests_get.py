"""GET a URL with requests (proxy from HTTPS_PROXY, roots from REQUESTS_CA_BUNDLE)."""
import sys

import requests

url, prefix = sys.argv[1], sys.argv[2]
res = requests.get(url, timeout=20)
with open(prefix + ".body", "wb") as f:
    f.write(res.content)
with open(prefix + ".status", "w") as f:
    f.write(str(res.status_code))
