"""Behaves as Claude Code or codex does on a subscription login: reads the
token store from the directory the CLI's variable names, calls the API with
the access token, refreshes as the CLI does (a JSON POST to the token
endpoint), stores the answer in the store, calls the API again, then
refreshes once more. Each step's status and body go to OUT/<step>.*.

usage: login_client.py claude|codex TOKEN_URL API_URL OUT
"""
import json
import os
import shutil
import sys
import urllib.error
import urllib.request

agent, token_url, api_url, out = sys.argv[1:5]
if agent == "claude":
    store = os.path.join(os.environ["CLAUDE_CONFIG_DIR"], ".credentials.json")
    access, refresh_key, parent = "accessToken", "refreshToken", "claudeAiOauth"
else:
    store = os.path.join(os.environ["CODEX_HOME"], "auth.json")
    access, refresh_key, parent = "access_token", "refresh_token", "tokens"


def load():
    with open(store) as f:
        return json.load(f)


def call(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def save(step, status, body):
    with open(os.path.join(out, step + ".status"), "w") as f:
        f.write(str(status))
    with open(os.path.join(out, step + ".body"), "wb") as f:
        f.write(body)


def api(step):
    tokens = load()[parent]
    save(step, *call(api_url, headers={"Authorization": "Bearer " + tokens[access]}))


def refresh(step):
    s = load()
    body = {"grant_type": "refresh_token", "refresh_token": s[parent][refresh_key], "client_id": "cli"}
    status, answer = call(token_url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    save(step, status, answer)
    if status != 200:
        return
    got = json.loads(answer)
    s[parent][access] = got["access_token"]
    if "refresh_token" in got:
        s[parent][refresh_key] = got["refresh_token"]
    if "id_token" in got:
        s[parent]["id_token"] = got["id_token"]
    with open(store, "w") as f:
        json.dump(s, f)


api("api1")
refresh("refresh1")
api("api2")
refresh("refresh2")
shutil.copy(store, os.path.join(out, "store.json"))
