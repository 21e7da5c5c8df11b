#!/usr/bin/env python3
"""Turn a native edge config (TOML, its [edge] table) into the Worker's two variables.

    config-vars.py tests/fixtures/edge.toml public   -> EDGEMEET_CONFIG  (JSON, a wrangler var)
    config-vars.py tests/fixtures/edge.toml secrets  -> EDGEMEET_SECRETS (JSON, `wrangler secret put`)
    config-vars.py edge.toml recording                -> EDGEMEET_RECORDING (JSON, a wrangler var: the
                                                         [recording.dropbox] app the page connects,
                                                         and [recording] status_url)

Secrets are node_secret, hash_key and each tenant's hs256_secret; everything else is public. The Worker
deep-merges the secrets over the public part, so both hosts run the very same EdgeConfig.
"""
import json
import sys
import tomllib

SECRET_KEYS = ("node_secret", "hash_key")


def split(edge):
    public, secrets = {}, {}
    for key, value in edge.items():
        if key in SECRET_KEYS:
            secrets[key] = value
        elif key == "tenants":
            public["tenants"] = {}
            for name, tenant in value.items():
                tenant = dict(tenant)
                if "hs256_secret" in tenant:
                    secrets.setdefault("tenants", {})[name] = {"hs256_secret": tenant.pop("hs256_secret")}
                public["tenants"][name] = tenant
        else:
            public[key] = value
    return public, secrets


def recording(config):
    """The public part of [recording]: the Dropbox app (its key and where the page sends the user)
    and status_url, where recorders' pages read their delivery status (the uploader's status_listen)."""
    section = config.get("recording", {})
    dropbox = section.get("dropbox", {})
    if not dropbox.get("app_key"):
        return {}
    keep = ("app_key", "authorize_url", "api_url")
    out = {"dropbox": {k: v for k, v in dropbox.items() if k in keep}}
    if section.get("status_url"):
        out["status_url"] = section["status_url"]
    return out


def main():
    path, part = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        config = tomllib.load(f)
    if part == "recording":
        print(json.dumps(recording(config), separators=(",", ":")))
        return
    public, secrets = split(config.get("edge", {}))
    print(json.dumps(public if part == "public" else secrets, separators=(",", ":")))


if __name__ == "__main__":
    main()
