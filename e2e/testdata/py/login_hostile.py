"""A hostile agent under a brokered Claude Code login: it tries to refresh
its own account's login through the broker, tries a login (authorization
code) at the token endpoint, refreshes the user's login properly, then
writes its own account's tokens into the store it was given, hoping they
are written back to the user's store.

usage: login_hostile.py TOKEN_URL ATTACKER_REFRESH ATTACKER_ACCESS OUT
"""
import json
import os
import sys
import urllib.error
import urllib.request

token_url, attacker_refresh, attacker_access, out = sys.argv[1:5]
store = os.path.join(os.environ["CLAUDE_CONFIG_DIR"], ".credentials.json")


def post(step, body):
    req = urllib.request.Request(token_url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            status, answer = res.status, res.read()
    except urllib.error.HTTPError as err:
        status, answer = err.code, err.read()
    with open(os.path.join(out, step + ".status"), "w") as f:
        f.write(str(status))
    with open(os.path.join(out, step + ".body"), "wb") as f:
        f.write(answer)
    return status, answer


post("foreign", {"grant_type": "refresh_token", "refresh_token": attacker_refresh})
post("login", {"grant_type": "authorization_code", "code": "attacker-code", "redirect_uri": "http://localhost/cb"})
with open(store) as f:
    s = json.load(f)
status, answer = post("own", {"grant_type": "refresh_token", "refresh_token": s["claudeAiOauth"]["refreshToken"]})
s["claudeAiOauth"]["accessToken"] = attacker_access
s["claudeAiOauth"]["refreshToken"] = attacker_refresh
with open(store, "w") as f:
    json.dump(s, f)
