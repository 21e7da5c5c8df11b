#!/usr/bin/env python3
"""Turn a native edge config file (TOML) into the Worker's variables.

    config-vars.py FILE public     -> EDGEMEET_EDGE: the [edge] table without its secrets (JSON, a
                                      wrangler var)
    config-vars.py FILE secrets    -> EDGEMEET_EDGE_SECRETS: node_secret, hash_key and each tenant's
                                      hs256_secret (JSON, `wrangler secret put EDGEMEET_EDGE_SECRETS`)
    config-vars.py FILE recording  -> NAME=value lines, one per [recording] setting the Worker reads,
                                      under the same variable names as the native host
                                      (EDGEMEET_DROPBOX_APP_KEY, EDGEMEET_RECORDING_STATUS_URL, ...):
                                      wrangler vars

The Worker deep-merges the secrets over the public part, so both hosts run the very same EdgeConfig.
This script checks only what the Worker needs beyond the native host: the file is TOML, and [edge]
sets hash_key (it names the rooms' Durable Objects, so it must stay the same across deploys; the
native host may generate one per start, the Worker cannot). Check the rest with
`edgemeet config check FILE` first. A mistake exits with status 2 and prints nothing on stdout.
"""
import json
import sys
import tomllib

SECRET_KEYS = ("node_secret", "hash_key")
PARTS = ("public", "secrets", "recording")

# [recording] keys the Worker reads, and their variables (the native host reads the same ones).
RECORDING_VARS = (
    (("enabled",), "EDGEMEET_RECORDING"),
    (("destination",), "EDGEMEET_RECORDING_DESTINATION"),
    (("status_url",), "EDGEMEET_RECORDING_STATUS_URL"),
    (("dropbox", "app_key"), "EDGEMEET_DROPBOX_APP_KEY"),
    (("dropbox", "authorize_url"), "EDGEMEET_DROPBOX_AUTHORIZE_URL"),
    (("dropbox", "api_url"), "EDGEMEET_DROPBOX_API_URL"),
)


def fail(message):
    print(f"config-vars.py: {message}", file=sys.stderr)
    sys.exit(2)


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
    """`NAME=value` lines for the [recording] settings the file sets (the others keep their defaults)."""
    lines = []
    for path, var in RECORDING_VARS:
        value = config.get("recording", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        if "\n" in str(value):
            fail(f"recording.{'.'.join(path)}: a value on one line is expected")
        lines.append(f"{var}={value}")
    return lines


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in PARTS:
        fail(f"usage: config-vars.py FILE {{{'|'.join(PARTS)}}}")
    path, part = sys.argv[1], sys.argv[2]
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"{path}: {e}")
    if part == "recording":
        for line in recording(config):
            print(line)
        return
    edge = config.get("edge", {})
    if len(edge.get("hash_key", "")) < 16:
        fail(f"{path}: [edge] hash_key (at least 16 bytes) is required on the Worker: it names the rooms' Durable Objects")
    public, secrets = split(edge)
    print(json.dumps(public if part == "public" else secrets, separators=(",", ":")))


if __name__ == "__main__":
    main()
